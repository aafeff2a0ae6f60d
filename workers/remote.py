"""Remote generation backends: Gradio apps (``gradio``) and hosted JSON APIs (``http``).

Both follow the :class:`workers.backends.Backend` contract:

* ``check_config(config, formats)`` runs at configuration time (admin, management commands)
  and raises :class:`~workers.backends.BackendConfigError` naming the bad key. It does no I/O:
  no network, and environment variables holding secrets are not required to be set there
  (they usually exist only on the workers).
* ``generate(request)`` returns a :class:`~workers.generators.GeneratedFile` whose extension is
  sniffed from the bytes (:func:`workers.media.sniff_format`) and equals ``request.fmt``. It
  raises :class:`~workers.backends.TransientBackendError` (or its subclass
  :class:`RemoteTransientError`, which carries ``retry_after_s``) for timeouts, rate limits,
  5xx answers and connection errors -- the task retries those -- and
  :class:`~workers.backends.BackendError` for everything permanent (the remote app raised an
  error, a 4xx answer, a failed job, missing output, wrong output type). A config that became
  unusable (e.g. the token's environment variable is not set on this worker) raises
  :class:`~workers.backends.BackendConfigError`. Nothing else escapes.
  Validation and metadata stripping of the returned bytes is the caller's job.

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

gradio_client and httpx are imported lazily, so importing this module stays cheap.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import email.utils
import hashlib
import os
import re
import shutil
import string
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workers.backends import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    TransientBackendError,
)
from workers.generators import CONTENT_TYPE, FORMATS, MEDIA_TYPE, GeneratedFile
from workers.media import MAX_BYTES, InvalidMedia, sniff_format

__all__ = [
    "GradioBackend",
    "HttpBackend",
    "RemoteTransientError",
    "generated_file",
]

PLACEHOLDERS: tuple[str, ...] = ("prompt", "seed", "image")
# Config keys that look like an inline secret: refused with a pointer to the *_env keys.
_SECRET_KEYS = {"token", "hf_token", "api_key", "apikey", "key", "secret", "password", "auth"}
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MAX_TIMEOUT_S = 3600.0
_QUOTA_ERROR = re.compile(r"\bquota\b|too many requests|rate.?limit", re.IGNORECASE)
_OMIT = object()  # a rendered template value whose key must be left out (no image)


class RemoteTransientError(TransientBackendError):
    """A transient failure that may say when to come back.

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


