"""What the remote backends (:mod:`.gradio`, :mod:`.http`) share: config types, templates,
key paths, secrets from the environment and the mapping of HTTP failures.

Both follow the :class:`~workers.backends.base.Backend` contract, and more precisely:

* ``check_config(config, formats)`` does no I/O: no network, and environment variables
  holding secrets are not required to be set there (they usually exist only on the workers).
* ``generate(request)`` returns a :class:`~workers.generators.GeneratedFile` whose extension is
  sniffed from the bytes (:func:`workers.media.sniff_format`) and equals ``request.fmt``. It
  raises :class:`~workers.backends.base.TransientBackendError` (or its subclass
  :class:`~workers.backends.base.RemoteTransientError`, which carries ``retry_after_s``) for
  timeouts, rate limits, 5xx answers and connection errors -- the task retries those -- and
  :class:`~workers.backends.base.BackendError` for everything permanent (the remote app raised
  an error, a 4xx answer, a failed job, missing output, wrong output type). A config that
  became unusable (e.g. the token's environment variable is not set on this worker) raises
  :class:`~workers.backends.base.BackendConfigError`. Nothing else escapes.
  The bytes' type is checked here (``generated_file``); full validation and metadata stripping
  are the caller's job.

Secrets never live in ``backend_config``: configs name an environment variable
(``hf_token_env``, ``auth_env``, ``headers_env``) whose value is read at generation time.

Request templates (gradio ``params``, http ``body``): any JSON value; strings are templates.
A string that is exactly ``"{prompt}"``, ``"{seed}"`` or ``"{image}"`` is replaced by the typed
value (the prompt string, the seed as an int, the conditioning image -- a file handle for
Gradio, base64 for http, ``None``/omitted when the request has none). Other strings may embed
``{prompt}`` and ``{seed}`` (``"a photo of {prompt}"``, ``"{seed:08d}"``); ``{{``/``}}`` are
literal braces. Any other placeholder is refused by ``check_config``.

Output picks (gradio ``output``, http ``job_id``/``status_key``/``result``...) are *key paths*:
an int (list index), a string (dict key) or a list of those walked in order, e.g.
``[0, "video"]``. Keys are never split on dots.

gradio_client and httpx are imported lazily by the backends, so importing them stays cheap.
"""

from __future__ import annotations

import email.utils
import os
import re
import string
import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from workers.backends._config import BackendConfig, invalid, validate_config
from workers.backends.base import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    RemoteTransientError,
)
from workers.generators import FORMATS

PLACEHOLDERS: tuple[str, ...] = ("prompt", "seed", "image")
# Config keys that look like an inline secret: refused with a pointer to the *_env keys.
_SECRET_KEYS = {"token", "hf_token", "api_key", "apikey", "key", "secret", "password", "auth"}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MAX_TIMEOUT_S = 3600.0
OMIT = object()  # a rendered template value whose key must be left out (no image)


# == config ===================================================================================
def check_env_name(label: str, value: object) -> str:
    """``value`` if it names an environment variable; the error hides what looks like a secret."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        shown = "<hidden>" if isinstance(value, str) and len(value) > 12 else repr(value)
        raise invalid(
            f"{label} must be the NAME of an environment variable holding the secret "
            f"(upper case, e.g. HF_TOKEN), not the secret itself; got {shown}"
        )
    return value


def _env_name_option(value: object, info: ValidationInfo) -> str:
    return check_env_name(f"'{info.field_name}'", value)


def _template_option(value: Any, info: ValidationInfo) -> Any:
    check_template(f"'{info.field_name}'", value)
    return value


KEY_PATH = 'a key path: an int index, a string key or a non-empty list of those (e.g. [0, "video"])'
KeyPath = int | str | Annotated[list[int | str], Field(min_length=1)]
# The NAME of an environment variable; "" (the default) means none.
EnvName = Annotated[str, BeforeValidator(_env_name_option)]
Timeout = Annotated[
    float,
    Field(gt=0, le=MAX_TIMEOUT_S, description=f"a number of seconds in (0, {MAX_TIMEOUT_S:g}]"),
]
# A request template (see the module docstring): an object or a list; placeholders are checked.
Template = Annotated[dict[str, Any] | list[Any], AfterValidator(_template_option)]

ConfigT = TypeVar("ConfigT", bound="RemoteConfig")


class RemoteConfig(BackendConfig):
    """Base of the remote backends' configs: an inline secret is refused with a pointer to the
    option that names its environment variable."""

    secret_hint: ClassVar[str]  # that option: "hf_token_env", "auth_env"

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in sorted(map(str, set(data) - set(cls.model_fields))):
                if key.lower() in _SECRET_KEYS:
                    raise invalid(
                        f"'{key}' looks like an inline secret; secrets must not be stored in the "
                        f"config -- put it in an environment variable and set "
                        f"'{cls.secret_hint}' to its name"
                    )
        return data


def remote_config(
    backend: str, model: type[ConfigT], config: object, formats: list[str]
) -> ConfigT:
    """The validated config of a remote backend that is to serve ``formats``."""
    values = validate_config(backend, model, config)
    bad = [fmt for fmt in formats if fmt not in FORMATS]
    if bad:
        raise BackendConfigError(
            f"{backend}: cannot serve {', '.join(map(str, bad))}; formats are {', '.join(FORMATS)}"
        )
    return values


def env_secret(backend: str, key: str, name: str) -> str:
    """The value of the environment variable ``name`` (named by option ``key``); must be set."""
    value = os.environ.get(name, "")
    if not value:
        raise BackendConfigError(
            f"{backend}: environment variable {name} (named by '{key}') is not set on this worker"
        )
    return value


def is_http_url(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


# == templates ================================================================================
def template_fields(text: str) -> list[tuple[str, str | None]]:
    """(field name, conversion) of each ``{...}`` in ``text``; raises ValueError if malformed."""
    return [
        (name, conversion)
        for _, name, _, conversion in string.Formatter().parse(text)
        if name is not None
    ]


def check_template(label: str, template: Any) -> None:
    """Check a request template's placeholders, recursively; ``label`` names it in errors."""
    if isinstance(template, dict):
        for k, v in template.items():
            if not isinstance(k, str):
                raise invalid(f"{label} keys must be strings, got {k!r}")
            check_template(f"{label}[{k!r}]", v)
    elif isinstance(template, list):
        for i, v in enumerate(template):
            check_template(f"{label}[{i}]", v)
    elif isinstance(template, str):
        _check_template_text(label, template)
    elif template is not None and not isinstance(template, bool | int | float):
        raise invalid(f"{label} must hold JSON values, got {type(template).__name__}")


