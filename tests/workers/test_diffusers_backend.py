"""The ``diffusers`` backend's configuration and error paths, with stand-in libraries.

The environment checks and the generation path run against small stand-in ``torch`` and
``diffusers`` modules put into ``sys.modules`` (a GPU, an out-of-memory error); the real
libraries are never imported here, installed or not. test_diffusers_pipeline.py runs the real
ones on a tiny pipeline.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from workers.backends import (
    BackendConfigError,
    BackendError,
    DiffusersBackend,
    GenerationRequest,
    TransientBackendError,
    backend_config_check,
)
from workers.media import validate

ROOT = Path(__file__).resolve().parents[2]


class FakeOOM(RuntimeError):
    pass


class FakeGenerator:
    def __init__(self, device: str) -> None:
        self.device = device
        self.seed: int | None = None

    def manual_seed(self, seed: int) -> FakeGenerator:
        self.seed = seed
        return self


class FakePipeline:
    """Records its calls; returns a 64x64 image coloured by the seed."""

    loads: list[tuple[str, Any]] = []
    calls: list[dict[str, Any]] = []
    fail_with: Exception | None = None

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> FakePipeline:
        cls.loads.append((path, kwargs))
        return cls()

    @classmethod
    def from_single_file(cls, path: str, **kwargs: Any) -> FakePipeline:
        cls.loads.append((path, kwargs))
        return cls()

    def to(self, device: str) -> FakePipeline:
        self.device = device
        return self

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        pass

    def __call__(
        self,
        prompt: str,
        num_inference_steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        generator: FakeGenerator,
        negative_prompt: str | None = None,
    ) -> Any:
        if FakePipeline.fail_with is not None:
            raise FakePipeline.fail_with
        FakePipeline.calls.append(
            {"prompt": prompt, "steps": num_inference_steps, "seed": generator.seed}
        )
        shade = (generator.seed or 0) % 256
        return types.SimpleNamespace(images=[Image.new("RGB", (width, height), (shade, 0, 0))])


class FakeImg2Img:
    def __init__(self, base: FakePipeline) -> None:
        self.base = base

    def __call__(self, prompt: str, image: Image.Image, generator: FakeGenerator) -> Any:
        FakePipeline.calls.append({"prompt": prompt, "image": image.getpixel((0, 0))})
        return types.SimpleNamespace(images=[image])


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-in torch and diffusers modules (with one CUDA device)."""
    FakePipeline.loads, FakePipeline.calls, FakePipeline.fail_with = [], [], None
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        OutOfMemoryError=FakeOOM,
        empty_cache=lambda: None,
    )

    class InferenceMode:
        def __enter__(self) -> None:
            pass

        def __exit__(self, *exc: object) -> None:
            pass

    torch = types.ModuleType("torch")
    torch.__dict__.update(
        cuda=cuda,
        Generator=FakeGenerator,
        inference_mode=InferenceMode,
        float16="f16",
        bfloat16="bf16",
        float32="f32",
    )
    diffusers = types.ModuleType("diffusers")
    diffusers.__dict__.update(
        __version__="0.0-fake",
        AutoPipelineForText2Image=FakePipeline,
        StableDiffusionXLPipeline=FakePipeline,
        AutoPipelineForImage2Image=types.SimpleNamespace(from_pipe=FakeImg2Img),
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "diffusers", diffusers)
    return cuda


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    folder = tmp_path / "sdxl"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FakePipeline"}))
    return folder


