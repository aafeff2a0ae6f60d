"""The hot paths make a small, fixed number of queries: serving a battle and recording a vote
cost the same in an arena of 4 or 12 models, and after 0 or 40 votes (the voter is looked up
by its cookie once more per request: one indexed read).

Counting a vote is the aggregator's work, off the request: here the vote's drain request is only
recorded (``drain_later``), as the Celery sender would leave it to a worker.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena.models import Arena, Battle
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _votes_counted_off_the_request(requested_drains: list[int], settings: Any) -> None:
    """Counting is left to the aggregator, off the request; the arena's pool and the beliefs
    are cached per process, as on a server, for longer than any test here takes."""
    settings.ARENA_LOCAL_CACHE_S = 600.0


def _serve(arena: Arena, voter: Any, mode: str) -> tuple[Battle, int]:
    with CaptureQueriesContext(connection) as queries:
        battle = battle_create(arena=arena, voter=voter, mode=mode, rng=random.Random(3))
    return battle, len(queries)


def _vote(battle: Battle, voter: Any) -> int:
    token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
    ballot: dict[str, Any] = (
        {"choice": "A"}
        if battle.mode == "pairwise"
        else {"ranks": {label: i + 1 for i, label in enumerate("ABCD"[: battle.k])}}
    )
    with CaptureQueriesContext(connection) as queries:
        vote_record(battle_public_id=str(battle.public_id), token=token, voter=voter, **ballot)
    # Not counted: the savepoint a vote takes inside a caller's transaction (the test's here;
    # a request has none).
    return sum("SAVEPOINT" not in q["sql"] for q in queries.captured_queries)


def _costs(models: int, votes_before: int, mode: str) -> tuple[int, int]:
    arena = ready_arena(models=models, k_values=[4])
    voter = VoterFactory.create()
    for _ in range(votes_before):
        battle, _ = _serve(arena, voter, mode)
        _vote(battle, voter)
    battle, serve_queries = _serve(arena, voter, mode)
    return serve_queries, _vote(battle, voter)


@pytest.mark.parametrize("mode", ["pairwise", "rank_k"])
def test_serving_and_voting_cost_the_same_whatever_the_arena_size(mode: str) -> None:
    small = _costs(models=4, votes_before=2, mode=mode)
    large = _costs(models=12, votes_before=2, mode=mode)

    assert small == large


@pytest.mark.parametrize("mode", ["pairwise", "rank_k"])
def test_serving_and_voting_cost_the_same_after_many_votes(mode: str) -> None:
    early = _costs(models=4, votes_before=1, mode=mode)
    later = _costs(models=4, votes_before=40, mode=mode)

    assert early == later


@pytest.mark.parametrize("mode", ["pairwise", "rank_k"])
def test_serving_and_voting_stay_within_their_budgets(
    mode: str, requested_drains: list[int]
) -> None:
    serve_queries, vote_queries = _costs(models=8, votes_before=3, mode=mode)

    # A K=4 vote costs what a pairwise one does: the pair tallies are the aggregator's. The
    # arena's ready pool is cached per process (arena.localcache), so serving reads only what
    # the voter has seen revealed.
    if connection.vendor == "postgresql":
        # One statement writes the battle, its slots and the voter's count; a vote reads its
        # battle with the slots, then one statement writes everything (arena.hotpath).
        assert (serve_queries, vote_queries) == (2, 2)
    else:
        # Row by row in a transaction (BEGIN and COMMIT are not captured on SQLite).
        assert serve_queries <= 6
        assert vote_queries <= 8
    assert requested_drains  # the votes asked for a drain


def test_a_vote_costs_the_same_in_every_mode() -> None:
    assert (
        _costs(models=8, votes_before=1, mode="pairwise")[1]
        == _costs(models=8, votes_before=1, mode="rank_k")[1]
    )


@pytest.mark.parametrize("mode", ["pairwise", "rank_k"])
def test_through_the_api_the_voter_is_read_with_what_the_request_needs_next(mode: str) -> None:
    """A request reads its voter by the cookie; on PostgreSQL that same query brings what the
    request reads next (for a battle, the outputs the voter has seen named in the arena; for a
    vote, the battle): a repeat voter's battle and vote cost two queries each, as the services
    alone do."""
    from django.test import Client

    arena = ready_arena(models=8, k_values=[4])
    client = Client()
    client.post(f"/api/v1/arenas/{arena.slug}/battles", {"mode": mode}, "application/json")
    costs = []
    for _ in range(3):  # (the first vote of a process also reads the arenas' metric labels)
        with CaptureQueriesContext(connection) as served:
            answer = client.post(
                f"/api/v1/arenas/{arena.slug}/battles", {"mode": mode}, "application/json"
            )
        battle = answer.json()
        ballot: dict[str, Any] = (
            {"choice": "A"}
            if mode == "pairwise"
            else {"ranks": {slot["label"]: i + 1 for i, slot in enumerate(battle["slots"])}}
        )
        with CaptureQueriesContext(connection) as voted:
            vote = client.post(
                f"/api/v1/battles/{battle['id']}/vote",
                {"token": battle["token"], **ballot},
                "application/json",
            )
        assert (answer.status_code, vote.status_code) == (201, 201)
        costs.append(
            (
                len(served.captured_queries),
                sum("SAVEPOINT" not in q["sql"] for q in voted.captured_queries),
            )
        )

    assert costs[1] == costs[2]
    if connection.vendor == "postgresql":
        assert costs[2] == (2, 2)
