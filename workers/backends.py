"""Generation backends: a small registry keyed by ``GenerativeModel.backend``.

A backend turns (model config, prompt, seed) into one media file. ``check_config`` validates a
model's ``backend_config`` at configuration time so that a broken model is refused in the admin,
not discovered by a failing job. The generation issue adds ``gradio``, ``http`` and ``diffusers``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from workers.generators import FORMATS, GeneratedFile, generate


class BackendConfigError(ValueError):
    """A model's backend or backend_config is unusable; the message says what to fix."""


class BackendError(Exception):
    """A generation failed for good (bad output, remote app error): retrying will not help."""


class TransientBackendError(BackendError):
    """A generation failed for a reason that may pass: timeout, rate limit, 5xx from a remote app.

    Tasks retry these (with backoff) and only these.
    """


@dataclass(frozen=True)
class GenerationRequest:
    fmt: str
    prompt: str
    seed: int
    config: dict[str, Any]
    conditioning_image: bytes | None = None


class Backend(Protocol):
    name: str
    # Celery time limits for one job of this backend (seconds): the soft limit raises inside the
    # job (it is retried as transient), the hard one kills the worker child.
    soft_time_limit_s: int
    time_limit_s: int

    def check_config(self, config: dict[str, Any], formats: list[str]) -> None: ...

    def generate(self, request: GenerationRequest) -> GeneratedFile: ...


class BuiltinBackend:
    """Procedural, offline, deterministic generators (CPU).

    Config: ``{"quality": 1-4, "style": int, "delay_s": float}``; ``delay_s`` simulates a slow
    GPU model (demos of live generation, tests of killed workers).
    """

    name = "builtin"
    soft_time_limit_s = 120
    time_limit_s = 180

    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        quality = config.get("quality", 3)
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 4:
            raise BackendConfigError(
                f"builtin: 'quality' must be an integer from 1 to 4, got {quality!r}"
            )
        style = config.get("style", 0)
        if isinstance(style, bool) or not isinstance(style, int) or style < 0:
            raise BackendConfigError(
                f"builtin: 'style' must be a non-negative integer, got {style!r}"
            )
        delay = config.get("delay_s", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 60:
            raise BackendConfigError(
                f"builtin: 'delay_s' must be a number of seconds from 0 to 60, got {delay!r}"
            )
        unknown = sorted(set(config) - {"quality", "style", "delay_s"})
        if unknown:
            raise BackendConfigError(f"builtin: unknown option(s) {', '.join(unknown)}")
        bad = [fmt for fmt in formats if fmt not in FORMATS]
        if bad:
            raise BackendConfigError(
                f"builtin: cannot produce {', '.join(bad)}; it makes {', '.join(FORMATS)}"
            )

    def generate(self, request: GenerationRequest) -> GeneratedFile:
        delay = float(request.config.get("delay_s", 0) or 0)
        if delay > 0:
            time.sleep(delay)
        return generate(
            fmt=request.fmt,
            prompt=request.prompt,
            seed=request.seed,
            quality=int(request.config.get("quality", 3)),
            style=int(request.config.get("style", 0)),
            conditioning_image=request.conditioning_image,
        )


def _registry() -> dict[str, Backend]:
    # Imported here: those modules import this one (errors, GenerationRequest).
    from workers.diffusers_backend import DiffusersBackend
    from workers.remote import GradioBackend, HttpBackend

    return {
        "builtin": BuiltinBackend(),
        "gradio": GradioBackend(),
        "http": HttpBackend(),
        "diffusers": DiffusersBackend(),
    }


_REGISTRY: dict[str, Backend] = {}


def backend_get(name: str) -> Backend:
    if not _REGISTRY:
        _REGISTRY.update(_registry())
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BackendConfigError(
            f"unknown backend {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def backend_names() -> list[str]:
    if not _REGISTRY:
        _REGISTRY.update(_registry())
    return sorted(_REGISTRY)


def run_builtin(request: GenerationRequest) -> tuple[GeneratedFile, int]:
    """Run the builtin backend and time it; module-level so a process pool can pickle it."""
    started = time.perf_counter()
    output = BuiltinBackend().generate(request)
    return output, int((time.perf_counter() - started) * 1000)
