"""The test run's settings: ``config.settings``, with each xdist worker on a Redis database of its own.

Tests clear the cache between them (``cache.clear()`` is FLUSHDB on Redis), and the cache and the
Celery broker share ``REDIS_URL``: two workers on one database would wipe each other's rate-limit
counters and queued jobs mid-test. The URL is rewritten in the environment, before the settings
read it, so the Celery worker processes that tests start inherit the same database.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def _redis_url_for_worker(url: str, worker: str) -> str:
    """``url`` on database 1 + N for xdist worker ``gwN`` (database 0 is left to the first run)."""
    parts = urlsplit(url)
    database = 1 + int(worker.removeprefix("gw") or 0)
    return urlunsplit(parts._replace(path=f"/{database}"))


_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and os.environ.get("REDIS_URL", "").startswith("redis"):
    os.environ["REDIS_URL"] = _redis_url_for_worker(os.environ["REDIS_URL"], _WORKER)
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"]

from config.settings import *  # noqa: E402, F403

# A reader that finds a leaderboard stale gets it rebuilt at once (production sends a debounced
# task): tests read what they just voted. tests/arena/test_leaderboards.py checks the real path.
LEADERBOARD_REBUILD_SENDER = "arena.leaderboards.leaderboard_rebuild_by_id"
LEADERBOARD_REBUILD_DEBOUNCE_S = 0
# Votes are drained into the tallies inside their own transaction (the test's transaction never
# commits, so an on-commit request would never run); tests/arena/test_aggregator.py checks the
# deferred path.
TALLY_DRAIN_SENDER = "arena.leaderboards.tallies_drain"
TALLY_DRAIN_ON_COMMIT = False
TALLY_DRAIN_DEBOUNCE_S = 0
TALLY_SETTLE_S = 0  # tests drain every vote at once (tests/arena/test_aggregator.py sets it)
# No per-process caching by default: what a battle is served from must not depend on how many
# seconds a slow machine took since the last one (tests of the cache set their own window).
ARENA_LOCAL_CACHE_S = 0.0
