"""Reads for the operators' overview (``/admin/``): one ``ArenaOverview`` per active arena.

Everything comes from aggregates: the hourly activity rollup (``arena.activity``), the tallies
and snapshots, the review flags and per-model asset counts, never the vote log. The number of
queries is fixed (seven), whatever the number of arenas, votes, models or prompts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from arena.activity import HOUR, hour_floor
from arena.leaderboards import LEADERBOARD_VERSION, METHODS
from arena.models import (
    Arena,
    ArenaActivity,
    Asset,
    AssetStatus,
    GenerativeModel,
    LeaderboardSnapshot,
    ModerationState,
    Prompt,
    Review,
    Verdict,
    VoterFlag,
)

HOURS_SHOWN = 48
DAYS_SHOWN = 14
RECENT_HOURS = 24  # the "last 24 h" figures: the current hour and the 23 before it
FAILURE_WINDOW = timedelta(hours=1)
# Beat rolls activity up every minute: figures older than this mean the rollup is not running.
ROLLUP_LATE_AFTER = timedelta(minutes=5)
# A stale leaderboard is normal for seconds (a reader's debounced rebuild) and at most 5 minutes
# (beat's rebuild); counted votes still missing from it after this mean rebuilds are not running.
SNAPSHOT_LATE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class ModelHealth:
    """One model of an arena: its generations (all arenas) and this arena's cache of it."""

    model_id: int
    name: str
    queue: str
    ready: int
    failed: int
    pending: int
    running: int
    failed_last_hour: int
    cached: int  # ready outputs that count toward this arena's cache target
    cache_target: int  # approved prompts x outputs per prompt

    @property
    def success_rate(self) -> float | None:
        finished = self.ready + self.failed
        return self.ready / finished if finished else None

    @property
    def coverage(self) -> float | None:
        return self.cached / self.cache_target if self.cache_target else None


@dataclass(frozen=True)
class SnapshotFreshness:
    built_at: datetime | None  # the oldest of the methods' newest snapshots; None: never built
    stale: bool  # a method never built, or votes counted since (vote-set hash != tally digest)
    late: bool  # stale, and the tallies changed more than SNAPSHOT_LATE_AFTER ago


@dataclass(frozen=True)
class ArenaOverview:
    arena: Arena
    hourly: list[tuple[datetime, int, int]]  # (hour, votes, of which excluded), oldest first
    daily: list[tuple[date, int, int]]  # (UTC day, votes, of which excluded), oldest first
    votes_24h: int
    votes_excluded_24h: int
    battles_served_24h: int
    battles_voted_24h: int
    voters_24h: int | None  # None: the rollup never ran
    rolled_at: datetime | None
    rollup_late: bool  # never ran, or its figures are older than ROLLUP_LATE_AFTER
    open_reviews: int
    models: list[ModelHealth]
    snapshot: SnapshotFreshness

    @property
    def votes_this_hour(self) -> int:
        return self.hourly[-1][1] if self.hourly else 0

    @property
    def excluded_share(self) -> float | None:
        return self.votes_excluded_24h / self.votes_24h if self.votes_24h else None

    @property
    def abandonment(self) -> float | None:
        """Share of the battles served in the last 24 h without a vote (a battle served in
        the last minutes may still get its vote)."""
        served = self.battles_served_24h
        return (served - self.battles_voted_24h) / served if served else None

    @property
    def failures_last_hour(self) -> int:
        return sum(m.failed_last_hour for m in self.models)

    @property
    def cached(self) -> int:
        return sum(m.cached for m in self.models)

    @property
    def cache_target(self) -> int:
        return sum(m.cache_target for m in self.models)

    @property
    def coverage(self) -> float | None:
        return self.cached / self.cache_target if self.cache_target else None

    @property
    def queues(self) -> list[str]:
        return sorted({m.queue for m in self.models})


