"""The aggregator: a vote only queues itself; draining applies it, exactly as a replay would.

Here the drain requests of votes are only recorded (``drain_later``), as the Celery sender
leaves them to a worker; each test drains when it wants to. Compared with an independent replay
of the vote log (``ranking``'s own Elo and Weng-Lin steps, in vote order).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import ranking
from arena import localcache
from arena.leaderboards import (
    BETA,
    leaderboard_rebuild,
    matchmaker_beliefs_refresh,
    tallies_drain,
    tallies_drain_requested,
    tally_drain_request,
    vote_exclude,
    votes_restore,
)
from arena.models import (
    Arena,
    ArenaTally,
    ModelRating,
    PendingVote,
    Vote,
    VoteExclusion,
    Voter,
    VoterFlag,
)
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make
from tests.arena.test_leaderboards import (
    _best_name_wins,
    _cast,
    _pairwise_first_wins,
    assert_pairs_match_the_log,
    counted_weight,
    weighted_digest,
)
from tests.factories import VoterFactory, ready_arena


@pytest.fixture(autouse=True)
def _drains_left_to_the_test(requested_drains: list[int]) -> None:
    """Drains run when a test calls them."""


def _cast_mixed(arena: Arena, voter: Voter, n: int, seed: int) -> list[Vote]:
    rng = random.Random(seed)
    votes = []
    for i in range(n):
        mode = ("rank_k", "best_of_k", "pairwise")[i % 3]
        pick = _best_name_wins if mode == "rank_k" else _pairwise_first_wins
        votes.append(_cast(arena, voter, mode, rng, pick))
    return votes


def _replayed_ratings(arena: Arena) -> dict[int, tuple[float, float, float, int]]:
    """(elo, mu, sigma, votes) per model from the counted votes in id order, independently."""
    players = [
        str(pk) for pk in arena.generative_models.order_by("pk").values_list("pk", flat=True)
    ]
    elo = ranking.EloRater(players, k_factor=16.0)
    mu = {p: 25.0 for p in players}
    sigma = {p: 25.0 / 3.0 for p in players}
    seen = dict.fromkeys(players, 0)
    for vote in Vote.objects.filter(arena=arena, exclusion__isnull=True).order_by("pk"):
        groups = tuple(tuple(str(m) for m in group) for group in vote.ranking)
        vote_ranking = ranking.Ranking(groups, partial=vote.is_partial and len(groups) > 1)
        weight = counted_weight(vote)
        elo.record(vote_ranking, weight)
        shown = list(vote_ranking.players)
        rank_of = {p: gi for gi, group in enumerate(groups) for p in group}
        old_mu, old_sigma = np.array([mu[p] for p in shown]), np.array([sigma[p] for p in shown])
        new_mu, new_sigma = ranking.weng_lin_update(
            old_mu,
            old_sigma,
            [rank_of[p] for p in shown],
            partial=vote_ranking.partial,
            beta=BETA,
        )
        # A vote at weight w takes the update w of the way (ranking.weighted_step, by hand).
        new_mu = old_mu + weight * (new_mu - old_mu)
        new_sigma = np.sqrt(old_sigma**2 - weight * (old_sigma**2 - new_sigma**2))
        for i, p in enumerate(shown):
            mu[p], sigma[p] = float(new_mu[i]), float(new_sigma[i])
            seen[p] += 1
    return {
        int(p): (float(elo.ratings[i]), mu[p], sigma[p], seen[p]) for i, p in enumerate(players)
    }


def _stored_ratings(arena: Arena) -> dict[int, tuple[float, float, float, int]]:
    return {
        row.model_id: (row.elo, row.mu, row.sigma, row.votes)
        for row in ModelRating.objects.filter(arena=arena)
    }


def assert_tallies_equal_a_replay(arena: Arena) -> None:
    tally = ArenaTally.objects.get(arena=arena)
    counted = list(Vote.objects.filter(arena=arena, exclusion__isnull=True))
    assert not PendingVote.objects.filter(arena=arena).exists()
    assert tally.votes == len(counted)
    assert tally.digest == weighted_digest(counted)
    assert_pairs_match_the_log(arena)
    stored, replayed = _stored_ratings(arena), _replayed_ratings(arena)
    for model_id, expected in replayed.items():
        if expected[3] == 0:
            continue  # never shown in a counted vote
        assert stored[model_id] == pytest.approx(expected), model_id
    assert not tally.ratings_stale


@pytest.mark.django_db
def test_a_vote_is_only_queued_until_the_aggregator_drains_its_arena(
    requested_drains: list[int],
) -> None:
    arena = ready_arena(models=4)
    votes = _cast_mixed(arena, VoterFactory.create(), 6, seed=1)

    assert ArenaTally.objects.get(arena=arena).votes == 0
    assert sorted(PendingVote.objects.values_list("vote_id", flat=True)) == [v.pk for v in votes]
    assert requested_drains == [arena.pk] * 6  # the debounce is off in tests

    result = tallies_drain(arena_id=arena.pk)

    assert (result.counted, result.excluded, result.replayed) == (6, 0, 0)
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_draining_in_several_batches_equals_draining_at_once() -> None:
    arena = ready_arena(models=4)
    _cast_mixed(arena, VoterFactory.create(), 11, seed=2)

    result = tallies_drain(arena_id=arena.pk, batch=3)

    assert result.counted == 11
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_a_vote_committed_after_a_later_one_was_applied_still_ends_in_vote_order() -> None:
    arena = ready_arena(models=4)
    votes = _cast_mixed(arena, VoterFactory.create(), 9, seed=3)
    # Vote 4 commits late: the aggregator drains the others first.
    PendingVote.objects.filter(vote=votes[3]).delete()
    tallies_drain(arena_id=arena.pk)
    PendingVote.objects.create(vote=votes[3], arena=arena)

    result = tallies_drain(arena_id=arena.pk)

    assert result.counted == 1
    assert result.replayed == 9  # the ratings went back into vote order
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_a_pending_vote_of_an_excluded_voter_is_kept_out_when_drained() -> None:
    arena = ready_arena(models=4)
    honest, bot = VoterFactory.create(), VoterFactory.create()
    _cast_mixed(arena, honest, 3, seed=4)
    bot_votes = _cast_mixed(arena, bot, 3, seed=5)
    VoterFlag.objects.create(
        arena=arena, voter=bot, verdict="excluded", reasons=["speed"], scanned_at=timezone.now()
    )

    result = tallies_drain(arena_id=arena.pk)

    assert (result.counted, result.excluded) == (3, 3)
    exclusions = VoteExclusion.objects.filter(vote__in=bot_votes)
    assert [e.reasons for e in exclusions] == [["speed"]] * 3
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_excluding_a_pending_vote_takes_it_out_of_the_queue_not_the_tallies() -> None:
    arena = ready_arena(models=4)
    votes = _cast_mixed(arena, VoterFactory.create(), 4, seed=6)
    tallies_drain(arena_id=arena.pk)
    late = _cast_mixed(arena, VoterFactory.create(), 2, seed=7)
    before = ArenaTally.objects.get(arena=arena)

    assert vote_exclude(vote=late[0], reason="bot") is True
    assert vote_exclude(vote=votes[0], reason="bot") is True

    after = ArenaTally.objects.get(arena=arena)
    assert after.votes == before.votes - 1  # only the tallied vote came off the tallies
    assert not PendingVote.objects.filter(vote=late[0]).exists()
    tallies_drain(arena_id=arena.pk)  # applies late[1] and replays the ratings
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_a_rebuild_drains_pending_votes_first() -> None:
    arena = ready_arena(models=4)
    _cast_mixed(arena, VoterFactory.create(), 5, seed=8)

    snapshots = leaderboard_rebuild(arena=arena).snapshots

    assert [s.votes for s in snapshots] == [5, 5, 5]
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_a_drain_request_waits_for_the_one_already_sent(
    settings: Any, requested_drains: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TALLY_DRAIN_DEBOUNCE_S = 60
    arena = ready_arena(models=2)

    sent = [tally_drain_request(arena_id=arena.pk) for _ in range(3)]
    cache.clear()  # the window closes: its key expires...
    wall_clock_moves(monkeypatch, by_s=60)  # ...and this process's memory of it too
    sent.append(tally_drain_request(arena_id=arena.pk))

    assert sent == [True, False, False, True]
    assert requested_drains == [arena.pk, arena.pk]


def wall_clock_moves(monkeypatch: pytest.MonkeyPatch, *, by_s: float) -> None:
    """``time.time()`` as the drain requests and the local cache read it, ``by_s`` later."""
    import time

    from arena import leaderboards

    later = time.time() + by_s
    clock = type("Clock", (), {"time": staticmethod(lambda: later), "monotonic": time.monotonic})
    monkeypatch.setattr(leaderboards, "time", clock)
    monkeypatch.setattr(localcache, "time", clock)


@pytest.mark.django_db
def test_a_process_that_knows_a_drain_is_waiting_asks_the_cache_no_more_in_its_window(
    settings: Any, requested_drains: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TALLY_DRAIN_DEBOUNCE_S = 8
    arena = ready_arena(models=2)
    calls: list[str] = []

    def counted(name: str) -> Any:
        real = getattr(cache, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("add", "get"):
        monkeypatch.setattr(cache, name, counted(name))

    first = [tally_drain_request(arena_id=arena.pk) for _ in range(5)]
    assert (first, calls) == ([True, False, False, False, False], ["add"])

    localcache.clear()  # another web process: it learns from the cache when the drain was sent
    second = [tally_drain_request(arena_id=arena.pk) for _ in range(5)]
    assert second == [False] * 5 and calls == ["add", "add", "get"]

    wall_clock_moves(monkeypatch, by_s=6.5)  # past three quarters of the window: ask again
    assert tally_drain_request(arena_id=arena.pk) is False  # the key is still there
    assert calls == ["add", "add", "get", "add", "get"]
    assert requested_drains == [arena.pk]


@pytest.mark.django_db
def test_a_broken_sender_does_not_fail_the_vote(settings: Any) -> None:
    settings.TALLY_DRAIN_SENDER = "tests.arena.test_aggregator.no_such_sender"
    arena = ready_arena(models=2)

    vote = _cast(arena, VoterFactory.create(), "pairwise", random.Random(1), _pairwise_first_wins)

    assert PendingVote.objects.filter(vote=vote).exists()  # beat's drain_all counts it later


def _pairtally_reads(queries: Sequence[dict[str, Any]]) -> int:
    return sum('"arena_pairtally"' in q["sql"] for q in queries)


@pytest.mark.django_db
def test_battles_read_the_matchmakers_beliefs_from_the_cache_the_aggregator_fills() -> None:
    arena = ready_arena(models=6)
    _cast_mixed(arena, VoterFactory.create(), 6, seed=9)
    tallies_drain_requested(arena_id=arena.pk)  # the worker's turn: drain, then refit
    voter = VoterFactory.create()

    with CaptureQueriesContext(connection) as warm:
        battle_create(arena=arena, voter=voter, mode="pairwise")
    cache.clear()
    localcache.clear()  # as in a process whose copy has expired
    with CaptureQueriesContext(connection) as cold:
        battle_create(arena=arena, voter=voter, mode="pairwise")
    with CaptureQueriesContext(connection) as again:
        battle_create(arena=arena, voter=voter, mode="pairwise")

    assert _pairtally_reads(warm.captured_queries) == 0
    assert _pairtally_reads(cold.captured_queries) == 1  # an empty cache: one fit, then stored
    assert _pairtally_reads(again.captured_queries) == 0


@pytest.mark.django_db
def test_cached_beliefs_are_the_fit_of_the_pair_counts() -> None:
    arena = ready_arena(models=4)
    _cast_mixed(arena, VoterFactory.create(), 12, seed=10)
    tallies_drain(arena_id=arena.pk)

    beliefs = matchmaker_beliefs_refresh(arena_id=arena.pk)

    players = [
        str(pk) for pk in arena.generative_models.order_by("pk").values_list("pk", flat=True)
    ]
    rater = ranking.BayesianRater(players)
    for vote in Vote.objects.filter(arena=arena).order_by("pk"):
        groups = tuple(tuple(str(m) for m in g) for g in vote.ranking)
        rater.record(
            ranking.Ranking(groups, partial=vote.is_partial and len(groups) > 1),
            counted_weight(vote),
        )
    mu, sd = beliefs.skills()
    expected_mu, expected_sd = rater.skills()
    assert beliefs.players == players
    assert mu == pytest.approx(expected_mu, abs=1e-6)
    assert sd == pytest.approx(expected_sd, abs=1e-6)


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_and_drains_end_exactly_at_a_replay(settings: Any) -> None:
    """Votes commit while other threads drain (the production path: on commit, every time),
    so on PostgreSQL some commit after a later vote was applied."""
    settings.TALLY_DRAIN_SENDER = "arena.leaderboards.tallies_drain_requested"
    settings.TALLY_DRAIN_ON_COMMIT = True
    arena = ready_arena(models=5, k_values=[3])
    voters = VoterFactory.create_batch(6)
    errors: list[Exception] = []
    barrier = threading.Barrier(len(voters))

    def vote_many(voter: Voter, seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for i in range(6):
                mode = ("pairwise", "rank_k")[i % 2]
                battle = battle_create(arena=arena, voter=voter, mode=mode, rng=rng)
                token = battle_token_make(
                    battle_public_id=str(battle.public_id), nonce=battle.nonce
                )
                ballot: dict[str, Any] = (
                    {"choice": "AB"[rng.randrange(2)]}
                    if mode == "pairwise"
                    else {"ranks": {label: rng.randint(1, 3) for label in "ABC"[: battle.k]}}
                )
                vote_record(
                    battle_public_id=str(battle.public_id), token=token, voter=voter, **ballot
                )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=vote_many, args=(voter, seed)) for seed, voter in enumerate(voters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tallies_drain(arena_id=arena.pk)  # whatever a debounced request left

    assert errors == []
    assert Vote.objects.filter(arena=arena).count() == 36
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_a_late_vote_after_a_restore_still_ends_in_vote_order() -> None:
    arena = ready_arena(models=4)
    votes = _cast_mixed(arena, VoterFactory.create(), 5, seed=11)
    late, restored = votes[3], votes[4]  # applied_through stays below the late vote
    PendingVote.objects.filter(vote=late).delete()  # still uncommitted, as it were
    vote_exclude(vote=restored, reason="bot")  # excluded while pending
    tallies_drain(arena_id=arena.pk)
    votes_restore(arena_id=arena.pk, votes=[restored])
    tallies_drain(arena_id=arena.pk)  # replays the ratings with the restored vote in them
    PendingVote.objects.create(vote=late, arena=arena)  # the late vote commits

    result = tallies_drain(arena_id=arena.pk)

    assert result.counted == 1 and result.replayed == 5
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_an_exclusion_drops_the_cached_beliefs_and_the_next_drain_refits_them() -> None:
    arena = ready_arena(models=4)
    votes = _cast_mixed(arena, VoterFactory.create(), 12, seed=12)
    tallies_drain_requested(arena_id=arena.pk)
    before = matchmaker_beliefs_refresh(arena_id=arena.pk).skills()[0]

    vote_exclude(vote=votes[0], reason="bot")
    assert cache.get(f"arena:beliefs:{arena.pk}") is None
    tallies_drain_requested(arena_id=arena.pk)

    after = cache.get(f"arena:beliefs:{arena.pk}")
    assert after is not None
    assert not np.allclose(after["mu"], before)


@pytest.mark.django_db
def test_one_failing_arena_does_not_hold_up_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    from arena import leaderboards

    first, second = ready_arena(models=2), ready_arena(models=2)
    _cast(first, VoterFactory.create(), "pairwise", random.Random(1), _pairwise_first_wins)
    _cast(second, VoterFactory.create(), "pairwise", random.Random(2), _pairwise_first_wins)
    real = leaderboards.tallies_drain_requested

    def failing_first(*, arena_id: int) -> Any:
        if arena_id == first.pk:
            raise RuntimeError("boom")
        return real(arena_id=arena_id)

    monkeypatch.setattr(leaderboards, "tallies_drain_requested", failing_first)

    results = leaderboards.tallies_drain_all()

    assert set(results) == {second.pk}
    assert ArenaTally.objects.get(arena=second).votes == 1
    assert PendingVote.objects.filter(arena=first).count() == 1  # left for the next run


def _age(vote: Vote, seconds: float) -> None:
    """Make ``vote`` look ``seconds`` old (votes are append-only: raw SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE arena_vote SET created_at = %s WHERE id = %s",
            [timezone.now() - timedelta(seconds=seconds), vote.pk],
        )


