"""Read-only figures for operators: queue depths, running/failed generations, per-model stats."""

from __future__ import annotations

from dataclasses import dataclass

from celery import current_app as app
from django.db.models import Avg, Count, Q, QuerySet
from kombu import Connection

from arena.models import Asset, AssetStatus, GenerativeModel
from workers.tasks import LIGHT_QUEUE, TALLIES_QUEUE


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int | None  # None: the broker could not be asked
    error: str = ""


def queue_names() -> list[str]:
    names = set(GenerativeModel.objects.values_list("queue", flat=True)) | {
        LIGHT_QUEUE,
        TALLIES_QUEUE,
    }
    return sorted(names)


def queue_depths(names: list[str] | None = None) -> list[QueueDepth]:
    """Messages waiting per queue, asked from the broker (Redis, AMQP or the filesystem)."""
    depths: list[QueueDepth] = []
    try:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            for name in names or queue_names():
                try:
                    declared = channel.queue_declare(queue=name, passive=True)
                    depths.append(QueueDepth(name, int(declared.message_count)))
                except Exception as exc:  # a queue nobody declared yet is empty, not an error
                    depths.append(
                        QueueDepth(name, 0 if "NOT_FOUND" in str(exc) else None, str(exc))
                    )
    except OSError as exc:
        return [
            QueueDepth(name, None, f"broker unreachable: {exc}") for name in names or queue_names()
        ]
    return depths


@dataclass(frozen=True)
class ModelStats:
    model: GenerativeModel
    ready: int
    failed: int
    pending: int
    running: int
    mean_generation_ms: float | None

    @property
    def success_rate(self) -> float | None:
        finished = self.ready + self.failed
        return self.ready / finished if finished else None


def model_generation_stats() -> list[ModelStats]:
    rows = GenerativeModel.objects.annotate(
        n_ready=Count("assets", filter=Q(assets__status=AssetStatus.READY)),
        n_failed=Count("assets", filter=Q(assets__status=AssetStatus.FAILED)),
        n_pending=Count("assets", filter=Q(assets__status=AssetStatus.PENDING)),
        n_running=Count("assets", filter=Q(assets__status=AssetStatus.RUNNING)),
        mean_ms=Avg("assets__generation_ms", filter=Q(assets__status=AssetStatus.READY)),
    ).order_by("name")
    return [ModelStats(m, m.n_ready, m.n_failed, m.n_pending, m.n_running, m.mean_ms) for m in rows]


def generations_in(status: str, limit: int = 50) -> QuerySet[Asset]:
    return (
        Asset.objects.filter(status=status)
        .select_related("model", "prompt")
        .order_by("-updated_at")[:limit]
    )


def broker_check(timeout_s: float = 2.0, url: str | None = None) -> str:
    """Why the Celery broker (or the one at ``url``) does not answer in ``timeout_s``; "" if it does."""
    try:
        connection = (
            Connection(url, connect_timeout=timeout_s) if url else app.connection_for_write()
        )
        with connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout_s)
    except Exception as exc:  # every transport raises its own kind
        return f"{type(exc).__name__}: {exc}"[:300]
    return ""
