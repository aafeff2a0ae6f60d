"""The ``diffusers`` backend with the real libraries: a tiny pipeline built from configs, on the CPU.

Nothing is downloaded: :mod:`tests.workers.tiny_pipeline` builds a randomly initialised Stable
Diffusion pipeline and saves it with ``save_pretrained``; the backend loads that folder like any
real model. The error paths (a missing folder, a wrong pipeline class, a generation past its
time limit, a device that does not exist) run through real torch and diffusers too, and the
whole path through a real Celery worker ends in a battle served from the stored output.

These tests need torch, diffusers and transformers (the ``gpu`` extra; on a machine without a
GPU torch's CPU build is enough)::

    .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    .venv/bin/pip install -c requirements/gpu.txt diffusers transformers accelerate safetensors

Without them they are skipped, unless ``ARENA_REQUIRE_TORCH=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from arena.models import Asset, AssetStatus, GenerativeModel
from arena.services import asset_request
from tests.factories import ArenaFactory, GenerativeModelFactory, PromptFactory
from tests.workers.real_worker import wait_until_settled
from workers.backends import (
    BackendConfigError,
    DiffusersBackend,
    GenerationRequest,
    TransientBackendError,
)
from workers.media import validate
from workers.tasks import generate_asset_enqueue

_MISSING = [
    name
    for name in ("torch", "diffusers", "transformers")
    if importlib.util.find_spec(name) is None
]
if _MISSING:
    _REASON = (
        f"not installed: {', '.join(_MISSING)} (the gpu extra: pip install torch==2.13.0 "
        "-c requirements/gpu.txt diffusers transformers accelerate safetensors)"
    )
    if os.environ.get("ARENA_REQUIRE_TORCH") == "1":
        pytest.fail(f"ARENA_REQUIRE_TORCH=1 but {_REASON}", pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)

from tests.workers.tiny_pipeline import PIPELINE_CLASS, SIZE, build_tiny_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline's folder (built once per module, about a second)."""
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-diffusers"))


def cpu_config(weights: Path | str, **overrides: Any) -> dict[str, Any]:
    return {
        "weights_path": str(weights),
        "device": "cpu",
        "steps": 2,
        "width": SIZE,
        "height": SIZE,
        **overrides,
    }


