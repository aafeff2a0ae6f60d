"""The ``http`` backend against a scripted JSON API (stdlib http.server on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from workers.backends import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    HttpBackend,
    RemoteTransientError,
    TransientBackendError,
)
from workers.generators import generate
from workers.media import validate


@cache
def sample(fmt: str) -> bytes:
    return generate(fmt=fmt, prompt="a red cat", seed=3, quality=1).data


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[["Seen"], Reply]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ScriptedApi:
    """A local HTTP server whose answers are set per test: ``routes[(method, path)]``.

    A route is a list of Replies (served in turn, the last one repeated) or a callable.
    Every request is recorded in ``seen``.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply] | Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                with api.lock:
                    api.seen.append(seen)
                    route = api.routes.get((self.command, self.path))
                    if route is None:
                        reply: Reply | None = Reply(404, {"error": "no such route"})
                    elif callable(route):
                        reply = None  # called below, outside the lock (it may sleep)
                    else:
                        reply = route.pop(0) if len(route) > 1 else route[0]
                if reply is None:
                    assert callable(route)
                    reply = route(seen)
                body = reply.body
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(reply.status)
                ctype = (
                    "application/octet-stream" if isinstance(body, bytes) else "application/json"
                )
                self.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
                for key, value in reply.headers.items():
                    if key != "Content-Type":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests_to(self, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path_prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ScriptedApi, ScriptedApi]]:
    api, storage = ScriptedApi(), ScriptedApi()
    yield api, storage
    api.close()
    storage.close()


@pytest.fixture
def api(servers: tuple[ScriptedApi, ScriptedApi]) -> ScriptedApi:
    servers[0].routes.clear()
    servers[0].seen.clear()
    return servers[0]


@pytest.fixture
def storage(servers: tuple[ScriptedApi, ScriptedApi]) -> ScriptedApi:
    """A second origin (another port), like a pre-signed object-storage URL."""
    servers[1].routes.clear()
    servers[1].seen.clear()
    return servers[1]


def config(api: ScriptedApi, **overrides: Any) -> dict[str, Any]:
    return {
        "submit_url": f"{api.url}/v1/jobs",
        "status_url": "/v1/jobs/{job_id}",
        "job_id": ["job", "id"],
        "result": ["output", "url"],
        "poll_interval_s": 0.02,
        "timeout_s": 10,
        **overrides,
    }


def request(cfg: dict[str, Any], fmt: str = "png", image: bytes | None = None) -> GenerationRequest:
    return GenerationRequest(
        fmt=fmt, prompt="a red cat", seed=42, config=cfg, conditioning_image=image
    )


def script_job(api: ScriptedApi, fmt: str = "png", data: bytes | None = None) -> None:
    api.routes[("POST", "/v1/jobs")] = [Reply(201, {"job": {"id": "j 1"}, "status": "queued"})]
    api.routes[("GET", "/v1/jobs/j%201")] = [
        Reply(200, {"status": "running"}),
        Reply(200, {"status": "SUCCEEDED", "output": {"url": f"/files/out.{fmt}"}}),
    ]
    api.routes[("GET", f"/files/out.{fmt}")] = [Reply(200, data or sample(fmt))]


# -- success -----------------------------------------------------------------------------------
def test_it_submits_polls_and_downloads_a_valid_file(api: ScriptedApi) -> None:
    script_job(api)
    out = HttpBackend().generate(request(config(api), image=b"\x89PNG fake"))
    assert (out.extension, out.content_type, out.media_type) == ("png", "image/png", "image")
    validate(out.data, "png")
    submit = api.requests_to("/v1/jobs")[0]
    assert submit.method == "POST"
    assert submit.body == {
        "prompt": "a red cat",
        "seed": 42,
        "image": base64.b64encode(b"\x89PNG fake").decode(),
    }
    assert [s.path for s in api.seen] == [
        "/v1/jobs",
        "/v1/jobs/j%201",
        "/v1/jobs/j%201",
        "/files/out.png",
    ]