def _arenas() -> list[Arena]:
    """Active arenas with their tally, rollup summary and newest snapshot per method."""
    snapshots: dict[str, Any] = {}
    for method in METHODS:
        newest = LeaderboardSnapshot.objects.filter(
            arena=OuterRef("pk"), method=method, code_version=LEADERBOARD_VERSION
        ).order_by("-created_at", "-pk")
        snapshots[f"snap_{method}_at"] = Subquery(newest.values("created_at")[:1])
        snapshots[f"snap_{method}_hash"] = Subquery(newest.values("vote_set_hash")[:1])
    return list(
        Arena.objects.filter(is_active=True)
        .select_related("tally", "activity_summary")
        .annotate(**snapshots)
        .order_by("position", "name")
    )


def _related(arena: Arena, name: str) -> Any:
    try:
        return getattr(arena, name)
    except ObjectDoesNotExist:
        return None


def _freshness(arena: Arena, now: datetime) -> SnapshotFreshness:
    tally = _related(arena, "tally")
    digest = tally.digest if tally is not None else "0" * 32
    built = [getattr(arena, f"snap_{m}_at") for m in METHODS]
    hashes = [getattr(arena, f"snap_{m}_hash") for m in METHODS]
    never = any(at is None for at in built)
    stale = never or any(h != digest for h in hashes)
    return SnapshotFreshness(
        built_at=None if never else min(built),
        stale=stale,
        late=stale and tally is not None and now - tally.updated_at > SNAPSHOT_LATE_AFTER,
    )


def _activity(
    arena_ids: list[int], now_hour: datetime
) -> dict[int, dict[datetime, tuple[int, ...]]]:
    first_day = now_hour.replace(hour=0) - timedelta(days=DAYS_SHOWN - 1)
    start = min(first_day, now_hour - (HOURS_SHOWN - 1) * HOUR)
    rows = ArenaActivity.objects.filter(
        arena_id__in=arena_ids, hour__gte=start, hour__lte=now_hour
    ).values_list("arena_id", "hour", "votes", "votes_excluded", "battles_served", "battles_voted")
    out: dict[int, dict[datetime, tuple[int, ...]]] = defaultdict(dict)
    for arena_id, hour, *counts in rows:
        out[arena_id][hour_floor(hour)] = tuple(counts)
    return out


