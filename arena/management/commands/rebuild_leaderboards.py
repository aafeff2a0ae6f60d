from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from arena.leaderboards import METHODS, leaderboard_rebuild
from arena.models import Arena


class Command(BaseCommand):
    help = "Rebuild leaderboard snapshots (Bayesian, Bradley-Terry with bootstrap CIs, ELO) from the votes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--arena", action="append", default=[], help="Arena slug (repeatable; default: all)."
        )
        parser.add_argument("--method", action="append", default=[], choices=METHODS)

    def handle(self, *args: Any, **options: Any) -> None:
        arenas = Arena.objects.filter(is_active=True)
        if options["arena"]:
            unknown = sorted(set(options["arena"]) - set(arenas.values_list("slug", flat=True)))
            if unknown:
                raise CommandError(f"Unknown arena(s): {', '.join(unknown)}.")
            arenas = arenas.filter(slug__in=options["arena"])
        methods = options["method"] or list(METHODS)
        created = 0
        for arena in tqdm(
            list(arenas), desc="rebuilding", unit="arena", disable=options["verbosity"] == 0
        ):
            result = leaderboard_rebuild(arena=arena, methods=methods)
            created += result.created
            if options["verbosity"] > 1:
                for snapshot in result.snapshots:
                    self.stdout.write(
                        f"{arena.slug} {snapshot.method}: {snapshot.votes} votes, {snapshot.vote_set_hash[:8]}"
                    )
        self.stdout.write(
            self.style.SUCCESS(f"{created} new snapshot(s); unchanged leaderboards were reused.")
        )