@pytest.mark.django_db
def test_a_drain_leaves_votes_that_are_still_settling_and_asks_again(
    settings: Any, requested_drains: list[int]
) -> None:
    settings.TALLY_SETTLE_S = 0.5
    arena = ready_arena(models=4)
    votes = _cast_mixed(arena, VoterFactory.create(), 5, seed=13)
    for vote in votes[:2]:
        _age(vote, 5)
    _age(votes[3], 5)  # old, but after the young votes[2]: it waits too, to keep vote order
    requested_drains.clear()

    result = tallies_drain_requested(arena_id=arena.pk)

    assert (result.counted, result.settling) == (2, True)
    assert sorted(PendingVote.objects.values_list("vote_id", flat=True)) == [
        v.pk for v in votes[2:]
    ]
    assert requested_drains == [arena.pk]  # the drain asks for another
    for vote in votes[2:]:
        _age(vote, 5)
    again = tallies_drain_requested(arena_id=arena.pk)
    assert (again.counted, again.settling, again.replayed) == (3, False, 0)
    assert_tallies_equal_a_replay(arena)


@pytest.mark.django_db
def test_with_the_cache_down_every_vote_asks_for_a_drain(
    monkeypatch: pytest.MonkeyPatch, requested_drains: list[int]
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    def down(*args: Any, **kwargs: Any) -> bool:
        raise RedisConnectionError("down")

    monkeypatch.setattr(cache, "add", down)
    arena = ready_arena(models=2)

    assert [tally_drain_request(arena_id=arena.pk) for _ in range(2)] == [True, True]
    assert requested_drains == [arena.pk, arena.pk]
