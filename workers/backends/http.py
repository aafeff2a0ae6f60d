"""The ``http`` backend: a generic submit / poll / download JSON API for hosted generators.

See :mod:`workers.backends._remote` for the contract, templates, key paths and secrets.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from workers.backends._config import invalid, short
from workers.backends._remote import (
    KEY_PATH,
    OMIT,
    EnvName,
    KeyPath,
    RemoteConfig,
    Template,
    Timeout,
    check_env_name,
    env_secret,
    is_http_url,
    pick,
    remote_config,
    render,
    retry_after,
    status_error,
    template_fields,
)
from workers.backends.base import (
    BackendError,
    GenerationRequest,
    RemoteTransientError,
    generated_file,
)
from workers.generators import GeneratedFile
from workers.media import MAX_BYTES

__all__ = ["HttpBackend", "HttpConfig"]

_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password")
StatusValues = Annotated[list[str | int | bool], Field(min_length=1)]
_DONE: tuple[str | int | bool, ...] = ("succeeded", "completed", "done", "success")
_FAILED: tuple[str | int | bool, ...] = ("failed", "error", "canceled", "cancelled")


class HttpConfig(RemoteConfig):
    """``backend_config`` of an ``http`` model; see :class:`HttpBackend`."""

    secret_hint: ClassVar[str] = "auth_env"

    submit_url: str = Field(description="an http(s) URL")
    body: Template = Field(
        default_factory=lambda: {"prompt": "{prompt}", "seed": "{seed}", "image": "{image}"},
        description="a JSON object or list template",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="an object mapping header names to strings"
    )
    auth_env: EnvName = ""
    auth_scheme: str = Field(
        "Bearer", pattern=r"^[A-Za-z][\w-]*$", description="a word (e.g. 'Bearer', 'Token')"
    )
    headers_env: dict[str, str] = Field(
        default_factory=dict,
        description="an object mapping header names to the NAMES of environment variables",
    )
    status_url: str | None = Field(None, description="a URL template containing {job_id}")
    job_id: KeyPath = Field("id", description=KEY_PATH)
    status_key: KeyPath = Field("status", description=KEY_PATH)
    result: KeyPath = Field("result", description=KEY_PATH)
    error_key: KeyPath = Field("error", description=KEY_PATH)
    done_values: StatusValues = Field(
        default_factory=lambda: list(_DONE),
        description="a non-empty list of strings",
    )
    failed_values: StatusValues = Field(
        default_factory=lambda: list(_FAILED),
        description="a non-empty list of strings",
    )
    poll_interval_s: float = Field(2.0, gt=0, le=300, description="a number of seconds in (0, 300]")
    timeout_s: Timeout = 600.0

    @field_validator("submit_url")
    @classmethod
    def _check_submit_url(cls, url: str) -> str:
        if not is_http_url(url):
            raise ValueError("not an http(s) URL")
        return url

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for header in headers:
            if any(word in header.lower() for word in _SECRET_HEADER_WORDS):
                raise invalid(
                    f"header {header!r} looks like a secret; secrets must not be stored in the "
                    "config -- use 'auth_env' or 'headers_env' with an environment variable"
                )
        return headers

    @field_validator("headers_env")
    @classmethod
    def _check_headers_env(cls, headers_env: dict[str, str]) -> dict[str, str]:
        for header, env_name in headers_env.items():
            check_env_name(f"'headers_env[{header!r}]'", env_name)
        return headers_env

    @field_validator("status_url")
    @classmethod
    def _check_status_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url:
            raise ValueError("empty")
        try:
            names = {name for name, _ in template_fields(url)}
        except ValueError as exc:
            raise invalid(f"'status_url' is not a valid template: {exc}") from exc
        if names != {"job_id"}:
            raise invalid(
                "'status_url' must contain {job_id} and no other placeholder, got " + repr(url)
            )
        return url

    @model_validator(mode="after")
    def _check_status_values(self) -> HttpConfig:
        overlap = self.done_states & self.failed_states
        if overlap:
            raise invalid(f"'done_values' and 'failed_values' share {', '.join(sorted(overlap))}")
        return self

    @property
    def done_states(self) -> set[str]:
        return {str(v).lower() for v in self.done_values}

    @property
    def failed_states(self) -> set[str]:
        return {str(v).lower() for v in self.failed_values}


class HttpBackend:
    """A generic submit / poll / download JSON API for hosted generators (httpx).

    Config (:class:`HttpConfig`)::

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
    POLL_ERRORS_TOLERATED = 3

    # -- configuration ------------------------------------------------------------------------
    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        """Raise BackendConfigError naming the bad key; no network access."""
        remote_config(self.name, HttpConfig, config, formats)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GeneratedFile:
        """Submit, poll until done, download the result (see the class docstring)."""
        # Lazy: httpx is imported only when it is used, so importing the backends stays cheap.
        import httpx

        config = remote_config(self.name, HttpConfig, request.config, [request.fmt])
        deadline = time.monotonic() + config.timeout_s
        headers = self._headers(config)
        image = (
            base64.b64encode(request.conditioning_image).decode("ascii")
            if request.conditioning_image is not None
            else OMIT
        )
        body = render(config.body, request, image)

        trusted = _trusted_origins(config)
        # A redirect to another host must not carry the secret headers along: httpx itself
        # drops only Authorization, so every request (redirects included) is checked here.
        hooks = {"request": [_untrusted_stripper(set(headers), trusted)]}
        with httpx.Client(follow_redirects=True, event_hooks=hooks) as http:
            call = _HttpCall(http, deadline, config.timeout_s, headers, trusted)
            doc = call.json("POST", config.submit_url, "submit", body)
            if config.status_url is not None:
                doc = self._poll(call, config, config.status_url, doc)
            data = self._result(call, config, doc)
        return generated_file(self.name, data, request.fmt)

    def _headers(self, config: HttpConfig) -> dict[str, str]:
        """The configured headers, with the secrets read from the environment."""
        headers = dict(config.headers)
        if config.auth_env:
            secret = env_secret(self.name, "auth_env", config.auth_env)
            headers["Authorization"] = f"{config.auth_scheme} {secret}"
        for header, env_name in config.headers_env.items():
            headers[header] = env_secret(self.name, f"headers_env[{header!r}]", env_name)
        return headers

    @staticmethod
    def _result(call: _HttpCall, config: HttpConfig, doc: Any) -> bytes:
        """Download (or decode) the result that the final status ``doc`` points at."""
        location = _required(doc, config.result, "result", key="result")
        if not isinstance(location, str) or not location:
            raise BackendError(f"http: the result is not a URL: {short(location)}")
        if location.startswith("data:"):
            return _data_url(location)
        base = call.last_url or config.submit_url
        return call.download(urllib.parse.urljoin(base, location))

    def _poll(self, call: _HttpCall, config: HttpConfig, status_url: str, doc: Any) -> Any:
        """Poll the job's status until it is done (its final status) or failed (BackendError)."""
        job, url = _status_location(config, status_url, doc)
        first = True
        while True:
            status = _status(config, doc, required=not first)
            first = False
            state = None if status is None else str(status).lower()
            if state in config.done_states:
                return doc
            if state in config.failed_states:
                try:
                    message = pick(doc, config.error_key)
                except LookupError:
                    message = "no error message"
                raise BackendError(f"http: job {job} {status}: {short(message, 500)}")
            doc = self._next_status(call, url, job, status, config.poll_interval_s)

    def _next_status(
        self, call: _HttpCall, url: str, job: str, status: Any, interval: float
    ) -> Any:
        """Wait a poll interval, then GET the status; a transient error is retried at the next
        poll, up to POLL_ERRORS_TOLERATED in a row, and never past the deadline."""
        wait = interval
        errors = 0
        while True:
            remaining = call.deadline - time.monotonic()
            if remaining > 0:
                time.sleep(min(wait, remaining))
            if time.monotonic() >= call.deadline:
                raise _not_done(job, status, call.timeout)
            try:
                return call.json("GET", url, "status", None)
            except RemoteTransientError as exc:
                errors += 1
                if time.monotonic() >= call.deadline:
                    # The deadline ran out during the request: the job is what overran.
                    raise _not_done(job, status, call.timeout, cause=str(exc)) from exc
                if errors >= self.POLL_ERRORS_TOLERATED:
                    raise
                wait = max(interval, exc.retry_after_s or 0.0)


