from __future__ import annotations

import random
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from arena.errors import NotEnoughAssets
from arena.leaderboards import leaderboard_rebuild
from arena.models import Arena, Voter
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make

# Hidden skill per built-in quality tier (ELO-like points) and the voter's Thurstone noise: a
# tier-4 model beats a tier-1 model about 85% of the time, neighbours within a tier are close.
TIER_SKILL = {1: 850.0, 2: 950.0, 3: 1050.0, 4: 1150.0}
NOISE = 150.0


class Command(BaseCommand):
    help = "Cast simulated votes into an arena (demos): a Thurstone voter prefers higher quality tiers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--arena", required=True)
        parser.add_argument("--votes", type=int, default=200)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            arena = Arena.objects.get(slug=options["arena"])
        except Arena.DoesNotExist:
            raise CommandError(f"Unknown arena {options['arena']!r}.") from None
        if options["votes"] < 1:
            raise CommandError("--votes must be at least 1.")
        rng = random.Random(options["seed"])
        skill = {
            m.pk: TIER_SKILL.get(int((m.backend_config or {}).get("quality", 2)), 1000.0)
            + 10 * m.pk % 7
            for m in arena.generative_models.all()
        }
        voter = Voter.objects.create()
        modes = arena.vote_modes
        for i in tqdm(
            range(options["votes"]), desc="voting", unit="vote", disable=options["verbosity"] == 0
        ):
            try:
                battle = battle_create(
                    arena=arena, voter=voter, mode=modes[i % len(modes)], rng=rng
                )
            except NotEnoughAssets as exc:
                raise CommandError(exc.message) from None
            slots = list(battle.slots.values_list("position", "model_id"))
            perf = {pos: skill[model] + rng.gauss(0, NOISE) for pos, model in slots}
            order = sorted(perf, key=lambda pos: -perf[pos])
            labels = "ABCDEF"
            payload: dict[str, Any]
            if battle.mode == "rank_k":
                payload = {"ranks": {labels[pos]: n + 1 for n, pos in enumerate(order)}}
            else:
                payload = {"choice": labels[order[0]]}
            token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
            vote_record(battle_public_id=str(battle.public_id), token=token, voter=voter, **payload)
        created = leaderboard_rebuild(arena=arena).created
        self.stdout.write(
            self.style.SUCCESS(
                f"{options['votes']} votes cast; {created} leaderboard snapshot(s) built."
            )
        )
