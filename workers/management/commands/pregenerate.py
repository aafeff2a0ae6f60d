from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from arena.models import Arena, GenerativeModel
from workers.pregenerate import pregenerate_plan, pregenerate_run


class Command(BaseCommand):
    help = (
        "Pre-generate the asset cache so battles start instantly. Prints done / failed / skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--arena", action="append", default=[], help="Arena slug (repeatable; default: all)."
        )
        parser.add_argument("--models", nargs="+", default=[], help="Only these model slugs.")
        parser.add_argument(
            "--prompts", type=int, default=None, help="Only the first N prompts of each arena."
        )
        parser.add_argument(
            "--seeds", type=int, default=1, help="Outputs per (model, prompt) (default 1)."
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=os.cpu_count() or 1,
            help="Local processes for builtin models.",
        )
        parser.add_argument(
            "--via-queue", action="store_true", help="Send every job to the Celery queues."
        )
        parser.add_argument("--retry-failed", action="store_true", help="Try failed outputs again.")

    def handle(self, *args: Any, **options: Any) -> None:
        arenas = Arena.objects.filter(is_active=True)
        if options["arena"]:
            known = set(arenas.values_list("slug", flat=True))
            unknown = sorted(set(options["arena"]) - known)
            if unknown:
                raise CommandError(
                    f"Unknown arena(s): {', '.join(unknown)}. Known: {', '.join(sorted(known)) or 'none'}."
                )
            arenas = arenas.filter(slug__in=options["arena"])
        if options["models"]:
            known = set(GenerativeModel.objects.values_list("slug", flat=True))
            unknown = sorted(set(options["models"]) - known)
            if unknown:
                raise CommandError(f"Unknown model(s): {', '.join(unknown)}.")
        if options["seeds"] < 1 or (options["prompts"] is not None and options["prompts"] < 1):
            raise CommandError("--seeds and --prompts must be at least 1.")
        plan = pregenerate_plan(
            arenas=arenas,
            model_slugs=options["models"] or None,
            prompts=options["prompts"],
            seeds=options["seeds"],
            retry_failed=options["retry_failed"],
        )
        with tqdm(
            total=len(plan.todo), desc="generating", unit="asset", disable=options["verbosity"] == 0
        ) as bar:
            summary = pregenerate_run(
                plan=plan, jobs=options["jobs"], via_queue=options["via_queue"], progress=bar.update
            )
        for error in summary.errors[:20]:
            self.stderr.write(f"  failed: {error}")
        message = f"done {summary.done}, failed {summary.failed}, skipped {summary.skipped} (already ready or running)"
        if summary.queued:
            message += f", queued {summary.queued}"
        self.stdout.write(
            self.style.SUCCESS(message) if not summary.failed else self.style.WARNING(message)
        )