def _not_done(job: str, status: Any, timeout: float, cause: str = "") -> RemoteTransientError:
    after = f"; the last status request: {cause}" if cause else ""
    return RemoteTransientError(
        f"http: job {job} not done within {timeout:g} s (last status {status!r}{after})"
    )


def _required(doc: Any, path: Any, what: str, *, key: str, where: str = "") -> Any:
    """``pick(doc, path)``, or a ``BackendError`` naming the config ``key`` that pointed there."""
    try:
        return pick(doc, path)
    except LookupError as exc:
        raise BackendError(
            f"http: no {what} ({key!r} {path!r}) in {where}{short(doc)}: {exc}"
        ) from None


def _status_location(config: HttpConfig, status_url: str, doc: Any) -> tuple[str, str]:
    """(job id, status URL) from the submit answer ``doc``."""
    job_id = _required(doc, config.job_id, "job id", key="job_id", where="the submit answer ")
    if not isinstance(job_id, str | int) or isinstance(job_id, bool) or job_id == "":
        raise BackendError(f"http: the job id is not a string or int: {short(job_id)}")
    job = str(job_id)
    if status_url == "{job_id}":
        url = job
    else:
        url = status_url.format(job_id=urllib.parse.quote(job, safe=""))
    url = urllib.parse.urljoin(config.submit_url, url)
    if not is_http_url(url):
        raise BackendError(f"http: the status URL is not http(s): {short(url)}")
    return job, url


