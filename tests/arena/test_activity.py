"""The hourly activity rollup: what the operators' overview reads instead of the vote log."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena.activity import BACKFILL_DAYS, RECOMPUTE_HOURS, activity_rollup
from arena.clock import SimulatedClock, clock_patched
from arena.leaderboards import vote_exclude
from arena.models import Arena, ArenaActivity, ArenaActivitySummary, Vote
from arena.services import battle_create
from tests.arena.test_leaderboards import _cast, _pairwise_first_wins
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db

TEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ELEVEN = TEN + timedelta(hours=1)


def _traffic(arena: Arena) -> list[Vote]:
    """10:xx: three votes by two voters and one abandoned battle; 11:xx: one more vote."""
    alice, bob = VoterFactory.create_batch(2)
    rng = random.Random(1)
    votes = []
    with clock_patched(SimulatedClock(TEN + timedelta(minutes=5))) as clock:
        for voter in (alice, alice, bob):
            votes.append(_cast(arena, voter, "pairwise", rng, _pairwise_first_wins))
            clock.advance(60)
        battle_create(arena=arena, voter=bob, mode="pairwise", rng=rng)
        clock.now = ELEVEN + timedelta(minutes=10)
        votes.append(_cast(arena, alice, "pairwise", rng, _pairwise_first_wins))
    return votes


def _row(arena: Arena, hour: datetime) -> dict[str, int]:
    fields = ("votes", "votes_excluded", "battles_served", "battles_voted", "voters")
    row = ArenaActivity.objects.get(arena=arena, hour=hour)
    return {f: getattr(row, f) for f in fields}


def test_it_counts_each_hours_votes_voters_and_battles() -> None:
    arena = ready_arena(models=3)
    _traffic(arena)

    activity_rollup(now=ELEVEN + timedelta(minutes=30))

    assert _row(arena, TEN) == {
        "votes": 3,
        "votes_excluded": 0,
        "battles_served": 4,
        "battles_voted": 3,
        "voters": 2,
    }
    assert _row(arena, ELEVEN) == {
        "votes": 1,
        "votes_excluded": 0,
        "battles_served": 1,
        "battles_voted": 1,
        "voters": 1,
    }


def test_quiet_hours_get_a_row_of_zeros_back_to_the_backfill() -> None:
    arena = ready_arena(models=3)
    now = ELEVEN + timedelta(minutes=30)

    result = activity_rollup(now=now)

    assert result.start == ELEVEN - timedelta(days=BACKFILL_DAYS)
    assert result.rows == ArenaActivity.objects.filter(arena=arena).count() == 14 * 24 + 1
    assert _row(arena, TEN)["votes"] == 0


def test_active_voters_are_counted_once_across_hours() -> None:
    arena = ready_arena(models=3)
    _traffic(arena)  # alice votes in both hours

    activity_rollup(now=ELEVEN + timedelta(minutes=30))

    assert ArenaActivitySummary.objects.get(arena=arena).voters_24h == 2
    assert _row(arena, TEN)["voters"] + _row(arena, ELEVEN)["voters"] == 3


def test_a_vote_excluded_after_its_hour_is_counted_there_on_the_next_run() -> None:
    arena = ready_arena(models=3)
    first, *_ = _traffic(arena)
    activity_rollup(now=ELEVEN + timedelta(minutes=30))

    vote_exclude(vote=first, reason="a reviewer's decision")
    activity_rollup(now=ELEVEN + timedelta(minutes=31))

    assert _row(arena, TEN)["votes_excluded"] == 1
    assert _row(arena, TEN)["votes"] == 3


def test_rolling_up_again_gives_the_same_rows() -> None:
    arena = ready_arena(models=3)
    _traffic(arena)
    now = ELEVEN + timedelta(minutes=30)
    activity_rollup(now=now)
    before = list(ArenaActivity.objects.order_by("arena", "hour").values())

    again = activity_rollup(now=now)

    assert list(ArenaActivity.objects.order_by("arena", "hour").values()) == before
    assert again.start == ELEVEN - timedelta(hours=RECOMPUTE_HOURS - 1)
    assert ArenaActivity.objects.filter(arena=arena).count() == 14 * 24 + 1


def test_after_a_stop_it_catches_up_from_its_last_run() -> None:
    ready_arena(models=3)
    activity_rollup(now=TEN)

    result = activity_rollup(now=TEN + timedelta(days=4, minutes=5))

    assert result.start == TEN


def test_a_battle_still_generating_is_not_served_yet() -> None:
    arena = ready_arena(models=3)
    with clock_patched(SimulatedClock(TEN + timedelta(minutes=5))):
        battle = battle_create(arena=arena, voter=VoterFactory.create(), mode="pairwise")
    battle.state = "generating"
    battle.save(update_fields=["state"])

    activity_rollup(now=TEN + timedelta(minutes=30))

    assert _row(arena, TEN)["battles_served"] == 0


def test_each_arena_gets_its_own_rows() -> None:
    arenas = [ready_arena(models=3), ready_arena(models=3)]
    rng = random.Random(2)
    with clock_patched(SimulatedClock(TEN + timedelta(minutes=1))):
        for arena in arenas:
            _cast(arena, VoterFactory.create(), "pairwise", rng, _pairwise_first_wins)

    result = activity_rollup(now=TEN + timedelta(minutes=2))

    assert result.arenas == 2
    assert [_row(a, TEN)["votes"] for a in arenas] == [1, 1]


def _rollup_reads(now: datetime) -> int:
    with CaptureQueriesContext(connection) as queries:
        activity_rollup(now=now)
    return sum(1 for q in queries if q["sql"].lstrip().upper().startswith("SELECT"))


def test_a_rollup_reads_with_the_same_queries_for_one_arena_or_three_busier_ones() -> None:
    """(It writes its rows in batches: their number grows with arenas x hours.)"""
    now = ELEVEN + timedelta(minutes=30)
    _traffic(ready_arena(models=3))
    activity_rollup(now=now)
    one = _rollup_reads(now)

    _traffic(ready_arena(models=4))
    _traffic(ready_arena(models=5))
    activity_rollup(now=now)
    three = _rollup_reads(now)

    assert one == three
