from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from arena.errors import InvalidImport
from arena.importers import prompts_import, prompts_parse


class Command(BaseCommand):
    help = (
        "Import a prompt set from a .jsonl or .csv file (fields: text, category, tags, conditioning_image, "
        "moderation_state). Every row is checked first; with any bad row nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--set", dest="set_slug", required=True, help="Prompt set slug (created if missing)."
        )
        parser.add_argument("--name", default="", help="Display name for a new prompt set.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            with tqdm(desc="checking", unit="row", disable=options["verbosity"] == 0) as bar:
                rows = prompts_parse(path, progress=bar.update)
            with tqdm(
                total=len(rows), desc="importing", unit="row", disable=options["verbosity"] == 0
            ) as bar:
                result = prompts_import(
                    rows=rows,
                    set_slug=options["set_slug"],
                    set_name=options["name"],
                    progress=bar.update,
                )
        except InvalidImport as exc:
            lines = [exc.message, *(f"  {line}" for line in (exc.detail or []))]
            raise CommandError("\n".join(lines)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Prompt set '{result.prompt_set.slug}': {result.created} imported, "
                f"{result.skipped_existing} already present."
            )
        )
