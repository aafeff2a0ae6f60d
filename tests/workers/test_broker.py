"""The embedded broker under several producer and consumer processes at once.

Kombu's stock filesystem transport lets a consumer read a message file before its producer has
finished writing it (the consumer dies with JSONDecodeError); ``workers.broker`` publishes and
claims atomically. ``benchmarks/broker_stress.py`` runs the same load on both transports.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.broker_stress import run_stress
from config.celery import app

OURS = "workers.broker:Transport"


@pytest.mark.parametrize(
    ("messages", "size"),
    [(2000, 2048), (200, 1_000_000)],
    ids=["thousands of small messages", "large messages (a long write)"],
)
def test_several_producers_and_consumers_lose_nothing_and_double_nothing(
    messages: int, size: int
) -> None:
    result = run_stress(
        transport=OURS, producers=4, consumers=4, messages=messages, size=size, idle_s=3.0
    )

    assert result.crashed == []
    assert (result.received, result.lost, result.doubled) == (messages, 0, 0)


def test_the_embedded_broker_url_selects_the_atomic_transport(settings: Any) -> None:
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("this run uses a real broker (REDIS_URL)")

    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "workers.broker"
