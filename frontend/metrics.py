"""Prometheus metrics at ``/metrics``.

Two kinds:
- **Events counted in the process that saw them**: request latency (``config.observability``),
  votes and battles (counted when their transaction commits). Under gunicorn, set
  ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the workers (prometheus_client's
  multiprocess mode) so that one scrape sums them all.
- **State read from the database and the broker at scrape time** (exact whatever process
  scrapes): counted and pending votes per arena, queue depths, generation outcomes per model,
  fraud verdicts and the last scan. These read aggregates (tallies, grouped counts of assets and
  flags), never the vote log.

``METRICS_TOKEN`` (when set) must come as ``Authorization: Bearer <token>``; the nginx of
``docker-compose.yml`` does not serve ``/metrics`` to the outside at all.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from arena import localcache
from arena.models import (
    Arena,
    ArenaTally,
    Asset,
    AssetStatus,
    Battle,
    FraudScanState,
    PendingVote,
    Vote,
    VoterFlag,
)
from workers.ops import queue_depths

REQUEST_SECONDS = Histogram(
    "arena_http_request_seconds",
    "Time to answer an HTTP request, by method, URL pattern and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,  # registered per scrape (see registry())
)
VOTES = Counter(
    "arena_votes", "Votes recorded, by arena and mode.", ["arena", "mode"], registry=None
)
BATTLES = Counter(
    "arena_battles", "Battles served, by arena and mode.", ["arena", "mode"], registry=None
)


def _arena_slugs() -> dict[int, str]:
    return dict(Arena.objects.values_list("pk", "slug"))


def _arena_label(instance: Vote | Battle) -> str:
    """The arena's slug: from the saved row when it carries its arena (a battle does), else
    from this process's map of arena slugs (read at most once per ARENA_LOCAL_CACHE_S, and
    again for an arena it does not know yet)."""
    arena = instance._state.fields_cache.get("arena")
    if arena is not None:
        return str(arena.slug)
    slugs = localcache.cached(("arena-slugs",), _arena_slugs)
    if instance.arena_id not in slugs:
        slugs = localcache.cached(("arena-slugs",), _arena_slugs, fresh=True)
    return slugs.get(instance.arena_id, str(instance.arena_id))


def _on_vote_saved(sender: Any, instance: Vote, created: bool, **kwargs: Any) -> None:
    """Counts a vote once its transaction commits (a rolled-back vote was never recorded)."""
    if created:
        _count_on_commit(labelled(VOTES, _arena_label(instance), instance.mode))


def _on_battle_saved(sender: Any, instance: Battle, created: bool, **kwargs: Any) -> None:
    if created:
        _count_on_commit(labelled(BATTLES, _arena_label(instance), instance.mode))


@functools.lru_cache(maxsize=1024)
def labelled(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, the values in the order of its label names, kept: the
    child never changes, and ``labels`` looks it up under a lock on every call. Callers keep
    the values few (a label per client-chosen value would grow /metrics without end)."""
    return metric.labels(*values)


def _count_on_commit(child: Any) -> None:
    """Count once the transaction commits; outside one (the fast path's statements are
    transactions of their own) ``on_commit`` counts at once."""
    transaction.on_commit(lambda: child.inc())  # (a callback of this module's: tests tell)


def connect_signals() -> None:
    from django.db.models.signals import post_save

    post_save.connect(_on_vote_saved, sender=Vote, dispatch_uid="metrics-votes")
    post_save.connect(_on_battle_saved, sender=Battle, dispatch_uid="metrics-battles")


class StateCollector(Collector):
    """Gauges read from the database and the broker at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        slugs = _arena_slugs()
        yield from self._votes(slugs)
        yield self._queues()
        yield from self._generation()
        yield from self._fraud(slugs)

    def _votes(self, slugs: dict[int, str]) -> Iterator[GaugeMetricFamily]:
        counted = GaugeMetricFamily(
            "arena_votes_counted", "Votes counted in the leaderboards, per arena.", labels=["arena"]
        )
        for arena_id, votes in ArenaTally.objects.values_list("arena_id", "votes"):
            counted.add_metric([slugs.get(arena_id, str(arena_id))], votes)
        yield counted
        pending = GaugeMetricFamily(
            "arena_votes_pending",
            "Recorded votes the aggregator has not applied yet, per arena.",
            labels=["arena"],
        )
        rows = PendingVote.objects.values("arena_id").annotate(n=Count("pk"))
        for row in rows:
            pending.add_metric([slugs.get(row["arena_id"], str(row["arena_id"]))], row["n"])
        yield pending

    def _queues(self) -> GaugeMetricFamily:
        depth = GaugeMetricFamily(
            "arena_queue_messages", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for queue in queue_depths():
            if queue.messages is not None:
                depth.add_metric([queue.name], queue.messages)
        return depth

    def _generation(self) -> Iterator[GaugeMetricFamily]:
        outputs = GaugeMetricFamily(
            "arena_generation_outputs",
            "Generated outputs by model and status (ready, failed, pending, running).",
            labels=["model", "status"],
        )
        rows = Asset.objects.values("model__slug", "status").annotate(n=Count("pk"))
        for row in rows:
            outputs.add_metric([row["model__slug"], row["status"]], row["n"])
        yield outputs
        recent = GaugeMetricFamily(
            "arena_generation_failures_last_hour",
            "Generations that failed in the last hour, by model.",
            labels=["model"],
        )
        hour_ago = timezone.now() - timedelta(hours=1)
        failed = (
            Asset.objects.filter(status=AssetStatus.FAILED, updated_at__gte=hour_ago)
            .values("model__slug")
            .annotate(n=Count("pk"))
        )
        for row in failed:
            recent.add_metric([row["model__slug"]], row["n"])
        yield recent

    def _fraud(self, slugs: dict[int, str]) -> Iterator[GaugeMetricFamily]:
        verdicts = GaugeMetricFamily(
            "arena_fraud_voters",
            "Voters by the fraud scan's verdict and its review, per arena.",
            labels=["arena", "verdict", "review"],
        )
        rows = VoterFlag.objects.values("arena_id", "verdict", "review").annotate(n=Count("pk"))
        for row in rows:
            arena = slugs.get(row["arena_id"], str(row["arena_id"]))
            verdicts.add_metric([arena, row["verdict"], row["review"]], row["n"])
        yield verdicts
        scanned = GaugeMetricFamily(
            "arena_fraud_last_scan_timestamp_seconds",
            "When the fraud scan last ran, per arena (Unix time).",
            labels=["arena"],
        )
        for arena_id, at in FraudScanState.objects.filter(~Q(scanned_at=None)).values_list(
            "arena_id", "scanned_at"
        ):
            if at is not None:
                scanned.add_metric([slugs.get(arena_id, str(arena_id))], at.timestamp())
        yield scanned


def registry(*, state: bool = True) -> CollectorRegistry:
    """The registry one scrape reads: this process's (or all processes') events, plus state."""
    scrape = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scrape)
    else:
        for collector in (REQUEST_SECONDS, VOTES, BATTLES):
            scrape.register(collector)
    if state:
        scrape.register(StateCollector())
    return scrape


def _authorised(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        return JsonResponse({"error": "metrics are turned off (METRICS_ENABLED=0)"}, status=404)
    if not _authorised(request):
        return JsonResponse({"error": "a valid metrics token is required"}, status=401)
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
