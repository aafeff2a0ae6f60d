"""The ``gradio`` backend: call an endpoint of a Gradio app (a Hugging Face Space or any URL).

See :mod:`workers.backends._remote` for the contract, templates, key paths and secrets.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from workers.backends._config import invalid, short
from workers.backends._remote import (
    KEY_PATH,
    EnvName,
    KeyPath,
    RemoteConfig,
    Template,
    Timeout,
    env_secret,
    exception_status,
    is_http_url,
    is_transport_error,
    pick,
    remote_config,
    render,
    status_error,
)
from workers.backends.base import (
    BackendError,
    GenerationRequest,
    RemoteTransientError,
    TransientBackendError,
    generated_file,
)
from workers.generators import GeneratedFile
from workers.media import InvalidMedia, sniff_format

__all__ = ["GradioBackend", "GradioConfig"]

_SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_QUOTA_ERROR = re.compile(r"\bquota\b|too many requests|rate.?limit", re.IGNORECASE)


class GradioConfig(RemoteConfig):
    """``backend_config`` of a ``gradio`` model; see :class:`GradioBackend`."""

    secret_hint: ClassVar[str] = "hf_token_env"

    src: str = Field(description="a Space id 'owner/name' or an http(s) URL")
    api_name: str = Field(
        pattern=r"^/[\w./-]*$",
        description="an endpoint name starting with '/' (e.g. '/predict')",
    )
    params: Template = Field(
        default_factory=lambda: {"prompt": "{prompt}"},
        description="an object (keyword arguments) or a list (positional arguments)",
    )
    output: KeyPath | None = Field(None, description=KEY_PATH)
    hf_token_env: EnvName = ""
    timeout_s: Timeout = 300.0

    @field_validator("src")
    @classmethod
    def _check_src(cls, src: str) -> str:
        if "://" not in src:
            if not _SPACE_ID.match(src):
                raise ValueError("not a Space id")
            return src
        if not is_http_url(src):
            raise invalid(f"'src' URL must be http(s)://host/..., got {src!r}")
        parsed = urllib.parse.urlsplit(src)
        if parsed.username or parsed.password:
            raise invalid("'src' must not embed credentials; use 'hf_token_env'")
        return src


class GradioBackend:
    """Call an endpoint of a Gradio app (a Hugging Face Space or any URL) via gradio_client.

    Config (:class:`GradioConfig`)::

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

    def __init__(self) -> None:
        self._clients: dict[tuple[int, str, str], Any] = {}
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------
    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        """Raise BackendConfigError naming the bad key; no network access."""
        remote_config(self.name, GradioConfig, config, formats)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GeneratedFile:
        """Run the configured endpoint once and return its output file (see class docstring)."""
        config = remote_config(self.name, GradioConfig, request.config, [request.fmt])
        timeout = config.timeout_s
        deadline = time.monotonic() + timeout
        token = None
        if config.hf_token_env:
            token = env_secret(self.name, "hf_token_env", config.hf_token_env)
        with tempfile.TemporaryDirectory(prefix="arena-gradio-in-") as tmp:
            image = _conditioning_file(request.conditioning_image, Path(tmp))
            params = render(config.params, request, image)
            args = params if isinstance(params, list) else []
            kwargs = params if isinstance(params, dict) else {}
            client = self._client(config.src, token, deadline, timeout)
            try:
                result = self._predict(client, config.api_name, args, kwargs, deadline, timeout)
            except TransientBackendError:
                self._forget(config.src, token)
                raise
        data = self._read_output(result, config.output, Path(client.output_dir).resolve())
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
        # Lazy: gradio_client is a heavy optional library, imported only when it is used.
        from gradio_client import exceptions as gc_exceptions
        from gradio_client import utils as gc_utils

        if isinstance(exc, TimeoutError) and not exception_status(exc)[0]:
            return RemoteTransientError(f"gradio: {what} did not finish within {timeout:g} s")
        if isinstance(exc, gc_exceptions.AppError):
            return _app_error(str(exc), what)
        if isinstance(exc, gc_utils.TooManyRequestsError | gc_utils.QueueError):
            return RemoteTransientError(f"gradio: {what}: {exc}", status=429)
        status, retry_after = exception_status(exc)
        if status is not None:
            return status_error(self.name, what, status, retry_after)
        if is_transport_error(exc):
            return RemoteTransientError(f"gradio: cannot reach the app ({what}): {exc!r}")
        if isinstance(exc, gc_exceptions.AuthenticationError):
            return BackendError(f"gradio: authentication failed for {what}: {exc}")
        return BackendError(f"gradio: {what} failed: {type(exc).__name__}: {exc}")

    def _client(self, src: str, token: str | None, deadline: float, timeout: float) -> Any:
        """The cached Client for (pid, src, token), created within the deadline if missing."""
        key = _client_key(src, token)
        with self._lock:
            client = self._clients.get(key)
        if client is not None:
            return client
        download_dir = self._downloads()
        box: dict[str, Any] = {}

        def connect() -> None:
            # Lazy: gradio_client is a heavy optional library, imported only when it is used.
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
        with self._lock:
            client = self._clients.pop(_client_key(src, token), None)
        if client is not None:
            client.close()

    @staticmethod
    def _downloads() -> Path:
        """This process's download folder for gradio_client (outputs are deleted once read)."""
        return _download_dir()

    def _read_output(self, result: Any, output: Any, root: Path) -> bytes:
        """The bytes of the output file picked from ``result``; deletes every downloaded file."""
        try:
            path = self._output_path(_picked(result, output), root)
            try:
                return path.read_bytes()
            except OSError as exc:
                raise BackendError(f"gradio: cannot read the downloaded output: {exc}") from exc
        finally:
            for downloaded in _downloaded_paths(result, root):  # the picked one and any other
                _discard_download(downloaded, root)

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
                    f"{short(picked)}; set 'output' to the file's key path"
                )
        if not isinstance(value, str | os.PathLike) or not str(value):
            raise BackendError(
                f"gradio: the picked output is not a file: {short(picked)}; set 'output' to "
                "the file's key path"
            )
        path = Path(value).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise BackendError(
                f"gradio: the picked output {short(str(value))} is not a file downloaded from "
                "the app; set 'output' to the file's key path"
            )
        return path