def copy_with_index(
    folder: Path, target: Path, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> Path:
    """A copy of the pipeline ``folder`` at ``target`` with its model_index.json edited."""
    shutil.copytree(folder, target)
    index = target / "model_index.json"
    index.write_text(json.dumps(edit(json.loads(index.read_text()))))
    return target


def request(config: dict[str, Any], *, fmt: str = "png", seed: int = 7, **kw: Any) -> Any:
    return GenerationRequest(fmt=fmt, prompt="a red cat", seed=seed, config=config, **kw)


# -- the backend in this process, with the real libraries --------------------------------------
def test_the_saved_folder_is_a_diffusers_pipeline_of_every_component(tiny: Path) -> None:
    index = json.loads((tiny / "model_index.json").read_text())

    assert index["_class_name"] == PIPELINE_CLASS
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (tiny / part).is_dir(), part
    assert list((tiny / "unet").glob("*.safetensors"))


def test_the_backend_checks_and_generates_from_the_folder_on_the_cpu(tiny: Path) -> None:
    backend = DiffusersBackend()
    config = cpu_config(tiny)

    backend.check_config(config, ["png", "webp"])
    png = backend.generate(request(config))
    again = backend.generate(request(config))
    other_seed = backend.generate(request(config, seed=8))
    webp = backend.generate(request(config, fmt="webp"))

    info = validate(png.data, "png")
    assert (info.width, info.height) == (SIZE, SIZE)
    assert validate(webp.data, "webp").width == SIZE
    assert again.data == png.data  # the seed fixes the output
    assert other_seed.data != png.data
    colours = Image.open(io.BytesIO(png.data)).convert("RGB").getcolors(SIZE * SIZE)
    assert colours is not None and len(colours) > 16  # an image, not a flat fill


def test_a_conditioning_image_goes_through_the_image_to_image_pipeline(tiny: Path) -> None:
    backend = DiffusersBackend()
    config = cpu_config(tiny, steps=4)
    conditioning = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(conditioning, format="PNG")

    plain = backend.generate(request(config))
    from_image = backend.generate(request(config, conditioning_image=conditioning.getvalue()))

    assert validate(from_image.data, "png").width == SIZE
    assert from_image.data != plain.data
    assert backend._cached is not None  # the pipelines it keeps: the text one, and from it
    assert type(backend._cached[1]["image"]).__name__ == "StableDiffusionImg2ImgPipeline"


def test_a_missing_folder_is_a_config_error_before_anything_loads(tmp_path: Path) -> None:
    config = cpu_config(tmp_path / "nowhere")

    with pytest.raises(BackendConfigError, match="does not exist"):
        DiffusersBackend().check_config(config, ["png"])
    with pytest.raises(BackendConfigError, match="does not exist"):
        DiffusersBackend().generate(request(config))


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        # A class of another model family: its components are not in the folder.
        ("StableDiffusionXLPipeline", "needs text_encoder_2, tokenizer_2"),
        ("NoSuchThingPipeline", "is not a class of the installed diffusers"),
    ],
)
def test_a_wrong_pipeline_class_is_a_config_error(tiny: Path, pipeline: str, message: str) -> None:
    config = cpu_config(tiny, pipeline=pipeline)

    with pytest.raises(BackendConfigError, match=message):
        DiffusersBackend().check_config(config, ["png"])  # "Check now" on a worker says so
    with pytest.raises(BackendConfigError, match=message):
        DiffusersBackend().generate(request(config))


def test_a_folder_whose_index_names_another_family_is_a_config_error_on_load(
    tiny: Path, tmp_path: Path
) -> None:
    mislabelled = copy_with_index(
        tiny,
        tmp_path / "mislabelled",
        lambda index: {**index, "_class_name": "KandinskyV22Pipeline"},
    )

    with pytest.raises(BackendConfigError, match=r"the auto pipeline cannot load .* expected"):
        DiffusersBackend().generate(request(cpu_config(mislabelled)))


def test_the_folders_own_class_loads_without_its_optional_components(
    tiny: Path, tmp_path: Path
) -> None:
    optional = ("safety_checker", "feature_extractor", "image_encoder")
    lean = copy_with_index(
        tiny, tmp_path / "lean", lambda index: {k: v for k, v in index.items() if k not in optional}
    )
    config = cpu_config(lean, pipeline=PIPELINE_CLASS)

    DiffusersBackend().check_config(config, ["png"])
    assert validate(DiffusersBackend().generate(request(config)).data, "png").width == SIZE


def test_the_folders_own_class_named_explicitly_loads(tiny: Path) -> None:
    config = cpu_config(tiny, pipeline=PIPELINE_CLASS)

    DiffusersBackend().check_config(config, ["png"])
    assert validate(DiffusersBackend().generate(request(config)).data, "png").width == SIZE


def test_a_generation_past_its_timeout_stops_and_is_retryable(tiny: Path) -> None:
    backend = DiffusersBackend()
    slow = cpu_config(tiny, steps=500, timeout_s=0.05)  # 500 steps take seconds on a CPU

    with pytest.raises(TransientBackendError, match=r"longer than timeout_s=0\.05 s"):
        backend.generate(request(slow))

    # The pipeline stopped between two steps: the same cached pipeline generates again.
    assert validate(backend.generate(request(cpu_config(tiny))).data, "png").width == SIZE


