"""Local text-to-image (and image-to-image) generation with Hugging Face ``diffusers`` on a GPU.

Config (``backend_config`` of a model whose backend is ``diffusers``; :class:`DiffusersConfig`)::

    {
      "weights_path": "/models/sdxl",      # required: a local diffusers folder, or a single
                                           # .safetensors/.ckpt file (then name "pipeline"
                                           # and "config_path")
      "config_path": "/models/sdxl-config",  # single files only: a local diffusers folder
                                           # of the same model family, for its configs
      "pipeline": "auto",                  # "auto" or a diffusers class, e.g.
                                           # "StableDiffusionXLPipeline"
      "device": "cuda",                    # "cuda", "cuda:N" or "cpu"
      "dtype": "float16",                  # float16 | bfloat16 | float32 (cpu default float32)
      "steps": 30,                         # 1..500
      "guidance": 5.0,                     # 0..50
      "width": 1024, "height": 1024,       # multiples of 8, 64..4096
      "negative_prompt": "",               # optional
      "timeout_s": 120                     # optional: stop a generation whose denoising runs
                                           # longer (between two steps; the job is retried)
    }

Only image formats (png, webp) are produced; video and 3D pipelines are not supported yet.
Weights are only ever read from disk (``local_files_only``): nothing is downloaded.

``torch`` and ``diffusers`` are imported lazily, inside ``check_config``/``generate``, so that
importing this module (e.g. when a Celery worker starts) costs nothing and a machine without
them reports a :class:`~workers.backends.base.BackendConfigError` instead of an ImportError.

Contract: ``check_config`` raises BackendConfigError naming the problem: a bad key, torch or
diffusers not installed, no CUDA device (unless ``device`` is ``"cpu"``), missing weights or an
unreadable ``model_index.json``, an unknown pipeline class or one that needs components the
folder does not have. It therefore runs where the worker's environment is (the admin's "Check
now" sends it to a worker of the model's queue, :mod:`workers.checks`); ``check_shape`` checks
the config alone, anywhere (the web host, a registry file in CI). ``generate`` raises
BackendConfigError for the same problems and for weights the class cannot load,
TransientBackendError when the GPU runs out of memory or the denoising runs past
``timeout_s``, and BackendError when the pipeline fails or returns no image. The per-process pipeline cache holds one model (loading
another frees the previous one); generations in one process are serialised (one GPU).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import Field, field_validator, model_validator

from workers.backends._config import BackendConfig, invalid, validate_config
from workers.backends.base import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    TransientBackendError,
    generated_file,
)
from workers.generators import FORMATS, GeneratedFile

__all__ = ["DiffusersBackend", "DiffusersConfig"]

IMAGE_FORMATS: tuple[str, ...] = ("png", "webp")
_SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


class DiffusersConfig(BackendConfig):
    """``backend_config`` of a ``diffusers`` model; see the module docstring."""

    weights_path: str = Field(
        pattern=r"\S",
        description="a local folder (or .safetensors file) with the model's weights",
    )
    pipeline: str = Field(
        "auto",
        description="'auto' or a diffusers pipeline class name (e.g. 'StableDiffusionXLPipeline')",
    )
    device: str = Field(
        "cuda", pattern=r"^(cpu|cuda|cuda:[0-9]+)$", description="'cuda', 'cuda:N' or 'cpu'"
    )
    # Defaults to float32 on the CPU, float16 on a GPU (filled in by _default_dtype).
    dtype: Literal["float16", "bfloat16", "float32"] = Field(
        description="one of float16, bfloat16, float32"
    )
    steps: int = Field(30, ge=1, le=500, description="an integer from 1 to 500")
    guidance: float = Field(5.0, ge=0, le=50, description="a number from 0 to 50")
    width: int = Field(
        1024,
        ge=64,
        le=4096,
        multiple_of=8,
        description="an integer from 64 to 4096, a multiple of 8",
    )
    height: int = Field(
        1024,
        ge=64,
        le=4096,
        multiple_of=8,
        description="an integer from 64 to 4096, a multiple of 8",
    )
    negative_prompt: str = Field("", description="a string")
    # A single-file checkpoint holds weights, not the pipeline's configs: diffusers would fetch
    # them from the Hub. A local folder of the same family gives them instead (never a download).
    config_path: str | None = Field(
        None, pattern=r"\S", description="a local diffusers folder with the pipeline's configs"
    )
    # Checked between denoising steps (the pipeline's step callback), so a stopped job leaves the
    # pipeline in a clean state; the job's own limit (soft_time_limit_s) still bounds load + run.
    timeout_s: float | None = Field(
        None, gt=0, le=600, description="seconds, more than 0 and at most 600"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_dtype(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dtype" not in data:
            return {**data, "dtype": "float32" if data.get("device") == "cpu" else "float16"}
        return data

    @field_validator("pipeline")
    @classmethod
    def _check_pipeline(cls, pipeline: str) -> str:
        if pipeline != "auto" and not (pipeline.isidentifier() and pipeline.endswith("Pipeline")):
            raise ValueError("not a pipeline class name")
        return pipeline

    @model_validator(mode="after")
    def _check_single_file(self) -> DiffusersConfig:
        if not self.weights_path.endswith(_SINGLE_FILE_SUFFIXES):
            return self
        if self.pipeline == "auto":
            raise invalid("a single-file checkpoint needs an explicit 'pipeline' class")
        if self.config_path is None:
            raise invalid(
                "a single-file checkpoint needs 'config_path', a local diffusers folder of the "
                "same model family (its configs; diffusers would otherwise download them)"
            )
        return self


class DiffusersBackend:
    """Run a diffusers pipeline from local weights; see the module docstring for the config."""

    name = "diffusers"
    # Celery limits per job (s): a large local pipeline on one GPU.
    soft_time_limit_s = 600
    time_limit_s = 660

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (pid, weights, pipeline, device, dtype) -> {"text": pipe, "image": img2img pipe}
        self._cached: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    # -- configuration ------------------------------------------------------------------------
    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        """Validate the config, then the environment (torch, diffusers, CUDA, weights)."""
        values = self._values(config, formats)
        torch, diffusers = _modules()
        self._check_environment(values, torch, diffusers)

    def check_shape(self, config: dict[str, Any], formats: list[str]) -> None:
        """The config's keys and values and the formats only: no torch, no CUDA, no weights.

        For a host that is not a GPU worker (checking a model registry file in CI or on the
        web host); the worker's ``check_config`` and ``generate`` still check the rest.
        """
        self._values(config, formats)

    @staticmethod
    def _values(config: dict[str, Any], formats: list[str]) -> DiffusersConfig:
        """The validated config of a model that is to make ``formats``; no imports, no I/O."""
        values = validate_config("diffusers", DiffusersConfig, config)
        bad = [fmt for fmt in formats if fmt not in IMAGE_FORMATS]
        if bad:
            kinds = ", ".join(bad)
            if all(fmt in FORMATS for fmt in bad):
                raise BackendConfigError(
                    f"diffusers: {kinds} output is not supported yet (video/3D pipelines); "
                    f"this backend makes {', '.join(IMAGE_FORMATS)}"
                )
            raise BackendConfigError(f"diffusers: unknown format(s) {kinds}")
        return values

    @staticmethod
    def _check_environment(config: DiffusersConfig, torch: Any, diffusers: Any) -> None:
        _check_device(config.device, torch)
        weights = Path(config.weights_path)
        if not weights.exists():
            raise BackendConfigError(f"diffusers: 'weights_path' {str(weights)!r} does not exist")
        index = _check_model_index(weights) if weights.is_dir() else None
        if weights.is_file() and config.config_path is not None:
            _check_model_index(Path(config.config_path), "config_path")
        if config.pipeline != "auto" and not hasattr(diffusers, config.pipeline):
            raise BackendConfigError(
                f"diffusers: 'pipeline' {config.pipeline!r} is not a class of the installed "
                f"diffusers {getattr(diffusers, '__version__', '')}".rstrip()
            )
        if index is not None and config.pipeline != "auto":
            _check_components(getattr(diffusers, config.pipeline), config.pipeline, weights, index)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GeneratedFile:
        """Generate one image for ``request`` (PNG or WebP, as ``request.fmt`` asks)."""
        config = self._values(request.config, [request.fmt])
        torch, diffusers = _modules()
        with self._lock:
            self._check_environment(config, torch, diffusers)
            try:
                image = self._run(torch, diffusers, config, request)
            except (BackendError, BackendConfigError):
                raise
            except _Overrun as exc:
                raise TransientBackendError(f"diffusers: {exc}") from None
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
        self, torch: Any, diffusers: Any, config: DiffusersConfig, request: GenerationRequest
    ) -> Any:
        conditioning = _conditioning_image(request.conditioning_image, config)
        pipe = self._pipeline(torch, diffusers, config, image_input=conditioning is not None)
        generator = torch.Generator(device=config.device).manual_seed(request.seed % 2**63)
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_inference_steps": config.steps,
            "guidance_scale": config.guidance,
            "width": config.width,
            "height": config.height,
            "generator": generator,
        }
        if config.negative_prompt:
            kwargs["negative_prompt"] = config.negative_prompt
        if conditioning is not None:
            kwargs["image"] = conditioning
        if config.timeout_s is not None:
            kwargs["callback_on_step_end"] = _deadline_callback(config.timeout_s)
        kwargs = _accepted(pipe, kwargs)
        if config.timeout_s is not None and "callback_on_step_end" not in kwargs:
            raise BackendConfigError(
                f"diffusers: {type(pipe).__name__} takes no step callback, so 'timeout_s' "
                "cannot be kept; leave it out (the job's time limit still applies)"
            )
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
        self, torch: Any, diffusers: Any, config: DiffusersConfig, *, image_input: bool
    ) -> Any:
        device = config.device
        key = (os.getpid(), config.weights_path, config.pipeline, device, config.dtype)
        if self._cached is None or self._cached[0] != key:
            if self._cached is not None:
                old_device = self._cached[0][3]  # free the memory of the pipeline going away
                self._cached = None
                if old_device != "cpu":
                    torch.cuda.empty_cache()
            self._cached = (key, {"text": self._load(torch, diffusers, config)})
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
    def _load(torch: Any, diffusers: Any, config: DiffusersConfig) -> Any:
        weights = config.weights_path
        name = config.pipeline
        cls = diffusers.AutoPipelineForText2Image if name == "auto" else getattr(diffusers, name)
        options = {
            _dtype_keyword(diffusers): getattr(torch, config.dtype),
            "local_files_only": True,
        }
        try:
            if Path(weights).is_file():
                pipe = cls.from_single_file(weights, config=config.config_path, **options)
            else:
                pipe = cls.from_pretrained(weights, **options)
        except (ValueError, TypeError, AttributeError) as exc:
            # The folder's components do not make this class (another model family, a missing
            # component): a config error, not worth a retry.
            raise BackendConfigError(
                f"diffusers: {name if name != 'auto' else 'the auto pipeline'} cannot load "
                f"{weights!r}: {exc}"
            ) from exc
        pipe = pipe.to(config.device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return pipe


class _Overrun(Exception):
    """Raised by the step callback once a generation is past its ``timeout_s``."""


def _deadline_callback(timeout_s: float) -> Any:
    """A ``callback_on_step_end`` that stops the denoising loop once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s

    def check(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> Any:
        if time.monotonic() > deadline:
            raise _Overrun(f"the generation took longer than timeout_s={timeout_s:g} s")
        return callback_kwargs

    return check


def _dtype_keyword(diffusers: Any) -> str:
    """``dtype`` from diffusers 0.42 (``torch_dtype`` is deprecated there), ``torch_dtype``
    before."""
    version = getattr(diffusers, "__version__", "0")
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
    return "dtype" if (parts[0], parts[1]) >= (0, 42) else "torch_dtype"


def _modules() -> tuple[Any, Any]:
    """(torch, diffusers), or BackendConfigError saying what to install.

    Imported here, when first needed, because they are heavy optional libraries (see the
    module docstring), not to avoid an import cycle.
    """
    missing = []
    modules: dict[str, Any] = {}
    for name in ("torch", "diffusers"):
        if name == "diffusers" and "torch" not in modules:
            # Not imported without torch: diffusers would load stand-ins for every torch class
            # and keep them for the life of the process, even once torch can be imported.
            if not _installed(name):
                missing.append(f"{name} (No module named {name!r})")
            continue
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


def _installed(name: str) -> bool:
    """Whether module ``name`` can be imported, without importing it."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _check_model_index(folder: Path, key: str = "weights_path") -> dict[str, Any]:
    """The folder's ``model_index.json`` (the folder named by config ``key``), once it exists,
    reads as JSON and names its pipeline class: the pipeline config a load starts from (the
    weights themselves are read by the first job)."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise BackendConfigError(
            f"diffusers: {key!r} {str(folder)!r} has no model_index.json "
            "(not a diffusers model folder)"
        )
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise BackendConfigError(f"diffusers: {str(index)!r} is not readable: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise BackendConfigError(
            f"diffusers: {str(index)!r} names no pipeline class ('_class_name')"
        )
    return data


