"""The ``builtin`` backend: procedural, offline, deterministic generators (CPU)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from workers.backends._config import BackendConfig, validate_config
from workers.backends.base import BackendConfigError, GenerationRequest
from workers.generators import FORMATS, GeneratedFile, generate

__all__ = ["BuiltinBackend", "BuiltinConfig"]


class BuiltinConfig(BackendConfig):
    """``backend_config`` of a ``builtin`` model; see :class:`BuiltinBackend`."""

    quality: int = Field(3, ge=1, le=4, description="an integer from 1 to 4")
    style: int = Field(0, ge=0, description="a non-negative integer")
    delay_s: float = Field(0, ge=0, le=60, description="a number of seconds from 0 to 60")


class BuiltinBackend:
    """Procedural, offline, deterministic generators (CPU).

    Config: ``{"quality": 1-4, "style": int, "delay_s": float}``; ``delay_s`` simulates a slow
    GPU model (demos of live generation, tests of killed workers).
    """

    name = "builtin"
    soft_time_limit_s = 120
    time_limit_s = 180

    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        validate_config(self.name, BuiltinConfig, config)
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
