"""Generation backends: a small registry keyed by ``GenerativeModel.backend``.

A backend turns (model config, prompt, seed) into one media file (the contract is in
:mod:`workers.backends.base`; each backend validates its ``backend_config`` with a pydantic
model, :mod:`workers.backends._config`):

* ``builtin`` (:mod:`.builtin`): procedural generators, offline, on the CPU;
* ``gradio`` (:mod:`.gradio`): an endpoint of a Gradio app, e.g. a Hugging Face Space;
* ``http`` (:mod:`.http`): a hosted submit / poll / download JSON API;
* ``diffusers`` (:mod:`.diffusers`): a local diffusers pipeline on a GPU.
"""

from __future__ import annotations

import time
from typing import Any

from workers.backends.base import (
    Backend,
    BackendConfigError,
    BackendError,
    GenerationRequest,
    RemoteTransientError,
    TransientBackendError,
    generated_file,
)
from workers.backends.builtin import BuiltinBackend
from workers.backends.diffusers import DiffusersBackend
from workers.backends.gradio import GradioBackend
from workers.backends.http import HttpBackend
from workers.generators import GeneratedFile

__all__ = [
    "Backend",
    "BackendConfigError",
    "BackendError",
    "BuiltinBackend",
    "DiffusersBackend",
    "GenerationRequest",
    "GradioBackend",
    "HttpBackend",
    "RemoteTransientError",
    "TransientBackendError",
    "backend_config_check",
    "backend_get",
    "backend_names",
    "generated_file",
    "run_builtin",
]

_REGISTRY: dict[str, Backend] = {
    "builtin": BuiltinBackend(),
    "gradio": GradioBackend(),
    "http": HttpBackend(),
    "diffusers": DiffusersBackend(),
}


def backend_get(name: str) -> Backend:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BackendConfigError(
            f"unknown backend {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def backend_config_check(
    name: str, config: dict[str, Any], formats: list[str], *, environment: bool = True
) -> None:
    """Raise BackendConfigError unless backend ``name`` can make ``formats`` with ``config``.

    ``environment=False`` checks the config's shape only (keys, types, values, formats), for a
    host that is not one of the backend's workers: a backend whose full check needs the
    worker's machine (diffusers: torch, CUDA, the weights) offers ``check_shape`` for that; the
    others' ``check_config`` does no I/O anyway. An unknown ``name`` raises too.
    """
    backend = backend_get(name)
    check = backend.check_config
    if not environment:
        check = getattr(backend, "check_shape", check)
    check(config, formats)


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def run_builtin(request: GenerationRequest) -> tuple[GeneratedFile, int]:
    """Run the builtin backend and time it; module-level so a process pool can pickle it."""
    started = time.perf_counter()
    output = BuiltinBackend().generate(request)
    return output, int((time.perf_counter() - started) * 1000)