def test_a_device_that_does_not_exist_is_a_config_error(tiny: Path) -> None:
    import torch

    device = f"cuda:{torch.cuda.device_count()}"  # one past the last, or cuda:0 on a CPU host
    config = cpu_config(tiny, device=device, dtype="float32")

    with pytest.raises(BackendConfigError, match=r"no CUDA device|CUDA device\(s\)"):
        DiffusersBackend().check_config(config, ["png"])
    with pytest.raises(BackendConfigError, match=r"no CUDA device|CUDA device\(s\)"):
        DiffusersBackend().generate(request(config))


# -- through a real Celery worker ----------------------------------------------------------------
def _diffusers_model(queue: str, config: dict[str, Any], **fields: Any) -> GenerativeModel:
    return GenerativeModelFactory.create(
        queue=queue, backend="diffusers", backend_config=config, **fields
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_generates_through_the_tiny_pipeline_and_a_battle_serves_it(
    worker: dict[str, Any], settings: Any, tiny: Path, client: Client
) -> None:
    settings.MEDIA_ROOT = worker["media"]
    arena = ArenaFactory.create(media_profile={"image_side": 128})
    prompt = PromptFactory.create(prompt_set=arena.prompt_set, text="a red cat on a mat")
    models = [
        _diffusers_model(worker["queue"], cpu_config(tiny), output_formats=["webp"]),
        _diffusers_model(worker["queue"], cpu_config(tiny, steps=3, guidance=2.0)),
    ]
    arena.generative_models.add(*models)
    ids = []
    for model in models:
        asset, _ = asset_request(model=model, prompt=prompt)
        ids.append(asset.pk)
        generate_asset_enqueue(asset_id=asset.pk, queue=model.queue, backend="diffusers")

    assets = wait_until_settled(ids, worker)

    assert [a.status for a in assets] == [AssetStatus.READY] * 2, [a.error for a in assets]
    # Stored normalised like any output: the arena's PNG square; the WebP original kept.
    assert [(a.original_fmt, a.fmt) for a in assets] == [("webp", "png"), ("png", "png")]
    for asset in assets:
        data = Path(asset.file.path).read_bytes()
        info = validate(data, "png")
        assert (info.width, info.height) == (128, 128)
        assert asset.size_bytes == len(data) and asset.attempts == 1
    assert validate(Path(assets[0].original.path).read_bytes(), "webp").width == SIZE

    battle = client.post(
        f"/api/v1/arenas/{arena.slug}/battles",
        data=json.dumps({"mode": "pairwise"}),
        content_type="application/json",
    )
    assert battle.status_code == 201, battle.content
    served = set()
    for slot in battle.json()["slots"]:
        response = client.get(slot["url"])
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        served.add(b"".join(response.streaming_content))  # type: ignore[attr-defined]
    assert served == {Path(a.file.path).read_bytes() for a in assets}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_fails_a_missing_folder_at_once_and_retries_a_timeout_then_gives_up(
    worker: dict[str, Any], settings: Any, tiny: Path, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = worker["media"]
    prompt = PromptFactory.create()
    missing = _diffusers_model(worker["queue"], cpu_config(tmp_path / "gone"))
    slow = _diffusers_model(worker["queue"], cpu_config(tiny, steps=500, timeout_s=0.05))
    ids = []
    for model in (missing, slow):
        asset, _ = asset_request(model=model, prompt=prompt)
        ids.append(asset.pk)
        generate_asset_enqueue(asset_id=asset.pk, queue=model.queue, backend="diffusers")

    gone, overran = wait_until_settled(ids, worker)

    assert gone.status == AssetStatus.FAILED and gone.attempts == 1
    assert "does not exist" in gone.error
    assert overran.status == AssetStatus.FAILED
    assert overran.attempts == 5  # the first try and four retries (GENERATE_MAX_RETRIES)
    assert "longer than timeout_s" in overran.error
    assert not gone.file and not overran.file
    assert not Asset.objects.filter(pk__in=ids, status=AssetStatus.READY).exists()
