"""Celery tasks: thin and idempotent. Each takes ids, calls one service, returns."""

from __future__ import annotations

from celery import shared_task

from workers.generation import asset_generate

# Generation is CPU/GPU bound; a job that runs far past a normal generation is stuck.
GENERATE_SOFT_LIMIT_S = 120
GENERATE_HARD_LIMIT_S = 180


@shared_task(
    name="workers.generate_asset",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=GENERATE_SOFT_LIMIT_S,
    time_limit=GENERATE_HARD_LIMIT_S,
    ignore_result=True,
)
def generate_asset(asset_id: int) -> str:
    return asset_generate(asset_id=asset_id)


def generate_asset_enqueue(*, asset_id: int, queue: str) -> None:
    """Send the job to the model's own queue (a GPU pool subscribes to its queues only)."""
    generate_asset.apply_async(args=[asset_id], queue=queue)
