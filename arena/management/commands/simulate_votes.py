from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.utils import timezone
from tqdm import tqdm

from arena.clock import SimulatedClock, clock_patched
from arena.errors import NotEnoughAssets
from arena.leaderboards import leaderboard_rebuild
from arena.models import Arena, BattleSlot, Voter
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
        parser.add_argument(
            "--voters",
            type=int,
            default=20,
            help="Simulated voters sharing the votes (default 20).",
        )
        parser.add_argument(
            "--promoter-votes",
            type=int,
            default=0,
            help="Also cast this many votes from a bot that always picks one contested model when "
            "it is shown (to see fraud detection at work: its votes on that model are kept out).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            arena = Arena.objects.get(slug=options["arena"])
        except Arena.DoesNotExist:
            raise CommandError(f"Unknown arena {options['arena']!r}.") from None
        if options["votes"] < 1:
            raise CommandError("--votes must be at least 1.")
        if options["voters"] < 1:
            raise CommandError("--voters must be at least 1.")
        if options["promoter_votes"] < 0:
            raise CommandError("--promoter-votes cannot be negative.")
        rng = random.Random(options["seed"])
        skill = {
            m.pk: TIER_SKILL.get(int((m.backend_config or {}).get("quality", 2)), 1000.0)
            + 10 * m.pk % 7
            for m in arena.generative_models.all()
        }
        voters = [Voter.objects.create() for _ in range(options["voters"])]
        promoter = Voter.objects.create() if options["promoter_votes"] else None
        plan = [voters[i % len(voters)] for i in range(options["votes"])]
        plan += [promoter] * options["promoter_votes"] if promoter else []
        # Votes are cast on a simulated clock that starts in the past and moves on as people
        # vote (looking for 5-20 s, then a pause), so their timing looks human to fraud detection.
        clock = SimulatedClock(timezone.now() - timedelta(seconds=40 * len(plan)))
        with clock_patched(clock):
            self._cast(plan, arena, skill, promoter, voters, clock, rng, options)
        created = leaderboard_rebuild(arena=arena).created
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(plan)} votes cast by {len(voters) + bool(promoter)} voter(s); "
                f"{created} leaderboard snapshot(s) built."
            )
        )

    def _cast(
        self,
        plan: list[Voter],
        arena: Arena,
        skill: dict[int, float],
        promoter: Voter | None,
        voters: list[Voter],
        clock: SimulatedClock,
        rng: random.Random,
        options: dict[str, Any],
    ) -> None:
        modes = arena.vote_modes
        target: int | None = None
        for i, voter in enumerate(
            tqdm(plan, desc="voting", unit="vote", disable=options["verbosity"] == 0)
        ):
            try:
                battle = battle_create(
                    arena=arena, voter=voter, mode=modes[i % len(modes)], rng=rng
                )
            except NotEnoughAssets as exc:
                raise CommandError(exc.message) from None
            clock.advance(rng.uniform(5, 20))  # a person looks for a while before voting
            slots = list(battle.slots.values_list("position", "model_id"))
            perf = {pos: skill[model] + rng.gauss(0, NOISE) for pos, model in slots}
            if voter is promoter:
                if target is None:
                    # The bot pushes the model the matchmaker has shown most so far: a contested
                    # one, so the bot sees it often (a model never shown cannot be pushed).
                    target = (
                        BattleSlot.objects.filter(battle__arena=arena)
                        .values("model_id")
                        .annotate(n=Count("pk"))
                        .order_by("-n", "model_id")
                        .values_list("model_id", flat=True)
                        .first()
                    )
                perf = {pos: 1e9 if model == target else perf[pos] for pos, model in slots}
            order = sorted(perf, key=lambda pos: -perf[pos])
            labels = "ABCDEF"
            payload: dict[str, Any]
            if battle.mode == "rank_k":
                payload = {"ranks": {labels[pos]: n + 1 for n, pos in enumerate(order)}}
            else:
                payload = {"choice": labels[order[0]]}
            token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
            vote_record(
                battle_public_id=str(battle.public_id),
                token=token,
                voter=voter,
                client_ip=f"198.51.{100 + voters.index(voter) % 100}.{i % 250 + 1}"
                if voter is not promoter
                else "203.0.113.66",
                user_agent="simulate_votes",
                **payload,
            )
            clock.advance(rng.uniform(5, 60))
