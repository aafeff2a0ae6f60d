"""Fraud detection on the vote log: eight explainable detectors, campaigns and a verdict.

The web app's periodic scan and the simulators call one per-scan step,
:func:`scan_step`: a clean consensus (the counted votes without the voters under
judgement), a search of the recent votes for campaigns, then :func:`scan` on
the voters to judge.  :func:`replay_scans` runs a whole log through it as
production would have (``result.excluded``, ``result.verdicts``).  Each :class:`VoterReport` carries a verdict ("ok", "suspicious",
"excluded"), the detectors behind it and, per detector, one human sentence with
the numbers plus the JSON evidence behind it, so a moderator can check every
decision.  Excluded voters' votes leave the leaderboard; the next scan runs
against the cleaner consensus.

Detectors (each gives a level "ok", "suspicious" or "strong"):

``crowd_disagreement``
    A sequential test of the voter's choices against the consensus, after the
    Chatbot Arena anomalous-user test (Chiang et al. 2024, "Chatbot Arena: An
    Open Platform for Evaluating LLMs by Human Preference", ICML): every decided
    vote gives the e-value ``e = 1 / (N p)``, ``p`` the consensus probability of
    the chosen outcome (Plackett-Luce first choice, Luce 1959) and ``N`` the
    number of outcomes.  ``E[e] = 1`` when the voter chooses like the crowd, so
    the running product of ``1 - bet + bet * e`` is a test martingale and, by
    Ville's inequality (Ville 1939), exceeds ``1/alpha`` with probability at
    most ``alpha`` ever (Vovk & Wang 2021; Ramdas et al. 2023 on e-processes).
    ``e`` is also the likelihood ratio of a uniformly random clicker against
    the consensus, so ``bet = 1`` is the growth-optimal bet against it (Kelly
    1956); ``bet < 1`` caps what one honest upset can cost.
``crowd_echo``
    Its mirror image: choices *sharper* than the crowd's own odds (``echo``
    module), a score test of the voter picking with the consensus chances raised
    to a power above 1.5.  An identity copying the public board agrees with the
    crowd by construction and spends its credibility where it matters (a
    camouflaged promoter, a demoter of #1, omnipresent rigging).  Alone it caps
    the voter's trust at the floor (``VoterReport.trust_capped``) and excludes
    nobody: an honest person can be that consistent.
``position_bias``
    Which slot the single winner sat in, against the consensus-expected count
    (positions are shuffled, so an unbiased voter's slot choices follow the
    consensus): exact Poisson-binomial tail, Bonferroni over positions, gated on
    the excess share so a mild honest bias is never excluded.
``speed``
    Votes cast faster than the outputs can be looked at (``time_to_vote_ms <
    min_view_ms``), binomial test against an honest fast rate.  At most
    "suspicious": honest skimmers exist and their choices still carry information.
``rate``
    Most votes in a sliding window and per day against the arena's normal
    traffic (:class:`TrafficBaseline`), a physically impossible pace (more
    votes than their viewing time fits in), and busy network prefixes (votes and
    new identities per hour).
``model_targeting``
    Per model: wins against the consensus-expected wins, one-sided exact
    Poisson-binomial tails for promotion and for demotion, Bonferroni over the
    tests, gated on the effect size (the personal taste shift, in logits, that would
    explain the wins) and on appearances.  Also rank rigging (Min et al., ICML 2025,
    "omnipresent" rigging): a model always chosen while the models ranked just above it
    are never chosen in the voter's other battles (or the mirror image, to sink one),
    the joint tail of those disjoint tests, Bonferroni over targets, directions and
    neighbour subsets (``rigging_window``).
``coordination``
    Voters sharing a network prefix (and prefix + user agent) whose votes fall
    in one session (gaps under ``group_gap_s``): the pooled votes get the
    targeting and disagreement tests, and a group signal must survive leaving
    out its strongest member (one bot next to two students is not a group).
``campaign``
    Many identities pushing one model, wherever they come from (``campaign``
    module): per identity, how often the model was in its battles (exposure)
    and how its choices went, combined; a model pushed by far more identities
    than chance allows is a campaign and they are its members.  What is left
    is judged as a whole: when the light identities' results on a model depart
    from the established identities' consensus, all their votes showing it are
    kept out (``StepResult.excluded_votes``), an influence bound that excludes
    nobody.

Verdict: "excluded" if any detector is strong (a lone strong ``crowd_echo`` or scoped
``model_targeting`` finding, or a returning identity's campaign membership, caps the voter's
trust and keeps out its votes on the model instead, :func:`caps`; a suspicious
``crowd_disagreement`` caps the trust too, ``disagreement_caps``), or if suspicious detectors come
from at least ``combine_families`` different :data:`FAMILIES` (a rate suspicion
that only comes from a busy network prefix does not count); "suspicious" if
any is suspicious; else "ok".  Choice statistics need ``min_votes`` decided votes
before they may flag anyone, so a voter with two votes is never excluded on
choice statistics alone (a sybil group, pooled, can be).

Pure functions of their arguments: the same votes, consensus and config give
the same reports.  Results and the tuning of the defaults:
benchmarks/fraud_notes.md (``python -m benchmarks.fraud_sim``).

Layout: ``evidence`` (levels, detector names, vote evidence and the result
types), ``config`` (:class:`FraudConfig`), ``consensus`` (the crowd's model and
per-vote probabilities), ``stats`` (Poisson-binomial tails, formatting),
``windows`` (sliding-window counts), one module per detector family
(``disagreement``, ``echo``, ``position``, ``speed``, ``rate`` with
:class:`TrafficBaseline`, ``targeting``, ``coordination``, ``campaign``), ``verdict``
(:func:`decide`), ``pipeline`` (:func:`scan`, :func:`choice_series`) and ``replay``
(:func:`scan_step`, :func:`replay_scans`).  Adversarial evaluation:
``python -m benchmarks.attack_sim``.
Import from ``ranking.fraud``; the modules are an implementation detail.
"""

from __future__ import annotations

from .campaign import CampaignFinding, find_campaigns, model_shares
from .config import DEFAULT_CONFIG, FraudConfig
from .consensus import Consensus
from .evidence import DETECTORS, DetectorResult, Level, Verdict, VoteEvidence, VoterReport
from .pipeline import choice_series, scan
from .rate import TrafficBaseline
from .replay import ReplayResult, StepResult, clean_consensus, replay_scans, scan_step
from .stats import poisson_binomial_sf
from .targeting import taste_shift
from .trust import trust_of, voter_trust
from .verdict import FAMILIES, capping, caps, decide

__all__ = [
    "DEFAULT_CONFIG",
    "DETECTORS",
    "FAMILIES",
    "CampaignFinding",
    "Consensus",
    "DetectorResult",
    "FraudConfig",
    "Level",
    "ReplayResult",
    "StepResult",
    "TrafficBaseline",
    "Verdict",
    "VoteEvidence",
    "VoterReport",
    "capping",
    "caps",
    "choice_series",
    "clean_consensus",
    "decide",
    "find_campaigns",
    "model_shares",
    "poisson_binomial_sf",
    "replay_scans",
    "scan",
    "scan_step",
    "taste_shift",
    "trust_of",
    "voter_trust",
]
