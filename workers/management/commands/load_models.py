from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.registry import RegistryError, registry_load


class Command(BaseCommand):
    help = (
        "Make the models in the database those of a registry file (TOML, e.g. models/example.toml): "
        "add the new ones, update the changed ones, deactivate the active ones it does not list. "
        "Checks the whole file first and applies all changes or none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The registry file.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        dry_run: bool = options["dry_run"]
        try:
            plan = registry_load(path, dry_run=dry_run)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{path}: " + "\n".join(plan.lines()))
        if dry_run:
            self.stdout.write("Dry run: nothing changed.")
        elif plan.is_empty:
            self.stdout.write(self.style.SUCCESS("Nothing to change."))
        else:
            self.stdout.write(self.style.SUCCESS("Applied."))
