from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from arena.exports import FORMATS, InvalidExport, export_votes
from arena.models import Arena, Vote


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--since {text!r} is not a date; use YYYY-MM-DD or an ISO 8601 time."
        ) from None
    if len(text) == 10:  # a date: from its start
        parsed = datetime.combine(parsed.date(), time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = (
        "Export an arena's votes (JSON Lines or CSV) with a dataset card and checksums into a "
        "new folder. Streams: memory stays flat whatever the log's size."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--arena", required=True, help="Arena slug.")
        parser.add_argument("--format", default="jsonl", help=f"One of {', '.join(FORMATS)}.")
        parser.add_argument("--out", required=True, help="A new (or empty) folder to write to.")
        parser.add_argument("--since", help="Only votes cast from this date or time (UTC).")
        parser.add_argument("--license", default="cc-by-4.0", help="Licence named in the card.")

    def handle(self, *args: Any, **options: Any) -> None:
        arena = Arena.objects.filter(slug=options["arena"]).first()
        if arena is None:
            known = ", ".join(Arena.objects.order_by("slug").values_list("slug", flat=True))
            raise CommandError(f"Unknown arena {options['arena']!r}. Known: {known or 'none'}.")
        since = _since(options["since"])
        total = Vote.objects.filter(arena=arena)
        if since is not None:
            total = total.filter(created_at__gte=since)
        with tqdm(
            total=total.count(), desc="exporting", unit="vote", disable=options["verbosity"] < 1
        ) as bar:
            try:
                summary = export_votes(
                    arena=arena,
                    out_dir=Path(options["out"]),
                    fmt=options["format"],
                    since=since,
                    licence=options["license"],
                    progress=bar.update,
                )
            except InvalidExport as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{summary.votes} votes ({summary.counted} counted) written to {options['out']}: "
            + ", ".join(sorted(summary.files))
            + ", SHA256SUMS"
        )