def _status(config: HttpConfig, doc: Any, *, required: bool) -> Any:
    """The job's status in ``doc``; None when it has none and need not (the submit answer)."""
    if required:
        return _required(doc, config.status_key, "status", key="status_key")
    try:
        return pick(doc, config.status_key)
    except LookupError:
        return None


def _trusted_origins(config: HttpConfig) -> set[tuple[str, str, int]]:
    """The origins that get the headers: those of ``submit_url`` and ``status_url``."""
    trusted = {_origin(config.submit_url)}
    status_base = (config.status_url or "").split("{", 1)[0]
    if status_base and is_http_url(status_base):
        trusted.add(_origin(status_base))
    return trusted


def _untrusted_stripper(names: set[str], trusted: set[tuple[str, str, int]]) -> Any:
    """An httpx request hook that removes the ``names`` headers from requests to other origins."""

    def strip(request: Any) -> None:
        if _origin(str(request.url)) not in trusted:
            for name in names:
                request.headers.pop(name, None)

    return strip


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
        import httpx  # lazy, see HttpBackend.generate

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
            raise status_error(
                "http",
                f"{what} ({method} {_redact(url)})",
                response.status_code,
                retry_after(response.headers.get("retry-after")),
            )
        return response

    def json(self, method: str, url: str, what: str, body: Any) -> Any:
        response = self._send(method, url, what, body, stream=False)
        self.last_url = str(response.url)
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"http: the {what} answer is not JSON: {short(response.text[:200])}"
            ) from None

    def download(self, url: str) -> bytes:
        import httpx  # lazy, see HttpBackend.generate

        if not is_http_url(url):
            raise BackendError(f"http: the result URL is not http(s): {short(url)}")
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
        except httpx.HTTPError as exc:  # e.g. a body that does not decode: retrying won't help
            raise BackendError(f"http: download failed: {exc!r}") from exc
        finally:
            response.close()
        return b"".join(chunks)


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
