"""Celery tasks: thin and idempotent. Each takes ids, calls one service, returns.

Generation jobs, and a model's backend check ("Check now" in the admin), go to the queue named
on their model (``gen.*``); light tasks (cache top-up,
reaper, the tally aggregator, leaderboards, fraud scans, the activity rollup) go to ``light`` so
a slow GPU queue never starves them.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from arena.activity import activity_rollup
from arena.fraud import fraud_scan, fraud_scan_all
from arena.leaderboards import (
    leaderboard_rebuild,
    leaderboard_rebuild_by_id,
    leaderboard_snapshots_thin,
    tallies_drain_all,
    tallies_drain_requested,
)
from arena.models import Arena, Asset
from arena.services import assets_awaited_unclaimed, assets_enqueue, assets_reap_stale
from workers.backends import TransientBackendError, backend_get
from workers.cache import cache_top_up
from workers.checks import backend_check_run
from workers.generation import asset_generate

LIGHT_QUEUE = "light"
TALLIES_QUEUE = "tallies"  # the aggregator's: never behind a fraud scan or a rebuild
# Retries only for transient errors (timeouts, rate limits, 5xx): 10 s, 20 s, 40 s, 80 s (jittered).
GENERATE_MAX_RETRIES = 4
GENERATE_RETRY_BACKOFF_S = settings.GENERATION_RETRY_BACKOFF_S


@shared_task(
    bind=True,
    name="workers.generate_asset",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientBackendError,),
    retry_backoff=GENERATE_RETRY_BACKOFF_S,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=GENERATE_MAX_RETRIES,
    ignore_result=True,
)
def generate_asset(self: Task, asset_id: int) -> str:
    final = self.request.retries >= GENERATE_MAX_RETRIES
    try:
        return asset_generate(
            asset_id=asset_id, worker=self.request.hostname or "", final_attempt=final
        )
    except SoftTimeLimitExceeded:
        # The job overran its backend's soft limit: a retry may be luckier (cold start, load).
        raise TransientBackendError("the generation took longer than its time limit") from None


def generate_asset_enqueue(*, asset_id: int, queue: str, backend: str = "builtin") -> None:
    """Send one job to the model's queue, with its backend's time limits."""
    limits = backend_get(backend)
    generate_asset.apply_async(
        args=[asset_id],
        queue=queue,
        soft_time_limit=limits.soft_time_limit_s,
        time_limit=limits.time_limit_s,
    )


# A backend check imports torch (tens of seconds from a cold disk) and reads the weights' index;
# an overrun is recorded as a failed check (workers.checks).
BACKEND_CHECK_SOFT_LIMIT_S = 120
BACKEND_CHECK_LIMIT_S = 150


@shared_task(
    bind=True,
    name="workers.check_backend",
    ignore_result=True,
    soft_time_limit=BACKEND_CHECK_SOFT_LIMIT_S,
    time_limit=BACKEND_CHECK_LIMIT_S,
)
def check_backend(self: Task, model_id: int) -> str:
    """Check a model's backend on this worker and record the outcome (idempotent: it only reads
    this worker's environment; ``backend_check_run``)."""
    return backend_check_run(model_id=model_id, worker=self.request.hostname or "")


def backend_check_enqueue(*, model_id: int, queue: str) -> None:
    """The domain's check port (``BACKEND_CHECK_SENDER``): a check on the model's own queue, so
    that a worker that runs its jobs answers."""
    # No publish retries: an operator is waiting on the page; a failed send is recorded.
    check_backend.apply_async(args=[model_id], queue=queue, retry=False)


