"""Leaderboard JSON API: methods with intervals, pagination, ETag/Last-Modified, history, records."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from arena.leaderboards import leaderboard_rebuild, leaderboard_rebuild_by_id
from arena.models import Arena, LeaderboardSnapshot
from tests.arena.test_leaderboards import _best_name_wins, _cast
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db


def _voted_arena(votes: int = 6) -> Arena:
    arena = ready_arena(models=4)
    voter, rng = VoterFactory.create(), random.Random(9)
    for _ in range(votes):
        _cast(arena, voter, "rank_k", rng, _best_name_wins)
    return arena


@pytest.mark.parametrize("method", ["bayesian", "bradley_terry", "elo"])
def test_it_serves_every_method_best_first_with_intervals(client: Client, method: str) -> None:
    arena = _voted_arena()

    body = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?method={method}").json()

    assert body["method"] == method and body["votes"] == 6 and body["count"] == 4
    scores = [row["score"] for row in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(row["low"] <= row["score"] <= row["high"] for row in body["results"])
    numbers = [int(row["model"].split()[-1]) for row in body["results"]]
    assert numbers[0] == min(numbers), "the always-preferred model leads"
    assert len(body["vote_set_hash"]) == 32


def test_it_paginates(client: Client) -> None:
    arena = _voted_arena()

    page2 = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?page=2&page_size=3").json()

    assert (page2["count"], page2["page"], len(page2["results"])) == (4, 2, 1)


def test_it_answers_304_to_a_matching_etag_and_changes_it_after_a_vote(client: Client) -> None:
    arena = _voted_arena()
    url = f"/api/v1/arenas/{arena.slug}/leaderboard"
    first = client.get(url)
    assert first["Last-Modified"]

    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    _cast(arena, VoterFactory.create(), "rank_k", random.Random(1), _best_name_wins)
    after = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert after.status_code == 200
    assert after["ETag"] != first["ETag"]
    assert after.json()["votes"] == 7


@pytest.mark.parametrize("query", ["method=glicko", "page=0", "page_size=1000"])
def test_bad_parameters_get_a_json_400(client: Client, query: str) -> None:
    arena = _voted_arena(1)

    response = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?{query}")

    assert response.status_code == 400
    assert response.json()["error"]


def test_history_has_one_entry_per_vote_set(client: Client) -> None:
    arena = _voted_arena(2)
    client.get(f"/api/v1/arenas/{arena.slug}/leaderboard")
    _cast(arena, VoterFactory.create(), "rank_k", random.Random(1), _best_name_wins)
    client.get(f"/api/v1/arenas/{arena.slug}/leaderboard")

    history = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard/history").json()

    assert [h["votes"] for h in history] == [2, 3]
    assert len(history[0]["scores"]) == 4


def test_a_model_record_has_every_method_and_head_to_heads(client: Client) -> None:
    arena = _voted_arena(3)
    model = arena.generative_models.order_by("pk").first()
    assert model is not None

    body = client.get(f"/api/v1/arenas/{arena.slug}/models/{model.slug}").json()

    assert set(body["standings"]) == {"bayesian", "bradley_terry", "elo"}
    assert body["online"]["votes"] == 3
    assert {h["opponent"] for h in body["head_to_head"]} == set(
        arena.generative_models.exclude(pk=model.pk).values_list("slug", flat=True)
    )
    assert client.get(f"/api/v1/arenas/{arena.slug}/models/nope").status_code == 404


def test_a_cache_outage_slows_reads_down_but_never_fails_them(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    arena = _voted_arena()

    def down(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)

    response = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?method=bradley_terry")

    assert response.status_code == 200
    assert response.json()["votes"] == 6


REBUILDS: list[int] = []


def record_rebuild(*, arena_id: int) -> None:
    """Stands in for the Celery task that production sends (``LEADERBOARD_REBUILD_SENDER``)."""
    REBUILDS.append(arena_id)


@pytest.fixture
def queued_rebuilds(settings: Any) -> list[int]:
    settings.LEADERBOARD_REBUILD_SENDER = f"{__name__}.record_rebuild"
    settings.LEADERBOARD_REBUILD_DEBOUNCE_S = 60
    REBUILDS.clear()
    return REBUILDS


def test_a_read_after_new_votes_serves_the_last_snapshot_and_asks_for_one_rebuild(
    client: Client, queued_rebuilds: list[int], django_assert_max_num_queries: Any
) -> None:
    arena = _voted_arena(6)
    leaderboard_rebuild(arena=arena)
    _cast(arena, VoterFactory.create(), "rank_k", random.Random(1), _best_name_wins)
    url = f"/api/v1/arenas/{arena.slug}/leaderboard?method=bradley_terry"
    snapshots = LeaderboardSnapshot.objects.count()

    # The arena; the newest snapshot's id with the digest, read again once a rebuild was asked
    # for; the snapshot itself: no fit.
    with django_assert_max_num_queries(4):
        first = client.get(url).json()
    second = client.get(url).json()

    assert (first["votes"], first["stale"]) == (6, True)
    assert second["stale"] is True
    assert queued_rebuilds == [arena.pk]  # debounced: one request for both reads
    assert LeaderboardSnapshot.objects.count() == snapshots

    leaderboard_rebuild_by_id(arena_id=arena.pk)  # the worker's turn
    fresh = client.get(url).json()

    assert (fresh["votes"], fresh["stale"]) == (7, False)


def test_before_any_snapshot_a_read_serves_an_empty_one_marked_stale(
    client: Client, queued_rebuilds: list[int]
) -> None:
    arena = _voted_arena(2)
    LeaderboardSnapshot.objects.filter(arena=arena).delete()

    body = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard").json()

    assert (body["snapshot_id"], body["stale"], body["results"]) == (None, True, [])
    assert queued_rebuilds == [arena.pk]


def test_the_page_says_when_newer_votes_are_on_their_way(
    client: Client, queued_rebuilds: list[int]
) -> None:
    arena = _voted_arena(6)
    leaderboard_rebuild(arena=arena)
    url = f"/arena/{arena.slug}/leaderboard/"
    assert 'id="lb-stale"' not in client.get(url).content.decode()

    _cast(arena, VoterFactory.create(), "rank_k", random.Random(1), _best_name_wins)

    assert 'id="lb-stale"' in client.get(url).content.decode()


def broken_sender(*, arena_id: int) -> None:
    raise ConnectionError("the broker is down")


def test_a_read_still_answers_when_the_rebuild_cannot_be_asked_for(
    client: Client, settings: Any
) -> None:
    settings.LEADERBOARD_REBUILD_SENDER = f"{__name__}.broken_sender"
    arena = _voted_arena(2)

    response = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard")

    assert response.status_code == 200
    assert response.json()["stale"] is True


def test_the_bayesian_board_says_how_many_votes_each_model_needs_to_settle(
    client: Client,
) -> None:
    arena = _voted_arena(votes=8)

    body = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?method=bayesian").json()
    page = client.get(f"/arena/{arena.slug}/leaderboard/").content.decode()

    rows = body["results"]
    assert all("votes_to_settle" in row and "settle_above" in row for row in rows)
    assert rows[0]["settle_above"] == 0  # nothing above the first
    settle = [row["votes_to_settle"] for row in rows]
    assert all(v is None or v >= 0 for v in settle)
    assert body["top10_votes_to_settle"] == (
        None
        if any(row["settle_above"] is None for row in rows[1:10])
        else max(row["settle_above"] for row in rows[1:10])
    )
    assert 'id="lb-top-settle"' in page and "To settle" in page


def test_only_the_bayesian_board_estimates_votes_to_settle(client: Client) -> None:
    arena = _voted_arena(votes=4)

    body = client.get(f"/api/v1/arenas/{arena.slug}/leaderboard?method=bradley_terry").json()

    assert body["top10_votes_to_settle"] is None
    assert all(row["votes_to_settle"] is None for row in body["results"])


def test_a_cached_leaderboard_read_costs_one_query(
    client: Client, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.ARENA_LOCAL_CACHE_S = 600.0  # the arena's row, as a web process keeps it
    arena = _voted_arena(6)
    leaderboard_rebuild(arena=arena)
    url = f"/api/v1/arenas/{arena.slug}/leaderboard?method=bayesian"
    built = client.get(url).json()

    with django_assert_num_queries(1):  # the newest snapshot's id and the digest, together
        again = client.get(url)

    assert again.status_code == 200
    assert again.json() == built and built["stale"] is False and built["votes"] == 6
