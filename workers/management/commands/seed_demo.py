from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workers.demo import demo_seed


class Command(BaseCommand):
    help = "Create the four demo arenas (text-to-image, text-to-video, image-to-3D meshes, image-to-splat) with models and prompts. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--prompts", type=int, default=30, help="Prompts per arena (default 30)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        created = demo_seed(prompts_per_arena=options["prompts"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {created['arenas']} arenas, {created['models']} models, {created['prompts']} prompts created."
            )
        )
