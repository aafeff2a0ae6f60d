"""The backend contract: errors, the request, the :class:`Backend` protocol, the output check.

A backend turns (model config, prompt, seed) into one media file:

* ``check_config(config, formats)`` runs at configuration time (admin, management commands)
  and raises :class:`BackendConfigError` naming the bad key, so that a broken model is refused
  in the admin, not discovered by a failing job. A backend whose check also looks at the
  machine (diffusers: torch, CUDA, the weights) has ``check_shape(config, formats)`` too, which
  checks the config alone; :func:`workers.backends.backend_config_check` picks between them.
  The admin checks the shape (the web host may lack torch); its "Check now" runs the full
  check on a worker of the model's queue (:mod:`workers.checks`).
* ``generate(request)`` returns a :class:`~workers.generators.GeneratedFile` of
  ``request.fmt``. It raises :class:`TransientBackendError` (or :class:`RemoteTransientError`)
  for failures that may pass -- the task retries those -- :class:`BackendError` for everything
  permanent, and :class:`BackendConfigError` when the config became unusable on this worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from workers.generators import CONTENT_TYPE, MEDIA_TYPE, GeneratedFile
from workers.media import InvalidMedia, sniff_format

__all__ = [
    "Backend",
    "BackendConfigError",
    "BackendError",
    "GenerationRequest",
    "RemoteTransientError",
    "TransientBackendError",
    "generated_file",
]


class BackendConfigError(ValueError):
    """A model's backend or backend_config is unusable; the message says what to fix."""


class BackendError(Exception):
    """A generation failed for good (bad output, remote app error): retrying will not help."""


class TransientBackendError(BackendError):
    """A generation failed for a reason that may pass: timeout, rate limit, 5xx from a remote app.

    Tasks retry these (with backoff) and only these.
    """


class RemoteTransientError(TransientBackendError):
    """A transient failure of a remote app that may say when to come back.

    ``retry_after_s`` is the server's ``Retry-After`` in seconds (``None`` when it gave none);
    ``status`` the HTTP status that caused it (``None`` for timeouts and connection errors).
    """

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, status: int | None = None
    ) -> None:
        if retry_after_s is not None:
            message = f"{message} (retry after {retry_after_s:g} s)"
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status


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


def generated_file(backend: str, data: bytes, fmt: str) -> GeneratedFile:
    """Wrap a backend's bytes as a GeneratedFile after checking their sniffed type is ``fmt``.

    Raises BackendError ("expected glb, got png") when the content is of another type, empty,
    or not media at all (e.g. an HTML error page).
    """
    try:
        actual = sniff_format(data)
    except InvalidMedia as exc:
        raise BackendError(f"{backend}: expected {fmt}, got an unusable file: {exc}") from exc
    if actual != fmt:
        raise BackendError(f"{backend}: expected {fmt}, got {actual}")
    return GeneratedFile(
        data=bytes(data),
        extension=fmt,
        content_type=CONTENT_TYPE[fmt],
        media_type=MEDIA_TYPE[fmt],
    )