@shared_task(name="workers.reap_stale_generations", ignore_result=True)
def reap_stale_generations(silent_for_s: int | None = None) -> dict[str, Any]:
    """Running rows whose worker stopped beating go back to pending and are sent again, and so
    are the pending outputs a voter's live battle has waited on for too long (a lost message)."""
    ids = assets_reap_stale(silent_for_s=silent_for_s or settings.GENERATION_STALE_AFTER_S)
    reaped = set(ids)  # (sent below anyway: not counted twice)
    awaited = [
        pk
        for pk in assets_awaited_unclaimed(sent_before_s=settings.GENERATION_LIVE_RESEND_S)
        if pk not in reaped
    ]
    queued = assets_enqueue(
        assets=Asset.objects.filter(pk__in=[*ids, *awaited]).select_related("model")
    )
    return {"reaped": len(ids), "resent": len(awaited), "queued": queued}


@shared_task(name="workers.top_up_cache", ignore_result=True)
def top_up_cache() -> dict[str, int]:
    return cache_top_up().as_dict()


@shared_task(name="workers.rebuild_leaderboards", ignore_result=True)
def rebuild_leaderboards() -> dict[str, int]:
    """Rebuild every active arena's leaderboards from its counted votes (cheap when unchanged),
    and thin each arena's snapshot history (``leaderboard_snapshots_thin``)."""
    created = thinned = 0
    arenas = list(Arena.objects.filter(is_active=True))
    for arena in arenas:
        created += leaderboard_rebuild(arena=arena).created
        thinned += leaderboard_snapshots_thin(arena=arena)
    return {"arenas": len(arenas), "snapshots_created": created, "snapshots_thinned": thinned}


@shared_task(name="workers.rebuild_arena_leaderboards", ignore_result=True)
def rebuild_arena_leaderboards(arena_id: int) -> int:
    """One arena's leaderboards, asked for by a reader that found them stale (debounced)."""
    return leaderboard_rebuild_by_id(arena_id=arena_id)


def leaderboard_rebuild_enqueue(*, arena_id: int) -> None:
    """The domain's rebuild port (``LEADERBOARD_REBUILD_SENDER``): a task on the light queue."""
    # No publish retries: a reader is waiting, and beat rebuilds every arena anyway.
    rebuild_arena_leaderboards.apply_async(args=[arena_id], queue=LIGHT_QUEUE, retry=False)


@shared_task(name="workers.drain_tallies", ignore_result=True)
def drain_tallies(arena_id: int) -> dict[str, int]:
    """The aggregator: apply an arena's pending votes to its tallies (asked for on commit)."""
    result = tallies_drain_requested(arena_id=arena_id)
    return {"counted": result.counted, "excluded": result.excluded, "replayed": result.replayed}


def tallies_drain_enqueue(*, arena_id: int, queue: str = TALLIES_QUEUE) -> None:
    """The domain's tally port (``TALLY_DRAIN_SENDER``): a task on the tallies queue, run once
    the debounce window that this request opened has closed (see ``tally_drain_request``)."""
    # No publish retries: this runs on a web request, and with the broker down beat's
    # drain_all_tallies catches up; the caller logs the error.
    drain_tallies.apply_async(
        args=[arena_id], queue=queue, countdown=settings.TALLY_DRAIN_DEBOUNCE_S, retry=False
    )


@shared_task(name="workers.drain_all_tallies", ignore_result=True)
def drain_all_tallies() -> dict[str, int]:
    """Beat's safety net: drain every arena with pending votes (a lost request, a broker outage)."""
    results = tallies_drain_all()
    return {"arenas": len(results), "votes": sum(r.drained for r in results.values())}


@shared_task(name="workers.scan_fraud", ignore_result=True, soft_time_limit=1800, time_limit=1860)
def scan_fraud(full: bool = False, arena: str | None = None) -> list[dict[str, Any]]:
    """Judge the voters of new votes (``full``: all voters) in every active arena, or one."""
    if arena is not None:
        found = Arena.objects.filter(slug=arena).first()
        return [fraud_scan(arena=found, full=full).as_dict()] if found else []
    return [result.as_dict() for result in fraud_scan_all(full=full)]


@shared_task(
    name="workers.rollup_activity", ignore_result=True, soft_time_limit=120, time_limit=150
)
def rollup_activity() -> dict[str, Any]:
    """Beat's minute: recompute the recent hours of every arena's activity for the overview."""
    return activity_rollup().as_dict()
