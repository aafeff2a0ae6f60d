"""Local text-to-image (and image-to-image) generation with Hugging Face ``diffusers`` on a GPU.

Config (``backend_config`` of a model whose backend is ``diffusers``)::

    {
      "weights_path": "/models/sdxl",      # required: a local diffusers folder, or a single
                                           # .safetensors/.ckpt file (then name "pipeline")
      "pipeline": "auto",                  # "auto" or a diffusers class, e.g.
                                           # "StableDiffusionXLPipeline"
      "device": "cuda",                    # "cuda", "cuda:N" or "cpu"
      "dtype": "float16",                  # float16 | bfloat16 | float32 (cpu default float32)
      "steps": 30,                         # 1..500
      "guidance": 5.0,                     # 0..50
      "width": 1024, "height": 1024,       # multiples of 8, 64..4096
      "negative_prompt": ""                # optional
    }

Only image formats (png, webp) are produced; video and 3D pipelines are not supported yet.
Weights are only ever read from disk (``local_files_only``): nothing is downloaded.

``torch`` and ``diffusers`` are imported lazily, inside ``check_config``/``generate``, so that
importing this module (e.g. when a Celery worker starts) costs nothing and a machine without
them reports a :class:`~workers.backends.BackendConfigError` instead of an ImportError.

Contract: ``check_config`` raises BackendConfigError naming the problem: a bad key, torch or
diffusers not installed, no CUDA device (unless ``device`` is ``"cpu"``), missing weights, an
unknown pipeline class. It therefore has to run where the worker's environment is (a web host
without torch refuses diffusers models). ``generate`` raises BackendConfigError for the same
problems, TransientBackendError when the GPU runs out of memory, and BackendError when the
pipeline fails or returns no image. The per-process pipeline cache holds one model (loading
another frees the previous one); generations in one process are serialised (one GPU).
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import threading
from pathlib import Path
from typing import Any

from workers.backends import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    TransientBackendError,
)
from workers.generators import FORMATS, GeneratedFile
from workers.remote import generated_file

__all__ = ["DiffusersBackend"]

IMAGE_FORMATS: tuple[str, ...] = ("png", "webp")
_DTYPES = ("float16", "bfloat16", "float32")
_SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


class DiffusersBackend:
    """Run a diffusers pipeline from local weights; see the module docstring for the config."""

    name = "diffusers"
    # Celery limits per job (s): a large local pipeline on one GPU; the config's timeout_s applies inside.
    soft_time_limit_s = 600
    time_limit_s = 660
    _KEYS = {
        "weights_path",
        "pipeline",
        "device",
        "dtype",
        "steps",
        "guidance",
        "width",
        "height",
        "negative_prompt",
    }
    DEFAULTS: dict[str, Any] = {
        "pipeline": "auto",
        "device": "cuda",
        "steps": 30,
        "guidance": 5.0,
        "width": 1024,
        "height": 1024,
        "negative_prompt": "",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (pid, weights, pipeline, device, dtype) -> {"text": pipe, "image": img2img pipe}
        self._cached: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    # -- configuration ------------------------------------------------------------------------
    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        """Validate the config, then the environment (torch, diffusers, CUDA, weights)."""
        self._check_values(config, formats)
        torch, diffusers = _modules()
        self._check_environment(config, torch, diffusers)

    def _check_values(self, config: dict[str, Any], formats: list[str]) -> None:
        if not isinstance(config, dict):
            raise BackendConfigError("diffusers: backend_config must be a JSON object")
        unknown = sorted(set(config) - self._KEYS)
        if unknown:
            raise BackendConfigError(
                f"diffusers: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self._KEYS))}"
            )
        weights = config.get("weights_path")
        if not isinstance(weights, str) or not weights.strip():
            raise BackendConfigError(
                "diffusers: 'weights_path' is required: a local folder (or .safetensors file) "
                "with the model's weights"
            )
        pipeline = config.get("pipeline", "auto")
        if not isinstance(pipeline, str) or not (
            pipeline == "auto" or (pipeline.isidentifier() and pipeline.endswith("Pipeline"))
        ):
            raise BackendConfigError(
                "diffusers: 'pipeline' must be 'auto' or a diffusers pipeline class name "
                f"(e.g. 'StableDiffusionXLPipeline'), got {pipeline!r}"
            )
        if pipeline == "auto" and weights.endswith(_SINGLE_FILE_SUFFIXES):
            raise BackendConfigError(
                "diffusers: a single-file checkpoint needs an explicit 'pipeline' class"
            )
        device = config.get("device", "cuda")
        if not isinstance(device, str) or not (
            device in ("cpu", "cuda")
            or (device.startswith("cuda:") and device.removeprefix("cuda:").isdigit())
        ):
            raise BackendConfigError(
                f"diffusers: 'device' must be 'cuda', 'cuda:N' or 'cpu', got {device!r}"
            )
        dtype = config.get("dtype", "float32" if device == "cpu" else "float16")
        if dtype not in _DTYPES:
            raise BackendConfigError(
                f"diffusers: 'dtype' must be one of {', '.join(_DTYPES)}, got {dtype!r}"
            )
        _check_number(config, "steps", 1, 500, integer=True)
        _check_number(config, "guidance", 0, 50, integer=False)
        for key in ("width", "height"):
            value = _check_number(config, key, 64, 4096, integer=True)
            if value % 8:
                raise BackendConfigError(f"diffusers: '{key}' must be a multiple of 8, got {value}")
        if not isinstance(config.get("negative_prompt", ""), str):
            raise BackendConfigError("diffusers: 'negative_prompt' must be a string")
        bad = [fmt for fmt in formats if fmt not in IMAGE_FORMATS]
        if bad:
            kinds = ", ".join(bad)
            if all(fmt in FORMATS for fmt in bad):
                raise BackendConfigError(
                    f"diffusers: {kinds} output is not supported yet (video/3D pipelines); "
                    f"this backend makes {', '.join(IMAGE_FORMATS)}"
                )
            raise BackendConfigError(f"diffusers: unknown format(s) {kinds}")

    def _check_environment(self, config: dict[str, Any], torch: Any, diffusers: Any) -> None:
        device = config.get("device", "cuda")
        if device != "cpu":
            if not torch.cuda.is_available():
                raise BackendConfigError(
                    f"diffusers: 'device' is {device!r} but no CUDA device is available on this "
                    'machine (set "device": "cpu" to run on the CPU, very slowly)'
                )
            index = int(device.partition(":")[2] or 0)
            if index >= torch.cuda.device_count():
                raise BackendConfigError(
                    f"diffusers: 'device' is {device!r} but this machine has "
                    f"{torch.cuda.device_count()} CUDA device(s)"
                )
        weights = Path(config["weights_path"])
        if not weights.exists():
            raise BackendConfigError(f"diffusers: 'weights_path' {str(weights)!r} does not exist")
        if weights.is_dir() and not (weights / "model_index.json").is_file():
            raise BackendConfigError(
                f"diffusers: 'weights_path' {str(weights)!r} has no model_index.json "
                "(not a diffusers model folder)"
            )
        pipeline = config.get("pipeline", "auto")
        if pipeline != "auto" and not hasattr(diffusers, pipeline):
            raise BackendConfigError(
                f"diffusers: 'pipeline' {pipeline!r} is not a class of the installed diffusers "
                f"{getattr(diffusers, '__version__', '')}".rstrip()
            )

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GeneratedFile:
        """Generate one image for ``request`` (PNG or WebP, as ``request.fmt`` asks)."""
        config = {**self.DEFAULTS, **request.config}
        self._check_values(request.config, [request.fmt])
        torch, diffusers = _modules()
        with self._lock:
            self._check_environment(config, torch, diffusers)
            try:
                image = self._run(torch, diffusers, config, request)
            except BackendError:
                raise
            except Exception as exc:
                oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
                if isinstance(oom, type) and isinstance(exc, oom):
                    torch.cuda.empty_cache()
                    raise TransientBackendError(f"diffusers: GPU out of memory: {exc}") from exc
                raise BackendError(f"diffusers: {type(exc).__name__}: {exc}") from exc
        buffer = io.BytesIO()
        if request.fmt == "webp":
            image.save(buffer, format="WEBP", quality=92, method=4)
        else:
            image.save(buffer, format="PNG", optimize=False)
        return generated_file(self.name, buffer.getvalue(), request.fmt)

    def _run(
        self, torch: Any, diffusers: Any, config: dict[str, Any], request: GenerationRequest
    ) -> Any:
        conditioning = None
        if request.conditioning_image is not None:
            from PIL import Image

            try:
                conditioning = Image.open(io.BytesIO(request.conditioning_image)).convert("RGB")
            except Exception as exc:
                raise BackendError(f"diffusers: unreadable conditioning image: {exc}") from exc
            conditioning = conditioning.resize((config["width"], config["height"]))
        pipe = self._pipeline(torch, diffusers, config, image_input=conditioning is not None)
        device = config["device"]
        generator = torch.Generator(device=device).manual_seed(request.seed % 2**63)
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_inference_steps": int(config["steps"]),
            "guidance_scale": float(config["guidance"]),
            "width": int(config["width"]),
            "height": int(config["height"]),
            "generator": generator,
        }
        if config.get("negative_prompt"):
            kwargs["negative_prompt"] = config["negative_prompt"]
        if conditioning is not None:
            kwargs["image"] = conditioning
        kwargs = _accepted(pipe, kwargs)
        with torch.inference_mode():
            output = pipe(**kwargs)
        images = getattr(output, "images", None)
        if not images:
            raise BackendError("diffusers: the pipeline returned no image")
        image = images[0]
        if not hasattr(image, "save"):
            raise BackendError(
                f"diffusers: the pipeline returned {type(image).__name__}, not a PIL image"
            )
        return image

    def _pipeline(
        self, torch: Any, diffusers: Any, config: dict[str, Any], *, image_input: bool
    ) -> Any:
        device = config["device"]
        dtype_name = config.get("dtype") or ("float32" if device == "cpu" else "float16")
        key = (os.getpid(), config["weights_path"], config["pipeline"], device, dtype_name)
        if self._cached is None or self._cached[0] != key:
            if self._cached is not None:
                self._cached = None
                if device != "cpu":
                    torch.cuda.empty_cache()
            self._cached = (key, {"text": self._load(torch, diffusers, config, dtype_name)})
        pipes = self._cached[1]
        if not image_input:
            return pipes["text"]
        if "image" not in pipes:
            base = pipes["text"]
            if _takes(base, "image"):
                pipes["image"] = base
            else:
                try:
                    pipes["image"] = diffusers.AutoPipelineForImage2Image.from_pipe(base)
                except Exception as exc:
                    raise BackendError(
                        f"diffusers: pipeline {type(base).__name__} cannot take a conditioning "
                        f"image: {exc}"
                    ) from exc
        return pipes["image"]

    @staticmethod
    def _load(torch: Any, diffusers: Any, config: dict[str, Any], dtype_name: str) -> Any:
        weights = config["weights_path"]
        name = config["pipeline"]
        cls = diffusers.AutoPipelineForText2Image if name == "auto" else getattr(diffusers, name)
        dtype = getattr(torch, dtype_name)
        if Path(weights).is_file():
            pipe = cls.from_single_file(weights, torch_dtype=dtype, local_files_only=True)
        else:
            pipe = cls.from_pretrained(weights, torch_dtype=dtype, local_files_only=True)
        pipe = pipe.to(config["device"])
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return pipe


def _modules() -> tuple[Any, Any]:
    """(torch, diffusers), or BackendConfigError saying what to install."""
    missing = []
    modules: dict[str, Any] = {}
    for name in ("torch", "diffusers"):
        try:
            modules[name] = importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    if missing:
        raise BackendConfigError(
            "diffusers: this machine cannot run local pipelines: not installed: "
            + "; ".join(missing)
            + ". Install torch (with CUDA) and diffusers, transformers, accelerate, safetensors "
            "on the GPU workers"
        )
    return modules["torch"], modules["diffusers"]


def _check_number(
    config: dict[str, Any], key: str, low: float, high: float, *, integer: bool
) -> Any:
    value = config.get(key, DiffusersBackend.DEFAULTS[key])
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise BackendConfigError(
            f"diffusers: '{key}' must be {what} from {low:g} to {high:g}, got {value!r}"
        )
    return value


def _takes(pipe: Any, parameter: str) -> bool:
    try:
        params = inspect.signature(pipe.__call__).parameters
    except (TypeError, ValueError):
        return False
    return parameter in params


def _accepted(pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs the pipeline's ``__call__`` accepts (img2img pipelines take no width/height)."""
    try:
        params = inspect.signature(pipe.__call__).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}
