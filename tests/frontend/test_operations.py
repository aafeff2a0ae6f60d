"""What operators run the platform with: probes, metrics, request ids and logs, CSP, lockouts."""

from __future__ import annotations

import json
import logging
import re
import socket
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connections
from django.urls import reverse

from config.observability import JsonFormatter, RequestIdFilter, request_id_var
from frontend import health
from tests.factories import ArenaFactory, ready_arena
from workers.ops import broker_check


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- probes -----------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(client) -> None:
    response = client.get("/healthz")  # no django_db mark: a query would fail the test

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ready_when_database_cache_and_broker_answer(client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


def test_readyz_fails_when_the_database_is_down(client, django_db_blocker) -> None:
    with django_db_blocker.unblock():
        connection = connections["default"]
        saved = dict(connection.settings_dict)
        connection.close()
        if connection.vendor == "postgresql":  # a server that is not there
            connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
        else:  # a database file that cannot be opened
            connection.settings_dict["NAME"] = "/nonexistent/dir/arena.sqlite3"
        try:
            response = client.get("/readyz")
            healthz = client.get("/healthz")
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not ready: database unreachable"
    assert body["checks"]["database"].startswith("default: OperationalError")
    assert body["checks"]["cache"] == body["checks"]["broker"] == "ok"
    assert healthz.status_code == 200  # alive, only not ready


@pytest.mark.django_db
def test_readyz_fails_when_the_cache_loses_what_it_was_given(client, monkeypatch) -> None:
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: None)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == "a value written to the cache did not come back"


@pytest.mark.django_db
def test_readyz_fails_when_the_broker_is_down(client, monkeypatch) -> None:
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    monkeypatch.setitem(health.CHECKS, "broker", lambda: broker_check(timeout_s=1, url=dead))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error"] == "not ready: broker unreachable"
    assert "Error" in response.json()["checks"]["broker"]


def test_the_broker_check_names_what_went_wrong() -> None:
    assert broker_check(timeout_s=1, url=f"redis://127.0.0.1:{_closed_port()}/0") != ""


# --- request ids and logs ---------------------------------------------------------------------


def test_every_response_carries_a_request_id(client) -> None:
    fresh = client.get("/healthz")
    echoed = client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    refused = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})

    assert re.fullmatch(r"[0-9a-f]{32}", fresh["X-Request-ID"])
    assert echoed["X-Request-ID"] == "lb-1234abcd"
    assert refused["X-Request-ID"] != "<script>alert(1)</script>"
    assert re.fullmatch(r"[0-9a-f]{32}", refused["X-Request-ID"])