def _client_key(src: str, token: str | None) -> tuple[int, str, str]:
    """The cache key of a client: the token only as a hash."""
    return os.getpid(), src, hashlib.sha256((token or "").encode()).hexdigest()


def _conditioning_file(image: bytes | None, folder: Path) -> Any:
    """What ``"{image}"`` becomes: ``handle_file`` of the image saved in ``folder``, or None."""
    if image is None:
        return None
    # Lazy: gradio_client is a heavy optional library, imported only when it is used.
    from gradio_client import handle_file

    try:
        ext = sniff_format(image)
    except InvalidMedia:
        ext = "png"
    path = folder / f"image.{ext}"
    path.write_bytes(image)
    return handle_file(str(path))


def _app_error(message: str, what: str) -> BackendError:
    """The error for an exception raised by the app: transient when it reports a quota."""
    if _QUOTA_ERROR.search(message):
        # e.g. ZeroGPU: "You have exceeded your GPU quota (...). Try again in 0:01:05"
        return RemoteTransientError(
            f"gradio: the app is rate limited in {what}: {message}",
            retry_after_s=_try_again_in(message),
            status=429,
        )
    return BackendError(f"gradio: the app raised an error in {what}: {message}")


def _try_again_in(message: str) -> float | None:
    """Seconds from a "Try again in H:MM:SS" / "retry in N seconds" hint in an app's error."""
    match = re.search(r"(?:try again|retry) in (\d+):(\d\d):(\d\d)", message, re.IGNORECASE)
    if match:
        hours, minutes, seconds = (int(g) for g in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    match = re.search(r"(?:try again|retry) in (\d+) ?s", message, re.IGNORECASE)
    return float(match.group(1)) if match else None


def _picked(result: Any, output: Any) -> Any:
    """The part of ``result`` that ``output`` names; a lone element when it names none."""
    try:
        picked = pick(result, output)
    except LookupError as exc:
        raise BackendError(
            f"gradio: 'output' {output!r} not found in the result {short(result)}: {exc}"
        ) from None
    if isinstance(picked, list | tuple) and len(picked) == 1 and output is None:
        picked = picked[0]
    return picked


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
