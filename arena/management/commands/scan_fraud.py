from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from arena.fraud import fraud_scan
from arena.models import Arena


class Command(BaseCommand):
    help = (
        "Run fraud detection now: judge the voters of new votes (or all voters with --full), "
        "exclude or restore their votes and write the audit log. Beat runs this periodically."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--arena", action="append", default=[], help="Arena slug (repeatable; default: all)."
        )
        parser.add_argument(
            "--full", action="store_true", help="Judge every voter, not only the new votes' ones."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arenas = Arena.objects.filter(is_active=True).order_by("pk")
        if options["arena"]:
            unknown = sorted(set(options["arena"]) - set(arenas.values_list("slug", flat=True)))
            if unknown:
                raise CommandError(f"Unknown arena(s): {', '.join(unknown)}.")
            arenas = arenas.filter(slug__in=options["arena"])
        for arena in tqdm(
            list(arenas), desc="scanning", unit="arena", disable=options["verbosity"] == 0
        ):
            result = fraud_scan(arena=arena, full=options["full"])
            verdicts = ", ".join(f"{n} {v}" for v, n in sorted(result.verdicts.items())) or "none"
            self.stdout.write(
                f"{arena.slug}: {result.voters_scanned} voter(s) judged ({verdicts}); "
                f"{result.votes_excluded} vote(s) excluded, {result.votes_restored} restored "
                f"in {result.duration_ms} ms"
            )
        self.stdout.write(self.style.SUCCESS("Fraud scan done."))
