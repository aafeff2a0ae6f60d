"""The operators' overview: per-arena figures read from the rollup and other aggregates."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from arena.activity import activity_rollup
from arena.clock import SimulatedClock, clock_patched
from arena.dashboard import DAYS_SHOWN, HOURS_SHOWN, arena_overviews
from arena.leaderboards import leaderboard_rebuild, vote_exclude
from arena.models import (
    Arena,
    Asset,
    AssetStatus,
    ModerationState,
    Review,
    Verdict,
    VoterFlag,
)
from arena.services import battle_create
from tests.arena.test_leaderboards import _cast, _pairwise_first_wins
from tests.factories import (
    ArenaFactory,
    AssetFactory,
    GenerativeModelFactory,
    PromptFactory,
    VoterFactory,
    ready_arena,
)

pytestmark = pytest.mark.django_db


def traffic(arena: Arena, *, at: list[datetime], seed: int = 3, voters: int = 2) -> list[Any]:
    """One pairwise vote at each moment of ``at``, by ``voters`` voters in turn."""
    people, rng = VoterFactory.create_batch(voters), random.Random(seed)
    votes = []
    with clock_patched(SimulatedClock(at[0])) as clock:
        for i, moment in enumerate(at):
            clock.now = moment
            votes.append(_cast(arena, people[i % voters], "pairwise", rng, _pairwise_first_wins))
    return votes


def abandon(arena: Arena, *, at: datetime) -> None:
    with clock_patched(SimulatedClock(at)):
        battle_create(arena=arena, voter=VoterFactory.create(), mode="pairwise")


def flag(
    arena: Arena, *, verdict: str = Verdict.SUSPICIOUS, review: str = Review.UNREVIEWED
) -> None:
    VoterFlag.objects.create(
        arena=arena,
        voter=VoterFactory.create(),
        verdict=verdict,
        review=review,
        scanned_at=timezone.now(),
    )


def fail(asset: Asset, *, at: datetime) -> None:
    Asset.objects.filter(pk=asset.pk).update(status=AssetStatus.FAILED, updated_at=at)


def _overview(arena: Arena, now: datetime) -> Any:
    (found,) = [o for o in arena_overviews(now=now) if o.arena.pk == arena.pk]
    return found


def test_it_sums_the_last_24_hours_of_votes_battles_and_exclusions() -> None:
    now = timezone.now()
    arena = ready_arena(models=3)
    recent = traffic(arena, at=[now - timedelta(minutes=30), now - timedelta(hours=3)] * 2)
    traffic(arena, at=[now - timedelta(days=3)])
    abandon(arena, at=now - timedelta(minutes=20))
    vote_exclude(vote=recent[0], reason="a reviewer's decision")
    activity_rollup(now=now)

    o = _overview(arena, now)

    assert (o.votes_24h, o.votes_excluded_24h) == (4, 1)
    assert o.excluded_share == pytest.approx(0.25)
    assert (o.battles_served_24h, o.battles_voted_24h) == (5, 4)
    assert o.abandonment == pytest.approx(0.2)
    assert o.voters_24h == 2
    assert not o.rollup_late


def test_it_charts_48_hours_and_14_days_with_the_excluded_votes() -> None:
    now = timezone.now()
    arena = ready_arena(models=3)
    votes = traffic(arena, at=[now - timedelta(hours=1), now, now - timedelta(days=5)])
    vote_exclude(vote=votes[1], reason="a reviewer's decision")
    activity_rollup(now=now)

    o = _overview(arena, now)

    assert len(o.hourly) == HOURS_SHOWN and len(o.daily) == DAYS_SHOWN
    assert o.hourly[-1][1:] == (1, 1) and o.votes_this_hour == 1
    assert sum(votes for _, votes, _ in o.hourly) == 2
    assert sum(votes for _, votes, _ in o.daily) == 3
    assert o.daily[-1][0] == now.date()


def test_before_the_first_rollup_it_shows_no_activity_and_says_so() -> None:
    arena = ready_arena(models=3)
    traffic(arena, at=[timezone.now()])

    o = _overview(arena, timezone.now())

    assert (o.votes_24h, o.voters_24h, o.rolled_at) == (0, None, None)
    assert o.rollup_late


def test_a_rollup_that_stopped_is_late() -> None:
    now = timezone.now()
    arena = ready_arena(models=3)
    activity_rollup(now=now - timedelta(minutes=10))

    assert _overview(arena, now).rollup_late


def test_open_reviews_are_the_flagged_voters_nobody_reviewed() -> None:
    arena = ready_arena(models=3)
    flag(arena, verdict=Verdict.SUSPICIOUS)
    flag(arena, verdict=Verdict.EXCLUDED)
    flag(arena, verdict=Verdict.EXCLUDED, review=Review.CONFIRMED)
    flag(arena, verdict=Verdict.OK)
    flag(ready_arena(models=3), verdict=Verdict.EXCLUDED)  # another arena's

    assert _overview(arena, timezone.now()).open_reviews == 2


def test_it_counts_failures_of_the_last_hour_and_each_models_success() -> None:
    now = timezone.now()
    arena = ready_arena(models=2, prompts=3)
    first, second = sorted(arena.generative_models.all(), key=lambda m: m.name)
    assets = list(Asset.objects.filter(model=first).order_by("pk"))
    fail(assets[0], at=now - timedelta(minutes=10))
    fail(assets[1], at=now - timedelta(hours=2))

    o = _overview(arena, now)

    assert o.failures_last_hour == 1
    by_name = {m.name: m for m in o.models}
    assert (by_name[first.name].ready, by_name[first.name].failed) == (1, 2)
    assert by_name[first.name].success_rate == pytest.approx(1 / 3)
    assert by_name[second.name].success_rate == 1
    assert o.queues == ["gen.cpu"]


def test_cache_coverage_counts_ready_outputs_per_model_and_prompt_against_the_target() -> None:
    arena = ArenaFactory.create(outputs_per_prompt=2)
    shown, idle = GenerativeModelFactory.create(), GenerativeModelFactory.create(is_active=False)
    arena.generative_models.add(shown, idle)
    prompts = PromptFactory.create_batch(2, prompt_set=arena.prompt_set)
    pending = PromptFactory.create(
        prompt_set=arena.prompt_set, moderation_state=ModerationState.PENDING
    )
    AssetFactory.create(model=shown, prompt=prompts[0], seed=0)
    AssetFactory.create(model=shown, prompt=prompts[0], seed=1)
    AssetFactory.create(model=shown, prompt=prompts[0], seed=2)  # beyond the target
    AssetFactory.create(model=shown, prompt=prompts[1], seed=0, status=AssetStatus.RUNNING)
    AssetFactory.create(model=shown, prompt=pending, seed=0)  # not an approved prompt
    AssetFactory.create(model=idle, prompt=prompts[1], seed=0)  # an inactive model

    o = _overview(arena, timezone.now())

    assert [m.name for m in o.models] == [shown.name]
    assert (o.cached, o.cache_target) == (2, 4)
    assert o.coverage == pytest.approx(0.5)


def test_a_leaderboard_is_fresh_until_a_vote_arrives_after_its_snapshot() -> None:
    arena = ready_arena(models=3)
    assert _overview(arena, timezone.now()).snapshot.built_at is None
    assert _overview(arena, timezone.now()).snapshot.stale

    traffic(arena, at=[timezone.now()])
    leaderboard_rebuild(arena=arena)
    fresh = _overview(arena, timezone.now()).snapshot
    traffic(arena, at=[timezone.now()], seed=4)
    after_a_vote = _overview(arena, timezone.now()).snapshot

    assert fresh.built_at is not None and not fresh.stale
    assert after_a_vote.stale and after_a_vote.built_at == fresh.built_at


def test_it_shows_active_arenas_in_home_page_order() -> None:
    second = ready_arena(models=2, position=2, name="Second")
    first = ready_arena(models=2, position=1, name="First")
    ready_arena(models=2, is_active=False)

    assert [o.arena for o in arena_overviews()] == [first, second]


def test_a_leaderboard_left_stale_long_after_the_votes_were_counted_is_late() -> None:
    arena = ready_arena(models=3)
    traffic(arena, at=[timezone.now()])
    leaderboard_rebuild(arena=arena)
    traffic(arena, at=[timezone.now()], seed=4)

    just_now = _overview(arena, timezone.now()).snapshot
    later = _overview(arena, timezone.now() + timedelta(minutes=11)).snapshot

    assert just_now.stale and not just_now.late
    assert later.stale and later.late
