"""A settable stand-in for ``django.utils.timezone.now``.

``simulate_votes`` casts its votes on it (and the tests their crafted voters), so votes get the
viewing times and spacing of people rather than of a loop, and fraud detection judges them as
it would judge people.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@contextmanager
def clock_patched(clock: SimulatedClock) -> Iterator[SimulatedClock]:
    """Within the block ``timezone.now`` (model timestamps included) reads ``clock``."""
    real = timezone.now
    timezone.now = clock
    try:
        yield clock
    finally:
        timezone.now = real