def _open_reviews(arena_ids: list[int]) -> dict[int, int]:
    """Flagged voters nobody reviewed yet (``arena.fraud.review_queue``), per arena."""
    rows = (
        VoterFlag.objects.filter(
            arena_id__in=arena_ids,
            review=Review.UNREVIEWED,
            verdict__in=[Verdict.EXCLUDED, Verdict.SUSPICIOUS],
        )
        .values("arena_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {r["arena_id"]: r["n"] for r in rows}


def _memberships(arena_ids: list[int]) -> dict[int, list[int]]:
    through = Arena.generative_models.through
    members: dict[int, list[int]] = defaultdict(list)
    for arena_id, model_id in through.objects.filter(arena_id__in=arena_ids).values_list(
        "arena_id", "generativemodel_id"
    ):
        members[arena_id].append(model_id)
    return members


def _model_stats(model_ids: set[int], now: datetime) -> dict[int, dict[str, Any]]:
    """Active models with their asset counts by status (as on the generation dashboard) and
    their failures of the last hour (failed rows last touched since then)."""
    recent = now - FAILURE_WINDOW
    rows = (
        GenerativeModel.objects.filter(pk__in=model_ids, is_active=True)
        .values("pk", "name", "queue")
        .annotate(
            ready=Count("assets", filter=Q(assets__status=AssetStatus.READY)),
            failed=Count("assets", filter=Q(assets__status=AssetStatus.FAILED)),
            pending=Count("assets", filter=Q(assets__status=AssetStatus.PENDING)),
            running=Count("assets", filter=Q(assets__status=AssetStatus.RUNNING)),
            failed_last_hour=Count(
                "assets",
                filter=Q(assets__status=AssetStatus.FAILED, assets__updated_at__gte=recent),
            ),
        )
        .order_by()
    )
    return {r["pk"]: r for r in rows}


def _cache_ready(arena_ids: list[int]) -> dict[tuple[int, int], int]:
    """Ready outputs per (arena, model) that count toward the arena's cache: on its approved
    prompts, seeds below its ``outputs_per_prompt`` (``workers.cache`` fills exactly those)."""
    rows = (
        Asset.objects.filter(
            status=AssetStatus.READY,
            prompt__moderation_state=ModerationState.APPROVED,
            prompt__prompt_set__arenas__in=arena_ids,
            seed__lt=F("prompt__prompt_set__arenas__outputs_per_prompt"),
        )
        .values("prompt__prompt_set__arenas", "model_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(r["prompt__prompt_set__arenas"], r["model_id"]): r["n"] for r in rows}


def _approved_prompts(arena_ids: list[int]) -> dict[int, int]:
    rows = (
        Prompt.objects.filter(
            moderation_state=ModerationState.APPROVED, prompt_set__arenas__in=arena_ids
        )
        .values("prompt_set__arenas")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {r["prompt_set__arenas"]: r["n"] for r in rows}


def _series(
    counts: dict[datetime, tuple[int, ...]], now_hour: datetime
) -> tuple[list[tuple[datetime, int, int]], list[tuple[date, int, int]]]:
    """Votes and excluded votes per hour (last ``HOURS_SHOWN``) and per UTC day (last
    ``DAYS_SHOWN``, today so far included), oldest first, quiet ones as zeros."""
    hourly = []
    for i in range(HOURS_SHOWN - 1, -1, -1):
        hour = now_hour - i * HOUR
        votes, excluded = counts.get(hour, (0, 0))[:2]
        hourly.append((hour, votes, excluded))
    days = {now_hour.date() - timedelta(days=i): [0, 0] for i in range(DAYS_SHOWN - 1, -1, -1)}
    for hour, row in counts.items():
        if hour.date() in days:
            days[hour.date()][0] += row[0]
            days[hour.date()][1] += row[1]
    return hourly, [(day, votes, excluded) for day, (votes, excluded) in days.items()]


def _recent_totals(counts: dict[datetime, tuple[int, ...]], now_hour: datetime) -> list[int]:
    """Votes, excluded, battles served and voted over the last ``RECENT_HOURS`` hours."""
    first = now_hour - (RECENT_HOURS - 1) * HOUR
    totals = [0, 0, 0, 0]
    for hour, row in counts.items():
        if hour >= first:
            totals = [a + b for a, b in zip(totals, row, strict=True)]
    return totals


def _model_health(row: dict[str, Any], *, cached: int, target: int) -> ModelHealth:
    return ModelHealth(
        model_id=row["pk"],
        name=row["name"],
        queue=row["queue"],
        ready=row["ready"],
        failed=row["failed"],
        pending=row["pending"],
        running=row["running"],
        failed_last_hour=row["failed_last_hour"],
        cached=cached,
        cache_target=target,
    )


def arena_overviews(*, now: datetime | None = None) -> list[ArenaOverview]:
    """The overview of every active arena, in home-page order (a fixed number of queries)."""
    now = now or timezone.now()
    now_hour = hour_floor(now)
    arenas = _arenas()
    ids = [a.pk for a in arenas]
    activity, reviews = _activity(ids, now_hour), _open_reviews(ids)
    members = _memberships(ids)
    models = _model_stats({pk for pks in members.values() for pk in pks}, now)
    cache, prompts = _cache_ready(ids), _approved_prompts(ids)
    out = []
    for arena in arenas:
        target = prompts.get(arena.pk, 0) * arena.outputs_per_prompt
        health = sorted(
            (
                _model_health(models[pk], cached=cache.get((arena.pk, pk), 0), target=target)
                for pk in members.get(arena.pk, [])
                if pk in models
            ),
            key=lambda m: m.name,
        )
        hourly, daily = _series(activity.get(arena.pk, {}), now_hour)
        votes, excluded, served, voted = _recent_totals(activity.get(arena.pk, {}), now_hour)
        summary = _related(arena, "activity_summary")
        out.append(
            ArenaOverview(
                arena=arena,
                hourly=hourly,
                daily=daily,
                votes_24h=votes,
                votes_excluded_24h=excluded,
                battles_served_24h=served,
                battles_voted_24h=voted,
                voters_24h=summary.voters_24h if summary else None,
                rolled_at=summary.rolled_at if summary else None,
                rollup_late=summary is None or now - summary.rolled_at > ROLLUP_LATE_AFTER,
                open_reviews=reviews.get(arena.pk, 0),
                models=health,
                snapshot=_freshness(arena, now),
            )
        )
    return out
