"""Per-process caches for the battle path: what every battle request reads and that changes
rarely (an arena's row, its pool of ready outputs with the models' matchmaking weights, and
the matchmaker's beliefs, with the matchmaker built on them); the leaderboard API reads its
arena through it too.

A web process keeps each entry for ``ARENA_LOCAL_CACHE_S`` seconds (``ARENA_LOCAL_CACHE_MS``,
2000 by default) and then reads it again; nothing invalidates it across processes, so an admin
change (an arena turned off, a model's weight, an output regenerated) reaches the battle path
of every web process within that window. A pool that cannot fill a battle is read again at
once (``selectors.arena_ready_pool_cached``), so new outputs never wait for the window to
serve a battle that could not start without them. Other pages read the database each time.

It also remembers, per process, what is known to be waiting elsewhere until a given time (a
drain the aggregator will run: ``hold``/``held``), so a vote need not ask Redis again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.conf import settings

T = TypeVar("T")

_entries: dict[Hashable, tuple[float, Any]] = {}
_held: dict[Hashable, float] = {}  # key -> wall-clock time (time.time()) it is held until


def cached(key: Hashable, build: Callable[[], T], *, fresh: bool = False) -> T:
    """The value under ``key`` if it is younger than ``ARENA_LOCAL_CACHE_S``, else ``build()``
    (stored for the next requests unless it is None). ``fresh``: build now whatever the cache
    holds."""
    ttl = float(settings.ARENA_LOCAL_CACHE_S)
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and not fresh and now - entry[0] < ttl:
        value: T = entry[1]
        return value
    value = build()
    if ttl > 0 and value is not None:
        _entries[key] = (now, value)
    return value


def hold(key: Hashable, until: float) -> None:
    """Remember until ``until`` (a ``time.time()``; a wall clock that other machines share)
    that ``key`` is taken care of."""
    _held[key] = until


def held(key: Hashable) -> bool:
    """Whether ``key`` is held (``hold``) until later than now."""
    return _held.get(key, 0.0) > time.time()


def release(key: Hashable) -> None:
    _held.pop(key, None)


def clear() -> None:
    """Forget everything (the tests: database ids repeat across tests)."""
    _entries.clear()
    _held.clear()
