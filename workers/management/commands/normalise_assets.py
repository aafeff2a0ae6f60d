from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from arena.models import Arena, Asset, AssetStatus
from workers.generation import asset_normalise_stored
from workers.media import InvalidMedia


class Command(BaseCommand):
    help = (
        "Bring outputs stored before normalising on ingest into their arena's served form "
        "(the stored file is kept as the original). Idempotent. Prints done / failed / skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--arena", action="append", default=[], help="Arena slug (repeatable; default: all)."
        )
        parser.add_argument(
            "--again",
            action="store_true",
            help="Normalise every ready output afresh from its original (after an arena's "
            "media profile changed), not only those stored before normalising existed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        assets = Asset.objects.filter(status=AssetStatus.READY).select_related("prompt")
        if not options["again"]:
            assets = assets.filter(original_fmt="")
        if options["arena"]:
            known = set(Arena.objects.values_list("slug", flat=True))
            if unknown := sorted(set(options["arena"]) - known):
                raise CommandError(
                    f"Unknown arena(s): {', '.join(unknown)}. Known: {', '.join(sorted(known)) or 'none'}."
                )
            sets = Arena.objects.filter(slug__in=options["arena"]).values("prompt_set_id")
            assets = assets.filter(prompt__prompt_set_id__in=sets)
        done = failed = skipped = 0
        rows = list(assets.order_by("pk"))
        for asset in tqdm(rows, desc="normalising", unit="file", disable=options["verbosity"] < 1):
            try:
                changed = asset_normalise_stored(asset, again=options["again"])
            except (InvalidMedia, ValueError, OSError) as exc:
                failed += 1
                self.stderr.write(f"asset {asset.public_id}: {exc}")
                continue
            done += changed
            skipped += not changed
        self.stdout.write(f"done {done}, failed {failed}, skipped {skipped}")
        if failed:
            raise CommandError(f"{failed} output(s) could not be normalised (see above).")
