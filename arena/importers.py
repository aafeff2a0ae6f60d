"""Prompt-set import from JSONL or CSV: validate every row first, then import all or nothing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.text import slugify

from arena.errors import InvalidImport
from arena.models import ModerationState, Prompt, PromptSet

MAX_PROMPT_CHARS = 2000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


@dataclass
class PromptRow:
    line: int
    text: str
    category: str = ""
    tags: list[str] = field(default_factory=list)
    image_path: Path | None = None
    moderation_state: str = ModerationState.APPROVED


@dataclass(frozen=True)
class ImportResult:
    prompt_set: PromptSet
    created: int
    skipped_existing: int


def _raw_rows(path: Path) -> Iterable[tuple[int, Any]]:
    """(line number, dict or an error string) for each non-blank record of the file."""
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON ({exc.msg} at column {exc.colno})"
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "text" not in reader.fieldnames:
            raise InvalidImport(
                f"{path.name}: the CSV header must have a 'text' column (found {reader.fieldnames})."
            )
        for record in reader:
            if None in record:
                yield reader.line_num, "has more cells than the header"
            elif any((v or "").strip() for v in record.values()):
                yield reader.line_num, record
    else:
        raise InvalidImport(
            f"{path.name}: use a .jsonl or .csv file (got '{suffix or 'no extension'}')."
        )


def _row_checked(number: int, record: Any, base_dir: Path) -> PromptRow:
    if isinstance(record, str):
        raise InvalidImport(record)
    if not isinstance(record, dict):
        raise InvalidImport("each record must be an object with a 'text' field")
    unknown = sorted(
        set(record) - {"text", "category", "tags", "conditioning_image", "moderation_state"}
    )
    if unknown:
        raise InvalidImport(f"unknown field(s) {', '.join(unknown)}")
    # Checked in field order, so a row with several faults reports the first one.
    text = _text_checked(record.get("text"))
    category = record.get("category") or ""
    if not isinstance(category, str) or len(category) > 60:
        raise InvalidImport("'category' must be text of at most 60 characters")
    tags = _tags_checked(record.get("tags") or [])
    state = record.get("moderation_state") or ModerationState.APPROVED
    if state not in ModerationState.values:
        raise InvalidImport(
            f"'moderation_state' must be one of {', '.join(ModerationState.values)}"
        )
    image_path = _image_checked(record.get("conditioning_image"), base_dir)
    return PromptRow(number, text, category, tags, image_path, state)


def _text_checked(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidImport("'text' is missing or empty")
    text = " ".join(text.split())
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidImport(f"'text' is longer than {MAX_PROMPT_CHARS} characters")
    return text


def _tags_checked(tags: Any) -> list[str]:
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace(";", ",").split(",") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidImport("'tags' must be a list of strings or a comma-separated string")
    return list(tags)


def _image_checked(image: Any, base_dir: Path) -> Path | None:
    """The conditioning image's resolved path (``None`` when the row has none)."""
    if not image:
        return None
    if not isinstance(image, str):
        raise InvalidImport("'conditioning_image' must be a file path")
    image_path = (base_dir / image).resolve()
    if image_path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InvalidImport(
            f"conditioning image '{image}' must be one of {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    if not image_path.is_file():
        raise InvalidImport(f"conditioning image '{image}' not found")
    if image_path.stat().st_size > MAX_IMAGE_BYTES:
        raise InvalidImport(f"conditioning image '{image}' is larger than 10 MB")
    return image_path


def prompts_parse(
    path: Path, *, progress: Callable[[int], object] | None = None
) -> list[PromptRow]:
    """Validate every row; raise one InvalidImport listing every bad row ("line N: ...")."""
    if not path.is_file():
        raise InvalidImport(f"{path}: no such file")
    rows: list[PromptRow] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for number, record in _raw_rows(path):
        try:
            row = _row_checked(number, record, path.parent)
        except InvalidImport as exc:
            errors.append(f"line {number}: {exc.message}")
        else:
            if row.text in first_line:
                errors.append(f"line {number}: duplicate of line {first_line[row.text]}")
            else:
                first_line[row.text] = number
                rows.append(row)
        if progress:
            progress(1)
    if errors:
        raise InvalidImport(
            f"{len(errors)} bad row(s) in {path.name}; nothing was imported.", detail=errors
        )
    if not rows:
        raise InvalidImport(f"{path.name} has no prompts.")
    return rows


def prompts_import(
    *,
    rows: list[PromptRow],
    set_slug: str,
    set_name: str = "",
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """Import validated rows into a prompt set in one transaction; existing texts are skipped."""
    slug = slugify(set_slug)
    if not slug:
        raise InvalidImport("The prompt set needs a name made of letters or digits.")
    created = skipped = 0
    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.get_or_create(
            slug=slug, defaults={"name": set_name or set_slug}
        )
        existing = set(Prompt.objects.filter(prompt_set=prompt_set).values_list("text", flat=True))
        for row in rows:
            if row.text in existing:
                skipped += 1
            else:
                prompt = Prompt(
                    prompt_set=prompt_set,
                    text=row.text,
                    category=row.category,
                    tags=row.tags,
                    moderation_state=row.moderation_state,
                )
                if row.image_path is not None:
                    prompt.conditioning_image.save(
                        f"cond-{slug}-{row.line}{row.image_path.suffix.lower()}",
                        ContentFile(row.image_path.read_bytes()),
                        save=False,
                    )
                prompt.save()
                created += 1
            if progress:
                progress(1)
    return ImportResult(prompt_set=prompt_set, created=created, skipped_existing=skipped)
