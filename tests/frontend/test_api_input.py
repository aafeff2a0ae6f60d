"""Hostile and sloppy input: a clear JSON error with a 4xx status, and nothing stored.

Control characters in paths, queries and bodies; a bad ``k`` or mode; bodies that are not JSON;
errors the URL resolver, Django or a crash would answer as HTML; and no voter row left behind by
a request that failed.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from arena import selectors
from arena.models import Battle, BattleSlot, Vote, Voter
from tests.factories import ArenaFactory, ready_arena

pytestmark = pytest.mark.django_db


def _stored() -> tuple[int, int, int, int]:
    return (
        Battle.objects.count(),
        BattleSlot.objects.count(),
        Vote.objects.count(),
        Voter.objects.count(),
    )


def _assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "code", "detail"}
    assert isinstance(body["error"], str) and body["error"]
    return body


# --- control characters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/arenas/%00/leaderboard",
        "/api/v1/arenas/a%00b/models/x",
        "/api/v1/battles/%01/vote",
    ],
)
def test_a_control_character_in_an_api_path_is_not_found(client: Client, path: str) -> None:
    _assert_json_error(client.get(path), 404)


def test_a_control_character_in_a_page_path_is_not_found(client: Client) -> None:
    assert client.get("/arena/%00/").status_code == 404
    assert client.get("/arena/a%7Fb/leaderboard/").status_code == 404


def test_a_control_character_in_a_query_is_a_bad_request(client: Client) -> None:
    arena = ready_arena(models=2)

    body = _assert_json_error(
        client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?method=%00"), 400
    )
    assert "method" in body["error"]
    assert client.get(f"/arena/{arena.slug}/leaderboard/?method=b%00").status_code == 400


def test_a_control_character_in_a_json_body_is_refused_and_nothing_is_stored(
    client: Client,
) -> None:
    arena = ready_arena(models=2)
    before = _stored()

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles",
        {"mode": "pairwise", "models": ["x\u0000y", "z"]},
        content_type="application/json",
    )

    body = _assert_json_error(response, 400)
    assert body["detail"] == {"field": "models[0]"}
    assert _stored() == before


@pytest.mark.parametrize("escaped", ["\\u0000", "\\b", "\\u001F", "\\u007f"])
def test_every_json_escape_of_a_control_character_is_refused(client: Client, escaped: str) -> None:
    arena = ready_arena(models=2)
    raw = '{"mode": "pairwise", "models": ["a' + escaped + 'b", "c"]}'

    response = client.post(f"/api/v1/arenas/{arena.slug}/battles", raw, "application/json")

    assert _assert_json_error(response, 400)["detail"] == {"field": "models[0]"}


def test_a_control_character_in_a_form_field_is_refused(client: Client) -> None:
    arena = ArenaFactory.create(allow_user_prompts=True)

    response = client.post(f"/arena/{arena.slug}/prompt/", {"prompt": "a cat\x00 on a mat"})

    assert response.status_code == 400
    assert b"control characters" in response.content
    assert Voter.objects.count() == 0


def test_tabs_and_newlines_are_ordinary_text(client: Client) -> None:
    arena = ready_arena(models=2)

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles", {"mode": "pairwise\n"}, "application/json"
    )

    assert (
        _assert_json_error(response, 400)["code"] == "invalid_request"
    )  # a bad mode, not 4xx hygiene
    assert "control" not in response.json()["error"]


# --- k and mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 1, 3, 5, 1e20, 4.0, "4", True, [4]])
def test_a_bad_k_is_a_bad_request_not_a_silent_default(client: Client, k: Any) -> None:
    arena = ready_arena(models=4, k_values=[4])
    before = _stored()

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles", {"mode": "rank_k", "k": k}, "application/json"
    )

    _assert_json_error(response, 400)
    assert _stored() == before


def test_a_k_the_arena_serves_is_served(client: Client) -> None:
    arena = ready_arena(models=4, k_values=[3, 4])

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles", {"mode": "rank_k", "k": 3}, "application/json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["k"] == 3


def test_pairwise_with_a_k_other_than_two_is_refused(client: Client) -> None:
    arena = ready_arena(models=4, k_values=[3, 4])

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles", {"mode": "pairwise", "k": 3}, "application/json"
    )

    body = _assert_json_error(response, 400)
    assert body["detail"] == {"k": 3, "allowed": [2]}


@pytest.mark.parametrize("mode", ["duel", "", "PAIRWISE", 2])
def test_a_bad_mode_is_a_bad_request(client: Client, mode: Any) -> None:
    arena = ready_arena(models=2)
    before = _stored()

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles", {"mode": mode}, "application/json"
    )

    _assert_json_error(response, 400)
    assert _stored() == before


@pytest.mark.parametrize("body", [[None, None], [], "pairwise", {"mode": "pairwise", "x": 1}])
def test_a_battle_body_that_is_not_the_schema_is_refused(client: Client, body: Any) -> None:
    arena = ready_arena(models=2)
    before = _stored()

    response = client.post(f"/api/v1/arenas/{arena.slug}/battles", body, "application/json")

    _assert_json_error(response, 400)
    assert _stored() == before


# --- bodies that are not JSON --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("mode=pairwise", "application/x-www-form-urlencoded"),
        ('<battle mode="pairwise"/>', "application/xml"),
        ('{"mode": "pairwise"}', "text/plain"),
        ("--b\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\npairwise\r\n--b--\r\n",
         "multipart/form-data; boundary=b"),
    ],
    ids=["form", "xml", "text", "multipart"],
)  # fmt: skip
def test_a_body_that_is_not_json_is_unsupported(
    client: Client, content: str, content_type: str
) -> None:
    arena = ready_arena(models=2)
    before = _stored()

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles", content, content_type=content_type
    )

    body = _assert_json_error(response, 415)
    assert "application/json" in body["error"]
    assert _stored() == before


def test_an_empty_body_still_serves_a_default_battle(client: Client) -> None:
    arena = ready_arena(models=2)

    assert client.generic("POST", f"/api/v1/arenas/{arena.slug}/battles").status_code == 201


# --- every API error is JSON ---------------------------------------------------------------


def test_an_unknown_api_url_is_a_json_404(client: Client) -> None:
    _assert_json_error(client.get("/api/v1/no-such-thing"), 404)
    _assert_json_error(client.get("/api/v2/arenas"), 404)


def test_a_wrong_method_is_a_json_405(client: Client) -> None:
    arena = ready_arena(models=2)

    _assert_json_error(client.get(f"/api/v1/arenas/{arena.slug}/battles"), 405)


def test_a_body_over_the_upload_limit_is_a_json_413(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    arena = ready_arena(models=2)

    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles",
        {"mode": "pairwise", "models": ["x" * 2000]},
        "application/json",
    )

    _assert_json_error(response, 413)


def test_a_crash_under_the_api_is_a_json_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "arena_list", crash)
    client = Client(raise_request_exception=False)

    body = _assert_json_error(client.get("/api/v1/arenas"), 500)
    assert "a bug" not in body["error"]  # no internals leak


# --- no voter from a failed request ------------------------------------------------------------


def test_a_failed_request_leaves_no_voter_and_sets_no_cookie(client: Client) -> None:
    arena = ArenaFactory.create()  # no outputs: no battle can be served

    response = client.post(f"/api/v1/arenas/{arena.slug}/battles", {}, "application/json")

    assert response.status_code == 503
    assert Voter.objects.count() == 0
    assert "arena_voter" not in response.cookies


def test_a_failed_vote_by_a_known_voter_keeps_the_voter_and_counts_the_rejection(
    client: Client,
) -> None:
    arena = ready_arena(models=2)
    battle = client.post(f"/api/v1/arenas/{arena.slug}/battles", {}, "application/json").json()

    response = client.post(
        f"/api/v1/battles/{battle['id']}/vote",
        {"token": battle["token"], "choice": "C"},  # a slot this pairwise battle lacks
        "application/json",
    )

    assert response.status_code == 400
    voter = Voter.objects.get()
    assert (voter.rejected_votes, voter.battles_served) == (1, 1)