def _record(message: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("arena.test", logging.WARNING, __file__, 1, message, (), exc_info)


def test_json_logs_carry_the_request_id_and_the_traceback() -> None:
    token = request_id_var.set("req-0123456789")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            record = _record("vote refused", exc_info=sys.exc_info())
        record.arena = "text-to-image"  # an `extra=` field
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "vote refused"
    assert entry["level"] == "WARNING"
    assert entry["request_id"] == "req-0123456789"
    assert entry["arena"] == "text-to-image"
    assert entry["exception"].endswith("ValueError: boom")
    assert "task_id" not in entry  # not in a Celery task


def test_outside_a_request_the_log_has_no_request_id() -> None:
    record = _record("housekeeping")
    RequestIdFilter().filter(record)

    assert "request_id" not in json.loads(JsonFormatter().format(record))


def test_celery_workers_keep_the_logging_configuration() -> None:
    from config.celery import app

    assert app.conf.worker_hijack_root_logger is False


# --- metrics ----------------------------------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _vote_via_api(client, slug: str) -> None:
    battle = client.post(
        f"/api/v1/arenas/{slug}/battles", {"mode": "pairwise"}, content_type="application/json"
    ).json()
    response = client.post(
        f"/api/v1/battles/{battle['id']}/vote",
        {"token": battle["token"], "choice": "A"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_metrics_count_votes_and_read_the_state(client, django_capture_on_commit_callbacks) -> None:
    arena = ready_arena(models=2)
    before = client.get("/metrics").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        _vote_via_api(client, arena.slug)

    after = client.get("/metrics").content.decode()

    votes = _metric(after, "arena_votes_total", arena=arena.slug, mode="pairwise")
    assert votes == (_metric(before, "arena_votes_total", arena=arena.slug) or 0) + 1
    assert _metric(after, "arena_battles_total", arena=arena.slug, mode="pairwise") is not None
    assert _metric(after, "arena_votes_counted", arena=arena.slug) == 1
    assert _metric(after, "arena_generation_outputs", status="ready") is not None
    assert _metric(after, "arena_queue_messages", queue="light") is not None
    assert _metric(after, "arena_http_request_seconds_count", route="/metrics") is not None


@pytest.mark.django_db(transaction=True)
def test_metrics_count_battles_votes_and_requests_stored_outside_a_transaction(client) -> None:
    """On PostgreSQL a battle and a vote are each one statement, a transaction of its own:
    counted at once. Each request counts once in the latency histogram of its route."""
    arena = ready_arena(models=2)
    vote_route = "/api/v1/battles/<battle_id>/vote"
    before = client.get("/metrics").content.decode()

    _vote_via_api(client, arena.slug)
    _vote_via_api(client, arena.slug)
    after = client.get("/metrics").content.decode()

    for name in ("arena_votes_total", "arena_battles_total"):
        was = _metric(before, name, arena=arena.slug, mode="pairwise") or 0
        assert _metric(after, name, arena=arena.slug, mode="pairwise") == was + 2
    served = _metric(before, "arena_http_request_seconds_count", route=vote_route, status="201")
    now = _metric(after, "arena_http_request_seconds_count", route=vote_route, status="201")
    assert now == (served or 0) + 2


def test_metrics_want_the_token_when_one_is_set(client, settings) -> None:
    settings.METRICS_TOKEN = "s3cret-token"

    anonymous = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})

    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json() == {"error": "a valid metrics token is required"}


@pytest.mark.django_db
def test_metrics_with_the_token(client, settings) -> None:
    settings.METRICS_TOKEN = "s3cret-token"

    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_metrics_can_be_turned_off(client, settings) -> None:
    settings.METRICS_ENABLED = False

    assert client.get("/metrics").status_code == 404


# --- security headers, passwords, lockouts ----------------------------------------------------


@pytest.mark.django_db
def test_pages_send_a_content_security_policy_whose_nonce_the_import_map_carries(client) -> None:
    ArenaFactory()
    response = client.get("/")

    policy = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce, policy
    assert f'<script type="importmap" nonce="{nonce.group(1)}">' in response.content.decode()
    assert "script-src 'self' 'nonce-" in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.django_db
def test_json_answers_get_a_policy_that_lets_nothing_load_or_frame_them(client) -> None:
    arena = ArenaFactory()
    for path in ("/api/v1/arenas", f"/api/v1/arenas/{arena.slug}/leaderboard", "/api/v1/nope"):
        response = client.get(path)
        assert response["Content-Type"].startswith("application/json"), path
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    # The API's own HTML page (its interactive docs) keeps the pages' policy.
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "script-src 'self'" in docs["Content-Security-Policy"]


@pytest.mark.django_db
def test_each_response_gets_a_new_nonce(client) -> None:
    ArenaFactory()
    first = re.search(r"'nonce-([^']+)'", client.get("/")["Content-Security-Policy"])
    second = re.search(r"'nonce-([^']+)'", client.get("/")["Content-Security-Policy"])

    assert first and second and first.group(1) != second.group(1)


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2() -> None:
    user = get_user_model().objects.create_user("operator", password="a long passphrase 42")

    assert user.password.startswith("argon2$")
    assert user.check_password("a long passphrase 42")


def _login(client, path: str, username: str, password: str):
    return client.post(path, {"username": username, "password": password})


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_repeated_failed_logins_lock_the_account_for_that_address(client, settings, path) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_superuser("boss", password="the right passphrase 7")

    for _ in range(2):
        assert _login(client, path, "boss", "guess").status_code == 200  # the form, again
    locked = _login(client, path, "boss", "guess")
    still_locked = _login(client, path, "boss", "the right passphrase 7")

    assert locked.status_code == still_locked.status_code == 429
    assert "Too many failed logins" in still_locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not locked out with it.
    get_user_model().objects.create_user("voter", password="another pass 9", is_staff=True)
    assert _login(client, path, "voter", "another pass 9").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_resets_the_failure_count(client, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_user("voter", password="another passphrase 9")

    for _ in range(2):
        _login(client, reverse("frontend:login"), "voter", "wrong")
    assert (
        _login(client, reverse("frontend:login"), "voter", "another passphrase 9").status_code
        == 302
    )
    client.logout()
    for _ in range(2):
        _login(client, reverse("frontend:login"), "voter", "wrong")

    assert (
        _login(client, reverse("frontend:login"), "voter", "another passphrase 9").status_code
        == 302
    )


def test_flash_messages_are_set_up_for_pages_and_not_for_the_api(rf) -> None:
    from django.contrib.sessions.backends.signed_cookies import SessionStore
    from django.http import HttpResponse

    from frontend.middleware import MessageMiddleware

    middleware = MessageMiddleware(lambda request: HttpResponse("ok"))
    page, api = rf.get("/arenas/"), rf.post("/api/v1/battles/x/vote")
    for request in (page, api):
        request.session = SessionStore()
        assert middleware(request).status_code == 200  # type: ignore[union-attr]  # (sync)

    assert hasattr(page, "_messages")
    assert not hasattr(api, "_messages")


@pytest.mark.django_db
def test_a_made_up_method_is_counted_as_other_and_adds_no_series(client) -> None:
    client.generic("BREW", "/healthz")
    client.generic("BREW2", "/healthz")

    metrics = client.get("/metrics").content.decode()

    assert _metric(metrics, "arena_http_request_seconds_count", method="other", route="/healthz")
    assert 'method="BREW' not in metrics
