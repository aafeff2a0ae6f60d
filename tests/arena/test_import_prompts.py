"""manage.py import_prompts: all rows or none, a clear error per bad row."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from arena.models import Prompt, PromptSet

pytestmark = pytest.mark.django_db


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_it_imports_a_jsonl_prompt_set_with_an_image(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), "red").save(tmp_path / "teapot.png")
    source = _jsonl(
        tmp_path / "set.jsonl",
        [
            {
                "text": "a red teapot",
                "category": "objects",
                "tags": ["kitchen"],
                "conditioning_image": "teapot.png",
            },
            {"text": "a  blue   car", "tags": "vehicles, toys"},
        ],
    )
    out = io.StringIO()

    call_command("import_prompts", str(source), "--set", "objects", stdout=out, verbosity=0)

    prompts = list(Prompt.objects.order_by("id"))
    assert [p.text for p in prompts] == ["a red teapot", "a blue car"]
    assert prompts[0].conditioning_image.name.endswith(".png")
    assert prompts[1].tags == ["vehicles", "toys"]
    assert "2 imported" in out.getvalue()


def test_it_imports_csv_and_skips_prompts_already_present(tmp_path: Path) -> None:
    source = tmp_path / "set.csv"
    source.write_text("text,category,tags\na cat,animals,pets;cute\na dog,animals,\n")
    call_command("import_prompts", str(source), "--set", "animals", verbosity=0)
    out = io.StringIO()

    call_command("import_prompts", str(source), "--set", "animals", stdout=out, verbosity=0)

    assert Prompt.objects.count() == 2
    assert "0 imported, 2 already present" in out.getvalue()


def test_one_bad_row_imports_nothing_and_names_every_bad_line(tmp_path: Path) -> None:
    source = _jsonl(
        tmp_path / "set.jsonl",
        [
            {"text": "fine prompt"},
            "{broken json",
            {"text": ""},
            {"text": "fine prompt"},
            {"text": "x", "conditioning_image": "missing.png"},
            {"text": "y", "colour": "red"},
        ],
    )

    with pytest.raises(CommandError) as caught:
        call_command("import_prompts", str(source), "--set", "bad", verbosity=0)

    message = str(caught.value)
    assert "5 bad row(s)" in message
    assert "line 2: not valid JSON" in message
    assert "line 3: 'text' is missing or empty" in message
    assert "line 4: duplicate of line 1" in message
    assert "line 5: conditioning image 'missing.png' not found" in message
    assert "line 6: unknown field(s) colour" in message
    assert not Prompt.objects.exists()
    assert not PromptSet.objects.exists()


def test_an_unsupported_file_type_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "set.txt"
    source.write_text("hello")

    with pytest.raises(CommandError, match=r"use a \.jsonl or \.csv file"):
        call_command("import_prompts", str(source), "--set", "x", verbosity=0)


def test_a_csv_without_a_text_column_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "set.csv"
    source.write_text("prompt\nhello\n")

    with pytest.raises(CommandError, match="'text' column"):
        call_command("import_prompts", str(source), "--set", "x", verbosity=0)
    assert not Prompt.objects.exists()