# == shared helpers ===========================================================================
def generated_file(backend: str, data: bytes, fmt: str) -> GeneratedFile:
    """Wrap remote bytes as a GeneratedFile after checking their sniffed type is ``fmt``.

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


def _check_formats(backend: str, formats: list[str]) -> None:
    bad = [fmt for fmt in formats if fmt not in FORMATS]
    if bad:
        raise BackendConfigError(
            f"{backend}: cannot serve {', '.join(map(str, bad))}; formats are {', '.join(FORMATS)}"
        )


def _check_request_fmt(backend: str, fmt: str) -> None:
    if fmt not in FORMATS:
        raise BackendConfigError(f"{backend}: unknown format {fmt!r}")


def _check_unknown_keys(backend: str, config: Mapping[str, Any], known: set[str]) -> None:
    for key in sorted(set(config) - known):
        if key.lower() in _SECRET_KEYS:
            hint = "hf_token_env" if backend == "gradio" else "auth_env"
            raise BackendConfigError(
                f"{backend}: '{key}' looks like an inline secret; secrets must not be stored in "
                f"the config -- put it in an environment variable and set '{hint}' to its name"
            )
    unknown = sorted(set(config) - known)
    if unknown:
        raise BackendConfigError(
            f"{backend}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _check_env_name(backend: str, key: str, value: object) -> None:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        shown = "<hidden>" if isinstance(value, str) and len(value) > 12 else repr(value)
        raise BackendConfigError(
            f"{backend}: '{key}' must be the NAME of an environment variable holding the "
            f"secret (upper case, e.g. HF_TOKEN), not the secret itself; got {shown}"
        )


def _env_secret(backend: str, key: str, name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise BackendConfigError(
            f"{backend}: environment variable {name} (named by '{key}') is not set on this worker"
        )
    return value


def _check_timeout(backend: str, key: str, value: object, *, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise BackendConfigError(
            f"{backend}: '{key}' must be a number of seconds in (0, {maximum:g}], got {value!r}"
        )
    return float(value)


def _check_key_path(backend: str, key: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    parts = value if isinstance(value, list) else [value]
    if (isinstance(value, list) and not value) or not all(
        isinstance(p, str) or (isinstance(p, int) and not isinstance(p, bool)) for p in parts
    ):
        raise BackendConfigError(
            f"{backend}: '{key}' must be a key path: an int index, a string key or a non-empty "
            f'list of those (e.g. [0, "video"]), got {value!r}'
        )


def _pick(value: Any, path: Any) -> Any:
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


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _template_fields(text: str) -> list[tuple[str, str | None]]:
    """(field name, conversion) of each ``{...}`` in ``text``; raises ValueError if malformed."""
    return [
        (name, conversion)
        for _, name, _, conversion in string.Formatter().parse(text)
        if name is not None
    ]


def _check_template(backend: str, key: str, template: Any, where: str = "") -> None:
    """Recursively check a request template's placeholders (see the module docstring)."""
    label = f"'{key}'" + where
    if isinstance(template, dict):
        for k, v in template.items():
            if not isinstance(k, str):
                raise BackendConfigError(f"{backend}: {label} keys must be strings, got {k!r}")
            _check_template(backend, key, v, f"{where}[{k!r}]")
    elif isinstance(template, list):
        for i, v in enumerate(template):
            _check_template(backend, key, v, f"{where}[{i}]")
    elif isinstance(template, str):
        if template in ("{prompt}", "{seed}", "{image}"):
            return
        try:
            fields = _template_fields(template)
        except ValueError as exc:
            raise BackendConfigError(
                f"{backend}: {label} is not a valid template ({exc}); write {{{{ and }}}} for "
                "literal braces"
            ) from exc
        for name, conversion in fields:
            if name == "image":
                raise BackendConfigError(
                    f'{backend}: {label} embeds {{image}} in text; "{{image}}" must be the '
                    "whole value"
                )
            if name not in PLACEHOLDERS or conversion is not None:
                raise BackendConfigError(
                    f"{backend}: {label} has an unknown placeholder {{{name}}}; allowed: "
                    + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                )
    elif template is not None and not isinstance(template, bool | int | float):
        raise BackendConfigError(
            f"{backend}: {label} must hold JSON values, got {type(template).__name__}"
        )


def _render(template: Any, request: GenerationRequest, image: Any) -> Any:
    """Fill a checked template. ``image`` is what ``"{image}"`` becomes (``_OMIT`` drops it)."""
    if isinstance(template, dict):
        out = {k: _render(v, request, image) for k, v in template.items()}
        return {k: v for k, v in out.items() if v is not _OMIT}
    if isinstance(template, list):
        return [v for v in (_render(v, request, image) for v in template) if v is not _OMIT]
    if isinstance(template, str):
        if template == "{prompt}":
            return request.prompt
        if template == "{seed}":
            return request.seed
        if template == "{image}":
            return image
        return template.format(prompt=request.prompt, seed=request.seed)
    return template


