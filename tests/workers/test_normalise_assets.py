"""Outputs stored before normalising existed are brought into their arena's form by a command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from arena.models import Asset
from arena.services import asset_regenerate, asset_request, asset_store
from tests.factories import ArenaFactory, GenerativeModelFactory, PromptFactory
from workers.generators import generate
from workers.media import sniff_format, strip_metadata, validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _stored_the_old_way(fmt: str, data: bytes | None = None) -> Asset:
    """An output as stores before normalising kept it: the model's file, no original."""
    arena = ArenaFactory.create()
    model = GenerativeModelFactory.create(output_formats=[fmt])
    arena.generative_models.add(model)
    prompt = PromptFactory.create(prompt_set=arena.prompt_set)
    asset, _ = asset_request(model=model, prompt=prompt)
    if data is None:
        data = strip_metadata(generate(fmt=fmt, prompt="a fox", seed=0, quality=2).data, fmt)
    asset_store(asset=asset, data=data, fmt=fmt, width=384, height=384, duration_s=None,
                generation_ms=5)  # fmt: skip
    Asset.objects.filter(pk=asset.pk).update(original_fmt="")
    asset.refresh_from_db()
    return asset


def test_it_serves_the_arenas_form_and_keeps_the_stored_file_as_the_original(
    media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asset = _stored_the_old_way("webp")
    old_path, old_bytes = Path(asset.file.path), Path(asset.file.path).read_bytes()

    call_command("normalise_assets", verbosity=0)

    asset.refresh_from_db()
    assert (asset.fmt, asset.original_fmt, asset.width) == ("png", "webp", 256)
    assert validate(Path(asset.file.path).read_bytes(), "png").width == 256
    assert Path(asset.original.path).read_bytes() == old_bytes
    assert not old_path.exists(), "the old served file moved to the originals"
    assert capsys.readouterr().out.strip() == "done 1, failed 0, skipped 0"

    call_command("normalise_assets", verbosity=0)  # idempotent: nothing left to do

    assert capsys.readouterr().out.strip() == "done 0, failed 0, skipped 0"
    assert Asset.objects.get(pk=asset.pk).file.name == asset.file.name


def test_a_file_it_cannot_read_fails_loudly_and_changes_nothing(media: Path) -> None:
    broken = _stored_the_old_way("png", data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    good = _stored_the_old_way("webp")

    with pytest.raises(CommandError, match="1 output"):
        call_command("normalise_assets", verbosity=0)

    broken_after = Asset.objects.get(pk=broken.pk)
    assert (broken_after.fmt, broken_after.original_fmt, broken_after.file.name) == (
        "png", "", broken.file.name,
    )  # fmt: skip
    assert Asset.objects.get(pk=good.pk).original_fmt == "webp"
    assert sniff_format(Path(broken.file.path).read_bytes()) == "png"


def test_an_unknown_arena_is_refused_by_name(media: Path) -> None:
    with pytest.raises(CommandError, match="Unknown arena\\(s\\): nowhere"):
        call_command("normalise_assets", "--arena", "nowhere", verbosity=0)


def test_again_renormalises_from_the_original_after_the_profile_changed(media: Path) -> None:
    asset = _stored_the_old_way("webp")
    call_command("normalise_assets", verbosity=0)
    asset.refresh_from_db()
    first_file, original = asset.file.name, Path(asset.original.path).read_bytes()
    arena = asset.prompt.prompt_set.arenas.get()
    arena.media_profile = {**arena.media_profile, "image_side": 128}
    arena.save()

    call_command("normalise_assets", "--again", verbosity=0)

    asset.refresh_from_db()
    assert (asset.fmt, asset.original_fmt, asset.width) == ("png", "webp", 128)
    assert Path(asset.original.path).read_bytes() == original, "still the model's own file"
    assert validate(Path(asset.file.path).read_bytes(), "png").width == 128
    assert asset.file.name != first_file and not (media / first_file).exists()
    assert sorted(p.name for p in (media / "originals").iterdir()) == [
        Path(asset.original.name).name
    ]


def test_regenerating_drops_both_files_and_asks_for_the_models_own_format(media: Path) -> None:
    asset = _stored_the_old_way("webp")
    call_command("normalise_assets", verbosity=0)
    asset.refresh_from_db()
    files = [Path(asset.file.path), Path(asset.original.path)]

    asset_regenerate(asset=asset)

    asset.refresh_from_db()
    assert not asset.file and not asset.original
    assert (asset.fmt, asset.original_fmt) == ("webp", "")
    assert not any(p.exists() for p in files)