def request(config: dict[str, Any], fmt: str = "png", **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(fmt=fmt, prompt="a red cat", seed=7, config=config, **kwargs)


# -- missing libraries -------------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["torch", "diffusers"])
def test_it_reports_missing_libraries_as_config_errors(
    monkeypatch: pytest.MonkeyPatch, weights: Path, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    monkeypatch.setitem(sys.modules, "diffusers", types.ModuleType("diffusers"))
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail
    backend = DiffusersBackend()
    config = {"weights_path": str(weights)}
    with pytest.raises(BackendConfigError, match=f"not installed: {missing}"):
        backend.check_config(config, ["png"])
    with pytest.raises(BackendConfigError, match=f"not installed: {missing}"):
        backend.generate(request(config))


def test_it_needs_a_cuda_device_unless_told_to_use_the_cpu(
    fake_torch: types.SimpleNamespace, weights: Path
) -> None:
    fake_torch.is_available = lambda: False
    backend = DiffusersBackend()
    with pytest.raises(BackendConfigError, match="no CUDA device is available"):
        backend.check_config({"weights_path": str(weights)}, ["png"])
    backend.check_config({"weights_path": str(weights), "device": "cpu"}, ["png"])
    fake_torch.is_available = lambda: True
    with pytest.raises(BackendConfigError, match="has 1 CUDA device"):
        backend.check_config({"weights_path": str(weights), "device": "cuda:1"}, ["png"])


def test_it_needs_existing_weights_and_a_known_pipeline(
    fake_torch: types.SimpleNamespace, weights: Path, tmp_path: Path
) -> None:
    backend = DiffusersBackend()
    with pytest.raises(BackendConfigError, match="does not exist"):
        backend.check_config({"weights_path": str(tmp_path / "nope")}, ["png"])
    with pytest.raises(BackendConfigError, match=r"no model_index\.json"):
        backend.check_config({"weights_path": str(tmp_path)}, ["png"])
    with pytest.raises(BackendConfigError, match="'FluxPipeline' is not a class"):
        backend.check_config({"weights_path": str(weights), "pipeline": "FluxPipeline"}, ["png"])
    backend.check_config(
        {"weights_path": str(weights), "pipeline": "StableDiffusionXLPipeline"}, ["png", "webp"]
    )


@pytest.mark.parametrize(
    ("config", "formats", "message"),
    [
        ({}, ["png"], "'weights_path' is required"),
        ({"weights_path": "/m", "steps": 0}, ["png"], "'steps' must be an integer"),
        ({"weights_path": "/m", "steps": 2.5}, ["png"], "'steps' must be an integer"),
        ({"weights_path": "/m", "steps": True}, ["png"], "'steps' must be an integer"),
        ({"weights_path": " "}, ["png"], "'weights_path' must be a local folder"),
        ({"weights_path": "/m", "guidance": "5"}, ["png"], "'guidance' must be a number"),
        ({"weights_path": "/m", "width": 1020}, ["png"], "multiple of 8"),
        ({"weights_path": "/m", "height": 32}, ["png"], "'height' must be an integer"),
        ({"weights_path": "/m", "device": "gpu"}, ["png"], "'device' must be"),
        ({"weights_path": "/m", "dtype": "int8"}, ["png"], "'dtype' must be"),
        ({"weights_path": "/m", "dtype": None}, ["png"], "'dtype' must be one of float16"),
        ({"weights_path": "/m", "pipeline": "os.system"}, ["png"], "'pipeline' must be"),
        ({"weights_path": "/m/x.safetensors"}, ["png"], "needs an explicit 'pipeline'"),
        (
            {"weights_path": "/m/x.safetensors", "pipeline": "StableDiffusionXLPipeline"},
            ["png"],
            "needs 'config_path', a local diffusers folder",
        ),
        ({"weights_path": "/m", "lora": "x"}, ["png"], "unknown option"),
        ({"weights_path": "/m"}, ["mp4"], "mp4 output is not supported yet"),
        ({"weights_path": "/m", "timeout_s": 0}, ["png"], "'timeout_s' must be seconds"),
        ({"weights_path": "/m", "timeout_s": 601}, ["png"], "'timeout_s' must be seconds"),
        ({"weights_path": "/m"}, ["png", "glb"], "glb output is not supported yet"),
    ],
)
def test_it_rejects_bad_configs_before_importing_anything(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], formats: list[str], message: str
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendConfigError, match=message):
        DiffusersBackend().check_config(config, formats)


def test_its_shape_check_needs_neither_torch_nor_the_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What load_models uses on a host that is not the GPU worker: the config alone is checked.
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    config = {"weights_path": str(tmp_path / "absent"), "steps": 4}
    backend_config_check("diffusers", config, ["png"], environment=False)
    with pytest.raises(BackendConfigError, match="'steps' must be an integer"):
        backend_config_check("diffusers", {**config, "steps": 0}, ["png"], environment=False)
    with pytest.raises(BackendConfigError, match="mp4 output is not supported yet"):
        backend_config_check("diffusers", config, ["mp4"], environment=False)
    with pytest.raises(BackendConfigError, match="not installed: torch"):
        backend_config_check("diffusers", config, ["png"])


# -- generation with stand-in libraries --------------------------------------------------------
def test_it_generates_a_png_and_caches_the_pipeline(
    fake_torch: types.SimpleNamespace, weights: Path
) -> None:
    backend = DiffusersBackend()
    config = {"weights_path": str(weights), "steps": 4, "width": 64, "height": 64}
    out = backend.generate(request(config))
    assert (out.extension, out.content_type, out.media_type) == ("png", "image/png", "image")
    assert validate(out.data, "png").width == 64
    webp = backend.generate(request(config, "webp"))
    assert validate(webp.data, "webp").width == 64
    assert len(FakePipeline.loads) == 1
    path, kwargs = FakePipeline.loads[0]
    assert path == str(weights)
    assert kwargs == {"torch_dtype": "f16", "local_files_only": True}
    assert FakePipeline.calls[0] == {"prompt": "a red cat", "steps": 4, "seed": 7}


def test_it_uses_an_image_to_image_pipeline_for_a_conditioning_image(
    fake_torch: types.SimpleNamespace, weights: Path
) -> None:
    cond = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(cond, format="PNG")
    out = DiffusersBackend().generate(
        request(
            {"weights_path": str(weights), "width": 64, "height": 64},
            conditioning_image=cond.getvalue(),
        )
    )
    assert FakePipeline.calls == [{"prompt": "a red cat", "image": (1, 2, 3)}]
    assert validate(out.data, "png").width == 64


def test_it_maps_pipeline_failures(fake_torch: types.SimpleNamespace, weights: Path) -> None:
    backend = DiffusersBackend()
    config = {"weights_path": str(weights), "width": 64, "height": 64}
    FakePipeline.fail_with = FakeOOM("CUDA out of memory")
    with pytest.raises(TransientBackendError, match="out of memory"):
        backend.generate(request(config))
    FakePipeline.fail_with = RuntimeError("shape mismatch")
    with pytest.raises(BackendError, match="RuntimeError: shape mismatch") as info:
        backend.generate(request(config))
    assert not isinstance(info.value, TransientBackendError)


def test_a_timeout_on_a_pipeline_without_step_callbacks_is_a_config_error(
    fake_torch: types.SimpleNamespace, weights: Path
) -> None:
    config = {"weights_path": str(weights), "width": 64, "height": 64, "timeout_s": 30}

    with pytest.raises(BackendConfigError, match="takes no step callback, so 'timeout_s'"):
        DiffusersBackend().generate(request(config))
    assert FakePipeline.calls == []  # refused before it ran


def test_without_torch_diffusers_is_never_imported() -> None:
    # Imported while torch cannot be, diffusers keeps stand-ins for every torch class for the
    # life of the process: a worker whose first job ran before torch was importable (or a test
    # run) would fail every later job. A clean interpreter, so no earlier import hides it.
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from workers.backends import diffusers as d\n"
        "try:\n"
        "    d._modules()\n"
        "except d.BackendConfigError as exc:\n"
        "    assert 'not installed: torch' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no error without torch')\n"
        "assert 'diffusers' not in sys.modules, 'diffusers was imported without torch'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_single_file_checkpoint_loads_its_configs_from_the_named_local_folder(
    fake_torch: types.SimpleNamespace, weights: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"weights")
    config = {
        "weights_path": str(checkpoint),
        "pipeline": "StableDiffusionXLPipeline",
        "config_path": str(weights),
        "width": 64,
        "height": 64,
    }

    DiffusersBackend().generate(request(config))

    assert FakePipeline.loads == [
        (str(checkpoint), {"config": str(weights), "torch_dtype": "f16", "local_files_only": True})
    ]
    missing = {**config, "config_path": str(tmp_path / "nowhere")}
    with pytest.raises(BackendConfigError, match=r"'config_path' .* has no model_index\.json"):
        DiffusersBackend().check_config(missing, ["png"])