def _exception_status(exc: BaseException) -> tuple[int | None, float | None]:
    """(HTTP status, Retry-After seconds) of an httpx-style HTTPStatusError, else (None, None)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None, None
    headers = getattr(response, "headers", None) or {}
    return status, _retry_after(headers.get("retry-after"))


def _retry_after(value: str | None) -> float | None:
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


def _try_again_in(message: str) -> float | None:
    """Seconds from a "Try again in H:MM:SS" / "retry in N seconds" hint in an app's error."""
    match = re.search(r"(?:try again|retry) in (\d+):(\d\d):(\d\d)", message, re.IGNORECASE)
    if match:
        hours, minutes, seconds = (int(g) for g in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    match = re.search(r"(?:try again|retry) in (\d+) ?s", message, re.IGNORECASE)
    return float(match.group(1)) if match else None


def _status_error(
    backend: str, what: str, status: int, retry_after_s: float | None
) -> BackendError:
    if status in (408, 429) or status >= 500:
        reason = "rate limited" if status == 429 else "unavailable"
        return RemoteTransientError(
            f"{backend}: {what} answered HTTP {status} ({reason})",
            retry_after_s=retry_after_s,
            status=status,
        )
    return BackendError(f"{backend}: {what} answered HTTP {status}")


def _is_transport_error(exc: BaseException) -> bool:
    """Connection/timeout errors of httpx (and huggingface_hub's httpx2), or of the stdlib."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(
        cls.__name__ in ("TransportError", "TimeoutException")
        and cls.__module__.split(".")[0] in ("httpx", "httpx2")
        for cls in type(exc).__mro__
    )


# == gradio ===================================================================================
class GradioBackend:
    """Call an endpoint of a Gradio app (a Hugging Face Space or any URL) via gradio_client.

    Config::

        {
          "src": "owner/space" | "https://host/app/",   # required
          "api_name": "/predict",                       # required, starts with "/"
          "params": {"prompt": "{prompt}", "seed": "{seed}", "image": "{image}"},
                    # kwargs (dict) or positional args (list); default {"prompt": "{prompt}"}
          "output": null | 0 | "video" | [0, "video"],  # key path into the result; default:
                    # the result itself (a one-element tuple is unwrapped)
          "hf_token_env": "HF_TOKEN",                   # optional: NAME of an env variable
          "timeout_s": 300                              # whole call, incl. connecting
        }

    ``"{image}"`` becomes ``gradio_client.handle_file`` of a temporary file holding the
    conditioning image (``None`` without one). The picked output must be a file gradio_client
    downloaded: a path, or a dict with ``"path"``/``"video"``/``"image"``; a string naming any
    other local path is refused, so a remote app cannot make the worker read its files.

    One ``gradio_client.Client`` per (process, src, token) is cached (creating one fetches the
    app's config and API info); a client is dropped after a transient failure so the next
    try reconnects.
    """

    name = "gradio"
    # Celery limits per job (s): a Space may queue and cold-start; the config's timeout_s applies inside.
    soft_time_limit_s = 600
    time_limit_s = 660
    _KEYS = {"src", "api_name", "params", "output", "hf_token_env", "timeout_s"}
    DEFAULT_TIMEOUT_S = 300.0

    def __init__(self) -> None:
        self._clients: dict[tuple[int, str, str], Any] = {}
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------
    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        """Raise BackendConfigError naming the bad key; no network access."""
        if not isinstance(config, dict):
            raise BackendConfigError("gradio: backend_config must be a JSON object")
        _check_unknown_keys(self.name, config, self._KEYS)
        src = config.get("src")
        if not isinstance(src, str) or not src.strip():
            raise BackendConfigError(
                "gradio: 'src' is required: a Space id 'owner/name' or an http(s) URL"
            )
        if "://" in src:
            parsed = urllib.parse.urlsplit(src)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise BackendConfigError(
                    f"gradio: 'src' URL must be http(s)://host/..., got {src!r}"
                )
            if parsed.username or parsed.password:
                raise BackendConfigError(
                    "gradio: 'src' must not embed credentials; use 'hf_token_env'"
                )
        elif not _SPACE_ID.match(src):
            raise BackendConfigError(
                f"gradio: 'src' must be a Space id 'owner/name' or an http(s) URL, got {src!r}"
            )
        api_name = config.get("api_name")
        if not isinstance(api_name, str) or not re.match(r"^/[\w./-]*$", api_name):
            raise BackendConfigError(
                f"gradio: 'api_name' is required and must start with '/' (e.g. '/predict'), "
                f"got {api_name!r}"
            )
        params = config.get("params", {"prompt": "{prompt}"})
        if not isinstance(params, dict | list):
            raise BackendConfigError(
                "gradio: 'params' must be an object (keyword arguments) or a list (positional)"
            )
        _check_template(self.name, "params", params)
        _check_key_path(self.name, "output", config.get("output"), allow_none=True)
        if "hf_token_env" in config:
            _check_env_name(self.name, "hf_token_env", config["hf_token_env"])
        _check_timeout(
            self.name,
            "timeout_s",
            config.get("timeout_s", self.DEFAULT_TIMEOUT_S),
            maximum=_MAX_TIMEOUT_S,
        )
        _check_formats(self.name, formats)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GeneratedFile:
        """Run the configured endpoint once and return its output file (see class docstring)."""
        config = request.config
        self.check_config(config, [request.fmt])
        timeout = float(config.get("timeout_s", self.DEFAULT_TIMEOUT_S))
        deadline = time.monotonic() + timeout
        token = None
        if "hf_token_env" in config:
            token = _env_secret(self.name, "hf_token_env", config["hf_token_env"])
        src: str = config["src"]
        with tempfile.TemporaryDirectory(prefix="arena-gradio-in-") as tmp:
            image: Any = None
            if request.conditioning_image is not None:
                from gradio_client import handle_file

                try:
                    ext = sniff_format(request.conditioning_image)
                except InvalidMedia:
                    ext = "png"
                path = Path(tmp) / f"image.{ext}"
                path.write_bytes(request.conditioning_image)
                image = handle_file(str(path))
            params = _render(config.get("params", {"prompt": "{prompt}"}), request, image)
            args = params if isinstance(params, list) else []
            kwargs = params if isinstance(params, dict) else {}
            client = self._client(src, token, deadline, timeout)
            try:
                result = self._predict(client, config["api_name"], args, kwargs, deadline, timeout)
            except TransientBackendError:
                self._forget(src, token)
                raise
        root = Path(client.output_dir).resolve()
        try:
            try:
                picked = _pick(result, config.get("output"))
            except LookupError as exc:
                raise BackendError(
                    f"gradio: 'output' {config.get('output')!r} not found in the result "
                    f"{_short(result)}: {exc}"
                ) from None
            if (
                isinstance(picked, list | tuple)
                and len(picked) == 1
                and config.get("output") is None
            ):
                picked = picked[0]
            path = self._output_path(picked, root)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BackendError(f"gradio: cannot read the downloaded output: {exc}") from exc
        finally:
            for downloaded in _downloaded_paths(result, root):  # the picked one and any other
                _discard_download(downloaded, root)
        return generated_file(self.name, data, request.fmt)

    def _predict(
        self,
        client: Any,
        api_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        deadline: float,
        timeout: float,
    ) -> Any:
        job = None
        try:
            job = client.submit(*args, api_name=api_name, **kwargs)
            return job.result(timeout=max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            if job is not None and not job.done():
                job.cancel()  # frees the app's queue slot when it has not started yet
            raise self._error(exc, api_name, timeout) from exc

    def _error(self, exc: Exception, what: str, timeout: float) -> BackendError:
        """Map a gradio_client/httpx exception to BackendError or TransientBackendError."""
        from gradio_client import exceptions as gc_exceptions
        from gradio_client import utils as gc_utils

        if isinstance(exc, TimeoutError) and not _exception_status(exc)[0]:
            return RemoteTransientError(f"gradio: {what} did not finish within {timeout:g} s")
        if isinstance(exc, gc_exceptions.AppError):
            message = str(exc)
            if _QUOTA_ERROR.search(message):
                # e.g. ZeroGPU: "You have exceeded your GPU quota (...). Try again in 0:01:05"
                return RemoteTransientError(
                    f"gradio: the app is rate limited in {what}: {message}",
                    retry_after_s=_try_again_in(message),
                    status=429,
                )
            return BackendError(f"gradio: the app raised an error in {what}: {message}")
        if isinstance(exc, gc_utils.TooManyRequestsError | gc_utils.QueueError):
            return RemoteTransientError(f"gradio: {what}: {exc}", status=429)
        status, retry_after = _exception_status(exc)
        if status is not None:
            return _status_error(self.name, what, status, retry_after)
        if _is_transport_error(exc):
            return RemoteTransientError(f"gradio: cannot reach the app ({what}): {exc!r}")
        if isinstance(exc, gc_exceptions.AuthenticationError):
            return BackendError(f"gradio: authentication failed for {what}: {exc}")
        return BackendError(f"gradio: {what} failed: {type(exc).__name__}: {exc}")

    def _client(self, src: str, token: str | None, deadline: float, timeout: float) -> Any:
        """The cached Client for (pid, src, token), created within the deadline if missing."""
        key = (os.getpid(), src, hashlib.sha256((token or "").encode()).hexdigest())
        with self._lock:
            client = self._clients.get(key)
        if client is not None:
            return client
        download_dir = self._downloads()
        box: dict[str, Any] = {}

        def connect() -> None:
            from gradio_client import Client

            try:
                box["client"] = Client(
                    src,
                    token=token,
                    verbose=False,
                    analytics_enabled=False,
                    download_files=str(download_dir),
                )
            except Exception as exc:
                box["error"] = exc

        # Client() has no timeout of its own (it even waits for a building Space forever),
        # so it runs in a daemon thread that is abandoned when the deadline passes.
        thread = threading.Thread(target=connect, name="arena-gradio-connect", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise RemoteTransientError(f"gradio: connecting to {src} took over {timeout:g} s")
        if "error" in box:
            raise self._error(box["error"], f"connecting to {src}", timeout) from box["error"]
        with self._lock:
            client = self._clients.setdefault(key, box["client"])
        return client

    def _forget(self, src: str, token: str | None) -> None:
        key = (os.getpid(), src, hashlib.sha256((token or "").encode()).hexdigest())
        with self._lock:
            client = self._clients.pop(key, None)
        if client is not None:
            client.close()

    @staticmethod
    def _downloads() -> Path:
        """This process's download folder for gradio_client (outputs are deleted once read)."""
        return _download_dir()

    @staticmethod
    def _output_path(picked: Any, root: Path) -> Path:
        value = picked
        while isinstance(value, dict):
            for key in ("path", "video", "image"):
                if value.get(key):
                    value = value[key]
                    break
            else:
                raise BackendError(
                    f"gradio: the picked output is not a file (no 'path'/'video'/'image'): "
                    f"{_short(picked)}; set 'output' to the file's key path"
                )
        if not isinstance(value, str | os.PathLike) or not str(value):
            raise BackendError(
                f"gradio: the picked output is not a file: {_short(picked)}; set 'output' to "
                "the file's key path"
            )
        path = Path(value).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise BackendError(
                f"gradio: the picked output {_short(str(value))} is not a file downloaded from "
                "the app; set 'output' to the file's key path"
            )
        return path


_DOWNLOAD_DIRS: dict[int, Path] = {}
_DOWNLOAD_LOCK = threading.Lock()


def _download_dir() -> Path:
    """A folder of this process's own (a forked child gets a new one), removed at exit."""
    with _DOWNLOAD_LOCK:
        pid = os.getpid()
        if pid not in _DOWNLOAD_DIRS:
            path = Path(tempfile.mkdtemp(prefix="arena-gradio-out-")).resolve()
            atexit.register(shutil.rmtree, path, True)
            _DOWNLOAD_DIRS[pid] = path
        return _DOWNLOAD_DIRS[pid]


def _downloaded_paths(result: Any, root: Path) -> list[Path]:
    """Every file under ``root`` (gradio_client's download folder) that ``result`` names."""
    found: list[Path] = []
    if isinstance(result, dict):
        for value in result.values():
            found += _downloaded_paths(value, root)
    elif isinstance(result, list | tuple):
        for value in result:
            found += _downloaded_paths(value, root)
    elif isinstance(result, str) and result.startswith(str(root)):
        path = Path(result).resolve()
        if path.is_relative_to(root) and path.is_file():
            found.append(path)
    return found


def _discard_download(path: Path, root: Path) -> None:
    """Delete a downloaded file and its folder if empty (gradio_client names it by hash)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
    parent = path.parent
    if parent != root and parent.is_relative_to(root):
        with contextlib.suppress(OSError):
            parent.rmdir()


# == http =====================================================================================
class HttpBackend:
    """A generic submit / poll / download JSON API for hosted generators (httpx).

    Config::

        {
          "submit_url": "https://api.example.com/v1/jobs",            # required, http(s)
          "body": {"prompt": "{prompt}", "seed": "{seed}", "image": "{image}"},  # default
                  # JSON template POSTed to submit_url; "{image}" is the conditioning image
                  # as base64 and the key is omitted when there is none
          "headers": {"X-Model": "v2"},         # literal, non-secret headers
          "auth_env": "API_KEY",                # optional: -> "Authorization: Bearer $API_KEY"
          "auth_scheme": "Bearer",              # e.g. "Token", "Key"
          "headers_env": {"X-Api-Key": "VENDOR_KEY"},  # header -> NAME of an env variable
          "job_id": "id",                       # key path of the job id in the submit answer
          "status_url": "https://api.example.com/v1/jobs/{job_id}",
                  # optional template ({job_id} only; relative URLs resolve against
                  # submit_url; "{job_id}" alone when the id is itself a URL). Omitted: the
                  # API is synchronous and the submit answer is the final status.
          "status_key": "status",               # key path of the job's status
          "done_values": ["succeeded", "completed", "done", "success"],
          "failed_values": ["failed", "error", "canceled", "cancelled"],
          "error_key": "error",                 # key path of the failure message
          "result": "result",                   # key path of the result URL (http(s) or
                                                # a data: URL with base64 content)
          "poll_interval_s": 2,
          "timeout_s": 600                      # the whole submit + poll + download
        }

    Status values compare case-insensitively as strings (so ``true`` matches JSON ``true``);
    any other value means "still running". The submit answer counts as the first status when
    it carries one. Transient errors while polling are retried at the next poll (three in a
    row give up). Headers, secret ones included, are sent only to the origins of
    ``submit_url`` and ``status_url``: a result on another host (a pre-signed storage URL) is
    fetched without them.
    """

    name = "http"
    # Celery limits per job (s): hosted APIs queue jobs; the config's timeout_s applies inside.
    soft_time_limit_s = 900
    time_limit_s = 960
    _KEYS = {
        "submit_url",
        "body",
        "headers",
        "auth_env",
        "auth_scheme",
        "headers_env",
        "job_id",
        "status_url",
        "status_key",
        "done_values",
        "failed_values",
        "error_key",
        "result",
        "poll_interval_s",
        "timeout_s",
    }
    DEFAULT_BODY: dict[str, Any] = {"prompt": "{prompt}", "seed": "{seed}", "image": "{image}"}
    DEFAULT_DONE = ("succeeded", "completed", "done", "success")
    DEFAULT_FAILED = ("failed", "error", "canceled", "cancelled")
    DEFAULT_TIMEOUT_S = 600.0
    DEFAULT_POLL_S = 2.0
    POLL_ERRORS_TOLERATED = 3

    # -- configuration ------------------------------------------------------------------------
    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        """Raise BackendConfigError naming the bad key; no network access."""
        if not isinstance(config, dict):
            raise BackendConfigError("http: backend_config must be a JSON object")
        _check_unknown_keys(self.name, config, self._KEYS)
        submit_url = config.get("submit_url")
        if not isinstance(submit_url, str) or not _is_http_url(submit_url):
            raise BackendConfigError(
                f"http: 'submit_url' is required and must be an http(s) URL, got {submit_url!r}"
            )
        body = config.get("body", self.DEFAULT_BODY)
        if not isinstance(body, dict | list):
            raise BackendConfigError("http: 'body' must be a JSON object or list template")
        _check_template(self.name, "body", body)
        headers = config.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise BackendConfigError("http: 'headers' must map header names to strings")
        for header in headers:
            if any(word in header.lower() for word in _SECRET_HEADER_WORDS):
                raise BackendConfigError(
                    f"http: header {header!r} looks like a secret; secrets must not be stored in "
                    "the config -- use 'auth_env' or 'headers_env' with an environment variable"
                )
        if "auth_env" in config:
            _check_env_name(self.name, "auth_env", config["auth_env"])
        scheme = config.get("auth_scheme", "Bearer")
        if not isinstance(scheme, str) or not re.match(r"^[A-Za-z][\w-]*$", scheme):
            raise BackendConfigError(f"http: 'auth_scheme' must be a word, got {scheme!r}")
        headers_env = config.get("headers_env", {})
        if not isinstance(headers_env, dict) or not all(isinstance(k, str) for k in headers_env):
            raise BackendConfigError("http: 'headers_env' must map header names to env variables")
        for header, env_name in headers_env.items():
            _check_env_name(self.name, f"headers_env[{header!r}]", env_name)
        status_url = config.get("status_url")
        if status_url is not None:
            if not isinstance(status_url, str) or not status_url:
                raise BackendConfigError("http: 'status_url' must be a URL template string")
            try:
                names = {name for name, _ in _template_fields(status_url)}
            except ValueError as exc:
                raise BackendConfigError(
                    f"http: 'status_url' is not a valid template: {exc}"
                ) from exc
            if names != {"job_id"}:
                raise BackendConfigError(
                    "http: 'status_url' must contain {job_id} and no other placeholder, got "
                    f"{status_url!r}"
                )
        for key, default in (("job_id", "id"), ("status_key", "status"), ("result", "result")):
            _check_key_path(self.name, key, config.get(key, default))
        _check_key_path(self.name, "error_key", config.get("error_key", "error"))
        for key, defaults in (
            ("done_values", self.DEFAULT_DONE),
            ("failed_values", self.DEFAULT_FAILED),
        ):
            values = config.get(key, list(defaults))
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str | int | bool) for v in values)
            ):
                raise BackendConfigError(f"http: '{key}' must be a non-empty list of strings")
        overlap = {str(v).lower() for v in config.get("done_values", self.DEFAULT_DONE)} & {
            str(v).lower() for v in config.get("failed_values", self.DEFAULT_FAILED)
        }
        if overlap:
            raise BackendConfigError(
                f"http: 'done_values' and 'failed_values' share {', '.join(sorted(overlap))}"
            )
        _check_timeout(
            self.name,
            "poll_interval_s",
            config.get("poll_interval_s", self.DEFAULT_POLL_S),
            maximum=300,
        )
        _check_timeout(
            self.name,
            "timeout_s",
            config.get("timeout_s", self.DEFAULT_TIMEOUT_S),
            maximum=_MAX_TIMEOUT_S,
        )
        _check_formats(self.name, formats)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GeneratedFile:
        """Submit, poll until done, download the result (see the class docstring)."""
        import httpx

        config = request.config
        self.check_config(config, [request.fmt])
        timeout = float(config.get("timeout_s", self.DEFAULT_TIMEOUT_S))
        deadline = time.monotonic() + timeout
        submit_url: str = config["submit_url"]
        headers = dict(config.get("headers", {}))
        if "auth_env" in config:
            secret = _env_secret(self.name, "auth_env", config["auth_env"])
            headers["Authorization"] = f"{config.get('auth_scheme', 'Bearer')} {secret}"
        for header, env_name in config.get("headers_env", {}).items():
            headers[header] = _env_secret(self.name, f"headers_env[{header!r}]", env_name)
        trusted = {_origin(submit_url)}
        status_url = config.get("status_url")
        if status_url and _is_http_url(status_url.split("{", 1)[0]):
            trusted.add(_origin(status_url.split("{", 1)[0]))

        image = (
            base64.b64encode(request.conditioning_image).decode("ascii")
            if request.conditioning_image is not None
            else _OMIT
        )
        body = _render(config.get("body", self.DEFAULT_BODY), request, image)

        with httpx.Client(follow_redirects=True) as http:
            call = _HttpCall(http, deadline, timeout, headers, trusted)
            doc = call.json("POST", submit_url, "submit", body)
            if status_url is not None:
                doc = self._poll(call, config, doc, submit_url, status_url)
            try:
                location = _pick(doc, config.get("result", "result"))
            except LookupError as exc:
                raise BackendError(
                    f"http: no result ('result' {config.get('result', 'result')!r}) in "
                    f"{_short(doc)}: {exc}"
                ) from None
            if not isinstance(location, str) or not location:
                raise BackendError(f"http: the result is not a URL: {_short(location)}")
            if location.startswith("data:"):
                data = _data_url(location)
            else:
                base = call.last_url or submit_url
                data = call.download(urllib.parse.urljoin(base, location))
        return generated_file(self.name, data, request.fmt)

    def _poll(
        self,
        call: _HttpCall,
        config: dict[str, Any],
        doc: Any,
        submit_url: str,
        status_url: str,
    ) -> Any:
        key_path = config.get("status_key", "status")
        done = {str(v).lower() for v in config.get("done_values", self.DEFAULT_DONE)}
        failed = {str(v).lower() for v in config.get("failed_values", self.DEFAULT_FAILED)}
        interval = float(config.get("poll_interval_s", self.DEFAULT_POLL_S))
        try:
            job_id = _pick(doc, config.get("job_id", "id"))
        except LookupError as exc:
            raise BackendError(
                f"http: no job id ('job_id' {config.get('job_id', 'id')!r}) in the submit "
                f"answer {_short(doc)}: {exc}"
            ) from None
        if not isinstance(job_id, str | int) or isinstance(job_id, bool) or job_id == "":
            raise BackendError(f"http: the job id is not a string or int: {_short(job_id)}")
        job = str(job_id)
        if status_url == "{job_id}":
            url = job
        else:
            url = status_url.format(job_id=urllib.parse.quote(job, safe=""))
        url = urllib.parse.urljoin(submit_url, url)
        if not _is_http_url(url):
            raise BackendError(f"http: the status URL is not http(s): {_short(url)}")
        errors = 0
        first = True
        while True:
            try:
                status = _pick(doc, key_path)
            except LookupError as exc:
                if not first:
                    raise BackendError(
                        f"http: no status ('status_key' {key_path!r}) in {_short(doc)}: {exc}"
                    ) from None
                status = None  # the submit answer need not carry a status
            first = False
            if status is not None and str(status).lower() in done:
                return doc
            if status is not None and str(status).lower() in failed:
                try:
                    message = _pick(doc, config.get("error_key", "error"))
                except LookupError:
                    message = "no error message"
                raise BackendError(f"http: job {job} {status}: {_short(message, 500)}")
            wait = interval
            while True:
                remaining = call.deadline - time.monotonic()
                if remaining > 0:
                    time.sleep(min(wait, remaining))
                if time.monotonic() >= call.deadline:
                    raise RemoteTransientError(
                        f"http: job {job} not done within {call.timeout:g} s (last status "
                        f"{status!r})"
                    )
                try:
                    doc = call.json("GET", url, "status", None)
                    errors = 0
                    break
                except RemoteTransientError as exc:
                    errors += 1
                    if errors >= self.POLL_ERRORS_TOLERATED or time.monotonic() >= call.deadline:
                        raise
                    wait = max(interval, exc.retry_after_s or 0.0)


class _HttpCall:
    """One generation's HTTP session: shared deadline, headers for trusted origins only."""

    def __init__(
        self,
        http: Any,
        deadline: float,
        timeout: float,
        headers: dict[str, str],
        trusted: set[tuple[str, str, int]],
    ) -> None:
        self.http = http
        self.deadline = deadline
        self.timeout = timeout
        self.headers = headers
        self.trusted = trusted
        self.last_url: str | None = None

    def _send(self, method: str, url: str, what: str, body: Any, stream: bool) -> Any:
        import httpx

        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RemoteTransientError(f"http: {self.timeout:g} s timeout passed before {what}")
        headers = dict(self.headers) if _origin(url) in self.trusted else {}
        try:
            request = self.http.build_request(
                method,
                url,
                json=body if method == "POST" else None,
                headers=headers,
                timeout=httpx.Timeout(remaining, connect=min(remaining, 30.0)),
            )
            response = self.http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise RemoteTransientError(
                f"http: {what} timed out ({type(exc).__name__}) within {self.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise RemoteTransientError(f"http: {what} failed: {exc!r}") from exc
        except httpx.HTTPError as exc:  # e.g. too many redirects, invalid URL
            raise BackendError(f"http: {what} failed: {exc!r}") from exc
        if response.status_code >= 400:
            if stream:
                response.close()
            raise _status_error(
                "http",
                f"{what} ({method} {_redact(url)})",
                response.status_code,
                _retry_after(response.headers.get("retry-after")),
            )
        return response

    def json(self, method: str, url: str, what: str, body: Any) -> Any:
        response = self._send(method, url, what, body, stream=False)
        self.last_url = str(response.url)
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"http: the {what} answer is not JSON: {_short(response.text[:200])}"
            ) from None

    def download(self, url: str) -> bytes:
        import httpx

        if not _is_http_url(url):
            raise BackendError(f"http: the result URL is not http(s): {_short(url)}")
        response = self._send("GET", url, "download", None, stream=True)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise BackendError(f"http: the result is over {MAX_BYTES} bytes")
                chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise RemoteTransientError(
                f"http: download timed out within {self.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise RemoteTransientError(f"http: download failed: {exc!r}") from exc
        finally:
            response.close()
        return b"".join(chunks)


def _is_http_url(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def _origin(url: str) -> tuple[str, str, int]:
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, (parsed.hostname or "").lower(), port


def _redact(url: str) -> str:
    """URL without its query string (pre-signed URLs carry credentials there)."""
    return urllib.parse.urlsplit(url)._replace(query="", fragment="").geturl()


def _data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise BackendError("http: a data: result must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as exc:
        raise BackendError(f"http: the data: result is not valid base64: {exc}") from None