def _check_template_text(label: str, text: str) -> None:
    if text in ("{prompt}", "{seed}", "{image}"):
        return
    try:
        fields = template_fields(text)
    except ValueError as exc:
        raise invalid(
            f"{label} is not a valid template ({exc}); write {{{{ and }}}} for literal braces"
        ) from exc
    for name, conversion in fields:
        if name == "image":
            raise invalid(f'{label} embeds {{image}} in text; "{{image}}" must be the whole value')
        if name not in PLACEHOLDERS or conversion is not None:
            raise invalid(
                f"{label} has an unknown placeholder {{{name}}}; allowed: "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )


def render(template: Any, request: GenerationRequest, image: Any) -> Any:
    """Fill a checked template. ``image`` is what ``"{image}"`` becomes (``OMIT`` drops it)."""
    if isinstance(template, dict):
        out = {k: render(v, request, image) for k, v in template.items()}
        return {k: v for k, v in out.items() if v is not OMIT}
    if isinstance(template, list):
        return [v for v in (render(v, request, image) for v in template) if v is not OMIT]
    if isinstance(template, str):
        if template == "{prompt}":
            return request.prompt
        if template == "{seed}":
            return request.seed
        if template == "{image}":
            return image
        return template.format(prompt=request.prompt, seed=request.seed)
    return template


def pick(value: Any, path: Any) -> Any:
    """Walk a key path; raises LookupError naming the first step that is missing."""
    if path is None:
        return value
    for step in path if isinstance(path, list) else [path]:
        if isinstance(step, int) and isinstance(value, list | tuple):
            if not -len(value) <= step < len(value):
                raise LookupError(f"index {step} out of range (length {len(value)})")
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict):
            if step not in value:
                raise LookupError(f"no key {step!r} (keys: {', '.join(map(str, value))})")
            value = value[step]
        else:
            raise LookupError(f"cannot apply {step!r} to a {type(value).__name__}")
    return value


# == failures =================================================================================
def exception_status(exc: BaseException) -> tuple[int | None, float | None]:
    """(HTTP status, Retry-After seconds) of an httpx-style HTTPStatusError, else (None, None)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None, None
    headers = getattr(response, "headers", None) or {}
    return status, retry_after(headers.get("retry-after"))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def status_error(backend: str, what: str, status: int, retry_after_s: float | None) -> BackendError:
    """The error for an HTTP error status: transient for 408, 429 and 5xx."""
    if status in (408, 429) or status >= 500:
        reason = "rate limited" if status == 429 else "unavailable"
        return RemoteTransientError(
            f"{backend}: {what} answered HTTP {status} ({reason})",
            retry_after_s=retry_after_s,
            status=status,
        )
    return BackendError(f"{backend}: {what} answered HTTP {status}")


def is_transport_error(exc: BaseException) -> bool:
    """Connection/timeout errors of httpx (and huggingface_hub's httpx2), or of the stdlib."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(
        cls.__name__ in ("TransportError", "TimeoutException")
        and cls.__module__.split(".")[0] in ("httpx", "httpx2")
        for cls in type(exc).__mro__
    )