def test_it_renders_the_body_template_and_omits_a_missing_image(api: ScriptedApi) -> None:
    script_job(api, "glb")
    body = {"input": {"text": "3D model of {prompt}", "seed": "{seed}", "image": "{image}"}}
    out = HttpBackend().generate(request(config(api, body=body), "glb"))
    validate(out.data, "glb")
    assert api.seen[0].body == {"input": {"text": "3D model of a red cat", "seed": 42}}


def test_it_sends_secrets_from_env_only_to_the_api_origin(
    api: ScriptedApi, storage: ScriptedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARENA_TEST_API_KEY", "s3cret")
    monkeypatch.setenv("ARENA_TEST_VENDOR", "v3ndor")
    api.routes[("POST", "/v1/jobs")] = [Reply(200, {"job": {"id": "7"}})]
    api.routes[("GET", "/v1/jobs/7")] = [
        Reply(200, {"status": "done", "output": {"url": f"{storage.url}/bucket/x.png?sig=abc"}})
    ]
    storage.routes[("GET", "/bucket/x.png?sig=abc")] = [Reply(200, sample("png"))]
    cfg = config(
        api,
        auth_env="ARENA_TEST_API_KEY",
        headers={"X-Model": "v2"},
        headers_env={"X-Vendor-Key": "ARENA_TEST_VENDOR"},
    )
    HttpBackend().generate(request(cfg))
    for seen in api.seen:
        assert seen.headers["authorization"] == "Bearer s3cret"
        assert seen.headers["x-vendor-key"] == "v3ndor"
        assert seen.headers["x-model"] == "v2"
    [download] = storage.seen
    assert "authorization" not in download.headers
    assert "x-vendor-key" not in download.headers


def test_a_redirect_to_another_host_does_not_carry_the_secrets(
    api: ScriptedApi, storage: ScriptedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARENA_TEST_API_KEY", "s3cret")
    monkeypatch.setenv("ARENA_TEST_VENDOR", "v3ndor")
    api.routes[("POST", "/v1/jobs")] = [Reply(200, {"job": {"id": "8"}})]
    # The API's own status URL redirects to another host (a CDN, an attacker's server).
    api.routes[("GET", "/v1/jobs/8")] = [
        Reply(302, b"", headers={"Location": f"{storage.url}/status/8"})
    ]
    storage.routes[("GET", "/status/8")] = [
        Reply(200, {"status": "done", "output": {"url": f"{storage.url}/bucket/y.png"}})
    ]
    storage.routes[("GET", "/bucket/y.png")] = [Reply(200, sample("png"))]
    cfg = config(
        api, auth_env="ARENA_TEST_API_KEY", headers_env={"X-Vendor-Key": "ARENA_TEST_VENDOR"}
    )

    HttpBackend().generate(request(cfg))

    redirected = storage.requests_to("/status/8")
    assert redirected, "the redirect was followed"
    for seen in storage.seen:
        assert "authorization" not in seen.headers
        assert "x-vendor-key" not in seen.headers


def test_it_uses_a_job_url_and_a_synchronous_data_url(api: ScriptedApi) -> None:
    api.routes[("POST", "/v1/jobs")] = [Reply(200, {"job": {"id": f"{api.url}/q/abc"}})]
    data_url = "data:image/webp;base64," + base64.b64encode(sample("webp")).decode()
    api.routes[("GET", "/q/abc")] = [Reply(200, {"status": "done", "output": {"url": data_url}})]
    out = HttpBackend().generate(request(config(api, status_url="{job_id}"), "webp"))
    assert out.extension == "webp"

    api.routes[("POST", "/v1/sync")] = [Reply(200, {"result": data_url})]
    out = HttpBackend().generate(request({"submit_url": f"{api.url}/v1/sync"}, "webp"))
    assert out.data == sample("webp")


def test_it_tolerates_a_transient_error_while_polling(api: ScriptedApi) -> None:
    script_job(api)
    api.routes[("GET", "/v1/jobs/j%201")] = [
        Reply(502, {"error": "bad gateway"}),
        Reply(200, {"status": "succeeded", "output": {"url": "/files/out.png"}}),
    ]
    HttpBackend().generate(request(config(api)))


# -- failures ----------------------------------------------------------------------------------
def test_it_raises_backend_error_when_the_job_fails(api: ScriptedApi) -> None:
    script_job(api)
    api.routes[("GET", "/v1/jobs/j%201")] = [
        Reply(200, {"status": "failed", "detail": {"message": "NSFW filter"}})
    ]
    with pytest.raises(BackendError, match="job j 1 failed: 'NSFW filter'") as info:
        HttpBackend().generate(request(config(api, error_key=["detail", "message"])))
    assert not isinstance(info.value, TransientBackendError)


def test_it_raises_transient_on_503_and_succeeds_on_the_next_call(api: ScriptedApi) -> None:
    script_job(api)
    api.routes[("POST", "/v1/jobs")] = [
        Reply(503, {"error": "overloaded"}),
        Reply(201, {"job": {"id": "j 1"}}),
    ]
    backend = HttpBackend()
    with pytest.raises(TransientBackendError, match="HTTP 503"):
        backend.generate(request(config(api)))
    validate(backend.generate(request(config(api))).data, "png")


@pytest.mark.parametrize("retry_after", ["7", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_it_raises_transient_with_retry_after_on_429(api: ScriptedApi, retry_after: str) -> None:
    api.routes[("POST", "/v1/jobs")] = [
        Reply(429, {"error": "slow down"}, {"Retry-After": retry_after})
    ]
    with pytest.raises(RemoteTransientError, match="HTTP 429") as info:
        HttpBackend().generate(request(config(api)))
    assert info.value.status == 429
    assert info.value.retry_after_s is not None
    assert info.value.retry_after_s == 7 if retry_after == "7" else info.value.retry_after_s > 1e6


def test_it_raises_backend_error_on_a_4xx(api: ScriptedApi) -> None:
    api.routes[("POST", "/v1/jobs")] = [Reply(422, {"error": "prompt too long"})]
    with pytest.raises(BackendError, match="HTTP 422") as info:
        HttpBackend().generate(request(config(api)))
    assert not isinstance(info.value, TransientBackendError)


def test_it_raises_backend_error_on_the_wrong_content_type(api: ScriptedApi) -> None:
    script_job(api, "glb", data=sample("png"))
    with pytest.raises(BackendError, match="expected glb, got png"):
        HttpBackend().generate(request(config(api), "glb"))
    script_job(api, "png", data=b"<html><body>Internal error</body></html>")
    with pytest.raises(BackendError, match="looks like text"):
        HttpBackend().generate(request(config(api)))


def test_it_raises_backend_error_on_a_malformed_answer(api: ScriptedApi) -> None:
    api.routes[("POST", "/v1/jobs")] = [Reply(200, {"no": "id"})]
    with pytest.raises(BackendError, match="no job id"):
        HttpBackend().generate(request(config(api)))
    api.routes[("POST", "/v1/jobs")] = [Reply(200, b"<html>oops</html>")]
    with pytest.raises(BackendError, match="not JSON"):
        HttpBackend().generate(request(config(api)))


def test_it_raises_transient_quickly_when_polling_times_out(api: ScriptedApi) -> None:
    script_job(api)
    api.routes[("GET", "/v1/jobs/j%201")] = [Reply(200, {"status": "running"})]
    started = time.monotonic()
    with pytest.raises(TransientBackendError, match=r"not done within 3 s"):
        HttpBackend().generate(request(config(api, timeout_s=3)))
    assert time.monotonic() - started < 8


def test_a_status_request_cut_off_by_the_deadline_reports_the_job_not_done(
    api: ScriptedApi,
) -> None:
    script_job(api)

    def slow_status(seen: Seen) -> Reply:
        time.sleep(6.0)  # longer than the whole job may take: the request itself times out
        return Reply(200, {"status": "running"})

    api.routes[("GET", "/v1/jobs/j%201")] = slow_status
    # 4 s leaves the submit room on a loaded CI machine (1.5 s once ran out before it answered).
    with pytest.raises(TransientBackendError) as raised:
        HttpBackend().generate(request(config(api, timeout_s=4)))

    assert re.search(
        r"not done within 4 s .*the last status request: .*timed out", str(raised.value)
    )


def test_it_raises_transient_when_the_api_is_unreachable(api: ScriptedApi) -> None:
    cfg = config(api, submit_url="http://127.0.0.1:9/v1/jobs")
    with pytest.raises(TransientBackendError, match="submit"):
        HttpBackend().generate(request(cfg))


def test_it_raises_config_error_when_the_key_variable_is_unset(
    api: ScriptedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARENA_UNSET_KEY", raising=False)
    with pytest.raises(BackendConfigError, match="ARENA_UNSET_KEY"):
        HttpBackend().generate(request(config(api, auth_env="ARENA_UNSET_KEY")))
    assert api.seen == []


# -- configuration -----------------------------------------------------------------------------
OK = {"submit_url": "https://api.example.com/v1/jobs"}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({}, "'submit_url' is required"),
        (
            {"submit_url": "file:///etc/passwd"},
            r"'submit_url' must be an http\(s\) URL, got 'file:",
        ),
        ({**OK, "body": {"prompt": "{promt}"}}, r"unknown placeholder \{promt\}"),
        ({**OK, "body": "{prompt}"}, "'body' must be"),
        ({**OK, "headers": {"Authorization": "Bearer abc"}}, "looks like a secret"),
        ({**OK, "headers": {"X-Api-Key": "abc"}}, "looks like a secret"),
        ({**OK, "api_key": "abc"}, "'api_key' looks like an inline secret"),
        ({**OK, "auth_env": "sk-abcdef"}, "NAME of an environment variable"),
        ({**OK, "headers_env": {"X-Key": "lower"}}, "NAME of an environment variable"),
        ({**OK, "status_url": "https://x/jobs"}, "must contain {job_id}"),
        ({**OK, "status_url": "https://x/{job_id}/{prompt}"}, "no other placeholder"),
        ({**OK, "job_id": True}, "'job_id' must be a key path"),
        ({**OK, "done_values": []}, "'done_values' must be a non-empty list"),
        ({**OK, "done_values": ["x"], "failed_values": ["X"]}, "share x"),
        ({**OK, "poll_interval_s": 0}, "'poll_interval_s' must be"),
        ({**OK, "timeout_s": 99999}, "'timeout_s' must be"),
        ({**OK, "method": "PUT"}, "unknown option"),
    ],
)
def test_it_rejects_bad_configs(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendConfigError, match=message):
        HttpBackend().check_config(cfg, ["png"])


def test_it_accepts_a_full_config() -> None:
    HttpBackend().check_config(
        {
            "submit_url": "https://api.example.com/v1/jobs",
            "body": {"input": {"prompt": "{prompt}", "seed": "{seed}", "image": "{image}"}},
            "headers": {"X-Model": "v2"},
            "auth_env": "API_KEY",
            "auth_scheme": "Token",
            "headers_env": {"X-Org": "ORG_ID"},
            "job_id": "id",
            "status_url": "https://api.example.com/v1/jobs/{job_id}",
            "status_key": ["state"],
            "done_values": ["succeeded", True],
            "failed_values": ["failed"],
            "error_key": ["error", "message"],
            "result": ["output", 0],
            "poll_interval_s": 1.5,
            "timeout_s": 900,
        },
        ["png", "mp4", "glb"],
    )