def _check_components(cls: Any, name: str, folder: Path, index: dict[str, Any]) -> None:
    """The components ``cls`` cannot be made without are in the folder's ``model_index.json``.

    diffusers loads a folder into another family's class with the missing parts set to None
    (an SDXL class over a Stable Diffusion 1.5 folder loads, then fails in the first job on its
    absent second text encoder): a config error to report before any weights are read.
    """
    if index["_class_name"] == name:  # the folder's own class (its optional parts may be absent)
        return
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    missing = [
        p.name
        for p in params.values()
        if p.name != "self" and p.kind in named and p.default is inspect.Parameter.empty
        if p.name not in index
    ]
    if missing:
        raise BackendConfigError(
            f"diffusers: 'pipeline' {name} needs {', '.join(missing)}, which {str(folder)!r} "
            f"does not have (its model_index.json describes a {index['_class_name']}); "
            'use that class or "auto"'
        )


def _check_device(device: str, torch: Any) -> None:
    if device == "cpu":
        return
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


def _conditioning_image(data: bytes | None, config: DiffusersConfig) -> Any:
    """The conditioning image as an RGB PIL image of the output's size, or None."""
    if data is None:
        return None
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as exc:
        raise BackendError(f"diffusers: unreadable conditioning image: {exc}") from exc
    return image.resize((config.width, config.height))


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
