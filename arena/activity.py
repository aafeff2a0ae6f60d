"""The hourly activity rollup behind the operators' overview (``arena.dashboard``).

``activity_rollup`` recomputes one ``ArenaActivity`` row per arena and hour for a window of
hours, from the vote log and the battles: one grouped query per table over an indexed time range
(``Vote.created_at``, ``Battle.served_at``), whatever the number of arenas. Every arena gets a
row for every hour of the window, quiet hours included, so a rerun overwrites exactly what an
earlier run wrote: recomputing an hour from the same votes gives the same row.

A vote's exclusion (the fraud scan) and a battle's vote come after the hour they belong to, so
each run recomputes the last ``RECOMPUTE_HOURS`` hours, or from the previous run on if that is
older (the rollup was stopped). Distinct voters over the last 24 hours cannot be added up from
hourly rows; each run counts them once and keeps them on ``ArenaActivitySummary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from arena.models import (
    Arena,
    ArenaActivity,
    ArenaActivitySummary,
    Battle,
    BattleState,
    Vote,
)

HOUR = timedelta(hours=1)
# The fraud scan runs every few minutes and a served battle's token lives far less than a day:
# after two days an hour's exclusions and votes have settled.
RECOMPUTE_HOURS = 48
# How far back a first run (or one after a long stop) fills: the overview's daily chart.
BACKFILL_DAYS = 14
ACTIVE_VOTERS_WINDOW = timedelta(hours=24)
_COUNTS = ("votes", "votes_excluded", "battles_served", "battles_voted", "voters")


def hour_floor(at: datetime) -> datetime:
    """The start of the UTC hour ``at`` falls in."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class RollupResult:
    start: datetime  # the first hour recomputed
    end: datetime  # the end of the last (current) hour
    arenas: int
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "arenas": self.arenas,
            "rows": self.rows,
        }


def _window_start(*, arena_ids: list[int], now_hour: datetime) -> datetime:
    """From the previous run's hour (at most ``RECOMPUTE_HOURS`` ago), or ``BACKFILL_DAYS``
    back when some arena was never rolled up."""
    earliest = now_hour - timedelta(days=BACKFILL_DAYS)
    recent = now_hour - (RECOMPUTE_HOURS - 1) * HOUR
    done = ArenaActivitySummary.objects.filter(arena_id__in=arena_ids).aggregate(
        n=Count("pk"), oldest=Min("rolled_at")
    )
    if done["n"] < len(arena_ids) or done["oldest"] is None:
        return earliest
    return max(earliest, min(recent, hour_floor(done["oldest"])))


def _vote_counts(start: datetime, end: datetime) -> dict[tuple[int, datetime], dict[str, int]]:
    rows = (
        Vote.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(at=TruncHour("created_at", tzinfo=UTC))
        .values("arena_id", "at")
        .annotate(
            votes=Count("pk"),
            votes_excluded=Count("pk", filter=Q(exclusion__isnull=False)),
            voters=Count("voter_id", distinct=True),
        )
        .order_by()
    )
    return {(r["arena_id"], hour_floor(r["at"])): r for r in rows}


def _battle_counts(start: datetime, end: datetime) -> dict[tuple[int, datetime], dict[str, int]]:
    # A voter's own-prompt battle counts once its outputs are ready (served_at is set again).
    rows = (
        Battle.objects.filter(served_at__gte=start, served_at__lt=end)
        .exclude(state=BattleState.GENERATING)
        .annotate(at=TruncHour("served_at", tzinfo=UTC))
        .values("arena_id", "at")
        .annotate(
            battles_served=Count("pk"),
            battles_voted=Count("pk", filter=Q(state=BattleState.VOTED)),
        )
        .order_by()
    )
    return {(r["arena_id"], hour_floor(r["at"])): r for r in rows}


def _active_voters(now: datetime) -> dict[int, int]:
    rows = (
        Vote.objects.filter(created_at__gt=now - ACTIVE_VOTERS_WINDOW, created_at__lte=now)
        .values("arena_id")
        .annotate(n=Count("voter_id", distinct=True))
        .order_by()
    )
    return {r["arena_id"]: r["n"] for r in rows}


def activity_rollup(*, since: datetime | None = None, now: datetime | None = None) -> RollupResult:
    """Recompute every arena's hourly activity from ``since`` (default: see ``_window_start``)
    through the current hour, and its distinct voters of the last 24 hours. Idempotent."""
    now = now or timezone.now()
    now_hour = hour_floor(now)
    end = now_hour + HOUR
    arena_ids = list(Arena.objects.order_by("pk").values_list("pk", flat=True))
    start = (
        hour_floor(since)
        if since is not None
        else _window_start(arena_ids=arena_ids, now_hour=now_hour)
    )
    votes, battles = _vote_counts(start, end), _battle_counts(start, end)
    hours = [start + i * HOUR for i in range(int((end - start) / HOUR))]
    rows = []
    for arena_id in arena_ids:
        for hour in hours:
            counts = {**votes.get((arena_id, hour), {}), **battles.get((arena_id, hour), {})}
            rows.append(
                ArenaActivity(
                    arena_id=arena_id, hour=hour, **{f: counts.get(f, 0) for f in _COUNTS}
                )
            )
    voters = _active_voters(now)
    summaries = [
        ArenaActivitySummary(arena_id=pk, voters_24h=voters.get(pk, 0), rolled_at=now)
        for pk in arena_ids
    ]
    with transaction.atomic():
        ArenaActivity.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["arena", "hour"],
            update_fields=list(_COUNTS),
        )
        ArenaActivitySummary.objects.bulk_create(
            summaries,
            update_conflicts=True,
            unique_fields=["arena"],
            update_fields=["voters_24h", "rolled_at"],
        )
    return RollupResult(start=start, end=end, arenas=len(arena_ids), rows=len(rows))
