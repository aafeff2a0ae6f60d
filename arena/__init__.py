"""Arena: the domain (generative models, prompts, assets, battles, votes, voters, leaderboards,
integrity). It imports only ``ranking`` and Django."""
