"""``load_models``: the registry file of generative models (workers.registry), checked, planned,
applied all or nothing, and its errors pointing at the file, line and field to fix."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from arena.models import GenerativeModel, Task
from tests.factories import ArenaFactory, GenerativeModelFactory
from workers.registry import registry_parse

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "models" / "example.toml"

REGISTRY = """\
version = 1

[[models]]
name = "Painter"
organisation = "Lab A"
task = "text-to-image"
output_formats = ["png"]
backend = "builtin"
backend_config = { quality = 3, style = 1 }
queue = "gen.cpu"

[[models]]
name = "Remote Painter"
task = "text-to-image"
output_formats = ["webp"]
backend = "gradio"
queue = "gen.remote"
max_in_flight = 2
daily_budget = 100

[models.backend_config]
src = "owner/space"
api_name = "/infer"
params = { prompt = "{prompt}", seed = "{seed}" }
"""


def write(tmp_path: Path, text: str, name: str = "models.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``text`` containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def load(path: Path, *args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("load_models", str(path), *args, stdout=out)
    return out.getvalue()


def rows() -> list[dict[str, Any]]:
    return [dict(row) for row in GenerativeModel.objects.order_by("slug").values()]


def test_it_shows_the_plan_and_changes_nothing_on_a_dry_run(tmp_path: Path) -> None:
    GenerativeModelFactory.create(name="Old", slug="old")
    before = rows()

    out = load(write(tmp_path, REGISTRY), "--dry-run")

    assert "2 to add, 0 to update, 1 to deactivate, 0 unchanged" in out
    assert "+ add        Painter (text-to-image, builtin, queue gen.cpu)" in out
    assert "+ add        Remote Painter (text-to-image, gradio, queue gen.remote)" in out
    assert "- deactivate Old (old; not in the file)" in out
    assert "Dry run: nothing changed." in out
    assert rows() == before


def test_it_adds_the_models_of_the_file_with_their_fields_and_defaults(tmp_path: Path) -> None:
    load(write(tmp_path, REGISTRY))

    painter = GenerativeModel.objects.get(slug="painter")
    remote = GenerativeModel.objects.get(slug="remote-painter")
    assert (painter.name, painter.organisation, painter.task) == (
        "Painter",
        "Lab A",
        "text-to-image",
    )
    assert painter.backend_config == {"quality": 3, "style": 1}
    assert (painter.max_in_flight, painter.daily_budget, painter.is_active) == (8, 0, True)
    assert (remote.queue, remote.max_in_flight, remote.daily_budget) == ("gen.remote", 2, 100)
    assert remote.backend_config == {
        "src": "owner/space",
        "api_name": "/infer",
        "params": {"prompt": "{prompt}", "seed": "{seed}"},
    }


def test_it_updates_changed_models_and_deactivates_those_the_file_leaves_out(
    tmp_path: Path,
) -> None:
    GenerativeModelFactory.create(name="Old", slug="old")
    load(write(tmp_path, REGISTRY))
    changed = REGISTRY.replace('queue = "gen.remote"', 'queue = "gen.gpu"').replace(
        "max_in_flight = 2", "max_in_flight = 3"
    )

    out = load(write(tmp_path, changed))

    assert "0 to add, 1 to update, 0 to deactivate, 1 unchanged" in out
    assert (
        "~ update     Remote Painter: queue: 'gen.remote' -> 'gen.gpu'; max_in_flight: 2 -> 3"
        in out
    )
    remote = GenerativeModel.objects.get(slug="remote-painter")
    assert (remote.queue, remote.max_in_flight) == ("gen.gpu", 3)
    assert not GenerativeModel.objects.get(slug="old").is_active
    assert GenerativeModel.objects.filter(is_active=True).count() == 2


def test_a_second_load_of_the_same_file_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, REGISTRY)
    load(path)
    before = rows()

    out = load(path)

    assert "0 to add, 0 to update, 0 to deactivate, 2 unchanged" in out
    assert "Nothing to change." in out
    assert rows() == before


def test_listing_a_deactivated_model_again_switches_it_back_on(tmp_path: Path) -> None:
    GenerativeModelFactory.create(name="Painter", slug="painter", is_active=False)

    out = load(write(tmp_path, REGISTRY))

    assert "~ update     Painter:" in out and "is_active: False -> True" in out
    assert GenerativeModel.objects.get(slug="painter").is_active


def test_it_puts_a_model_in_exactly_the_arenas_the_file_names(tmp_path: Path) -> None:
    images = ArenaFactory.create(slug="images", task=Task.TEXT_TO_IMAGE)
    other = ArenaFactory.create(slug="more-images", task=Task.TEXT_TO_IMAGE)
    text = REGISTRY.replace('queue = "gen.cpu"', 'queue = "gen.cpu"\narenas = ["images"]')
    load(write(tmp_path, text))
    painter = GenerativeModel.objects.get(slug="painter")
    assert list(painter.arenas.all()) == [images]

    out = load(write(tmp_path, text.replace('["images"]', '["more-images"]')))

    assert "arenas: ['images'] -> ['more-images']" in out
    assert list(painter.arenas.all()) == [other]
    assert list(GenerativeModel.objects.get(slug="remote-painter").arenas.all()) == []


# -- bad files: the error names file:line: field, and nothing changes -----------------------------
BAD_FILES = [
    pytest.param(
        REGISTRY.replace('name = "Painter"', 'name = "Painter'),
        'name = "Painter',
        "not valid TOML",
        id="toml-syntax",
    ),
    pytest.param(
        REGISTRY.replace(
            'task = "text-to-image"\noutput_formats = ["webp"]', 'output_formats = ["webp"]'
        ),
        ("[[models]]", 2),
        "models[1].task: required, but missing",
        id="missing-field",
    ),
    pytest.param(
        REGISTRY.replace('task = "text-to-image"', 'task = "text-to-audio"', 1),
        'task = "text-to-audio"',
        "models[0].task: must be one of text-to-image, text-to-video",
        id="bad-enum",
    ),
    pytest.param(
        REGISTRY.replace('backend = "builtin"', 'backend = "comfyui"'),
        'backend = "comfyui"',
        "models[0].backend: unknown backend 'comfyui'; available: builtin, diffusers, gradio, http",
        id="unknown-backend",
    ),
    pytest.param(
        REGISTRY.replace('api_name = "/infer"', 'api_name = "infer"'),
        'api_name = "infer"',
        "models[1].backend_config.api_name: gradio: 'api_name' must be an endpoint name",
        id="bad-backend-config",
    ),
    pytest.param(
        REGISTRY.replace("quality = 3", "quality = 9"),
        "quality = 9",
        "models[0].backend_config.quality: builtin:",
        id="bad-backend-config-inline",
    ),
    pytest.param(
        REGISTRY.replace('name = "Remote Painter"', 'name = "Painter"\nslug = "painter-2"'),
        ('name = "Painter"', 2),
        "models[1].name: 'Painter' is also the name of models[0]",
        id="duplicate-names",
    ),
    pytest.param(
        REGISTRY.replace('name = "Remote Painter"', 'name = "Painter!"'),
        ('name = "Painter!"', 1),
        "models[1].slug: 'painter' is also the slug of models[0]",
        id="duplicate-slugs",
    ),
    pytest.param(
        REGISTRY.replace("daily_budget = 100", "daily_budget = -1"),
        "daily_budget = -1",
        "models[1].daily_budget: Input should be greater than or equal to 0",
        id="negative-budget",
    ),
    pytest.param(
        REGISTRY.replace("max_in_flight = 2", 'max_in_flight = "2"'),
        'max_in_flight = "2"',
        "models[1].max_in_flight: Input should be a valid integer",
        id="string-for-int",
    ),
    pytest.param(
        REGISTRY.replace('queue = "gen.cpu"', 'queue = "light"'),
        'queue = "light"',
        "models[0].queue: 'light' is for light work",
        id="light-queue",
    ),
    pytest.param(
        REGISTRY.replace('output_formats = ["png"]', 'output_formats = ["mp4"]'),
        'output_formats = ["mp4"]',
        "models[0].output_formats: mp4 not allowed for text-to-image",
        id="format-for-another-task",
    ),
    pytest.param(
        REGISTRY.replace('organisation = "Lab A"', 'organization = "Lab A"'),
        'organization = "Lab A"',
        "models[0].organization: unknown field",
        id="unknown-field",
    ),
    pytest.param(
        REGISTRY.replace("version = 1", "version = 2"),
        "version = 2",
        "version: Input should be 1",
        id="unknown-version",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD_FILES)
def test_a_bad_file_is_refused_naming_file_line_and_field_and_nothing_changes(
    tmp_path: Path, text: str, where: str | tuple[str, int], message: str
) -> None:
    GenerativeModelFactory.create(name="Old", slug="old")
    before = rows()
    path = write(tmp_path, text)
    needle, occurrence = where if isinstance(where, tuple) else (where, 1)

    with pytest.raises(CommandError) as caught:
        load(path)

    assert f"{path}:{line_of(text, needle, occurrence)}: {message}" in str(caught.value)
    assert "nothing changed" in str(caught.value)
    assert rows() == before


def test_every_problem_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    text = REGISTRY.replace('backend = "builtin"', 'backend = "comfyui"').replace(
        "daily_budget = 100", "daily_budget = -1"
    )
    path = write(tmp_path, text)

    with pytest.raises(CommandError, match="2 problems, nothing changed") as caught:
        load(path)

    assert f"{path}:{line_of(text, 'comfyui')}: models[0].backend" in str(caught.value)
    assert f"{path}:{line_of(text, 'daily_budget')}: models[1].daily_budget" in str(caught.value)


def test_an_unknown_or_other_task_arena_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    ArenaFactory.create(slug="videos", task=Task.TEXT_TO_VIDEO)
    text = REGISTRY.replace('queue = "gen.cpu"', 'queue = "gen.cpu"\narenas = ["videos", "nope"]')
    path = write(tmp_path, text)

    with pytest.raises(CommandError) as caught:
        load(path)

    at = f"{path}:{line_of(text, 'arenas =')}: models[0].arenas"
    assert f"{at}: arena 'videos' is for text-to-video, this model for text-to-image" in str(
        caught.value
    )
    assert f"{at}: no arena 'nope'" in str(caught.value)
    assert not GenerativeModel.objects.exists()


def test_a_name_another_model_holds_in_the_database_is_refused(tmp_path: Path) -> None:
    GenerativeModelFactory.create(name="Painter", slug="the-painter")
    path = write(tmp_path, REGISTRY)

    with pytest.raises(CommandError) as caught:
        load(path)

    line = line_of(REGISTRY, 'name = "Painter"')
    assert (
        f"{path}:{line}: models[0].name: 'Painter' is the name "
        "of the model with slug 'the-painter' in the database; set slug = 'the-painter'"
    ) in str(caught.value)
    assert GenerativeModel.objects.count() == 1


def test_a_missing_file_and_an_empty_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read it"):
        load(tmp_path / "absent.toml")
    empty = write(tmp_path, "version = 1\n")
    with pytest.raises(CommandError, match=re.escape(f"{empty}:1: models: required, but missing")):
        load(empty)


def test_a_key_inside_a_multiline_string_is_not_taken_for_a_field(tmp_path: Path) -> None:
    text = REGISTRY.replace(
        'organisation = "Lab A"',
        'description = """\nqueue = "not a key"\n"""\norganisation = "Lab A"',
    ).replace('queue = "gen.cpu"', 'queue = "light"')
    path = write(tmp_path, text)

    with pytest.raises(CommandError) as caught:
        load(path)

    line = line_of(text, 'queue = "light"')
    assert f"{path}:{line}: models[0].queue" in str(caught.value)


def test_a_diffusers_entry_is_checked_without_torch_or_its_weights(tmp_path: Path) -> None:
    entry = """
    [[models]]
    name = "Local SDXL"
    task = "text-to-image"
    output_formats = ["png"]
    backend = "diffusers"
    queue = "gen.gpu"
    backend_config = { weights_path = "/nowhere/sdxl", dtype = "float16", steps = 30 }
    """
    good = write(tmp_path, REGISTRY + textwrap.dedent(entry))
    assert [spec.values["backend"] for spec in registry_parse(good)][-1] == "diffusers"

    bad_text = REGISTRY + textwrap.dedent(entry).replace('"float16"', '"float8"')
    bad = write(tmp_path, bad_text, "bad.toml")
    with pytest.raises(CommandError) as caught:
        load(bad)
    assert (
        f"{bad}:{line_of(bad_text, 'float8')}: models[2].backend_config.dtype: diffusers: "
        "'dtype' must be one of float16, bfloat16, float32"
    ) in str(caught.value)


# -- the shipped example -----------------------------------------------------------------------
def test_the_shipped_example_is_a_valid_registry_file() -> None:
    specs = registry_parse(EXAMPLE)

    assert {spec.values["task"] for spec in specs} >= {
        "text-to-image",
        "text-to-video",
        "image-to-3d",
    }
    backends = [spec.values["backend"] for spec in specs]
    assert backends.count("gradio") >= 3 and "diffusers" in backends


def test_the_shipped_example_loads_into_arenas_of_its_tasks() -> None:
    for slug, task in [
        ("text-to-image", Task.TEXT_TO_IMAGE),
        ("text-to-video", Task.TEXT_TO_VIDEO),
        ("image-to-3d", Task.IMAGE_TO_3D),
    ]:
        ArenaFactory.create(slug=slug, task=task)

    load(EXAMPLE)

    assert GenerativeModel.objects.filter(is_active=True).count() == len(registry_parse(EXAMPLE))
    assert "4 unchanged" in load(EXAMPLE, "--dry-run")


def test_a_change_the_database_refuses_midway_leaves_nothing_half_applied(tmp_path: Path) -> None:
    # Two models swapping names pass every check, but the first rename hits the unique index
    # while the other still holds the name: the queue change made before it must be undone.
    GenerativeModelFactory.create(name="Painter", slug="painter", queue="gen.cpu")
    GenerativeModelFactory.create(name="A", slug="a")
    GenerativeModelFactory.create(name="B", slug="b")
    before = rows()
    swap = """
    [[models]]
    name = "{name}"
    slug = "{slug}"
    task = "text-to-image"
    output_formats = ["png"]
    backend = "builtin"
    backend_config = {{ quality = 3, style = 0 }}
    queue = "gen.cpu"
    """
    text = (
        REGISTRY.split('[[models]]\nname = "Remote')[0].replace(
            'queue = "gen.cpu"', 'queue = "gen.gpu"'
        )
        + textwrap.dedent(swap.format(name="B", slug="a"))
        + textwrap.dedent(swap.format(name="A", slug="b"))
    )

    with pytest.raises(CommandError, match="the database refused the change"):
        load(write(tmp_path, text))

    assert rows() == before


def test_updating_every_model_reads_the_models_once_not_once_per_model(tmp_path: Path) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    load(write(tmp_path, REGISTRY))
    changed = REGISTRY.replace('organisation = "Lab A"', 'organisation = "Lab B"').replace(
        "daily_budget = 100", "daily_budget = 50"
    )
    with CaptureQueriesContext(connection) as ctx:
        load(write(tmp_path, changed))
    # Reads of the models table itself (not of the model-arena links).
    reads = [
        q["sql"]
        for q in ctx.captured_queries
        if re.search(r'FROM "arena_generativemodel"(\s|$)', q["sql"])
    ]
    assert [r["organisation"] for r in rows()][:1] == ["Lab B"]
    assert len(reads) <= 2, reads  # the plan's locked read and the rows to update, in bulk
