"""Rate limits on battle creation and votes: fixed windows counted in the Django cache.

Each action (``battle``, ``vote``) has up to three scopes, checked narrowest first:

* ``voter``: one browser (the voter cookie's public id);
* ``prefix``: one network (the keyed hash of the client's /24 or /48, never the address);
* ``global``: everybody together.

A counter is one cache key per (action, scope, identity, window). On Redis one script counts
every scope of a request in one round trip (``INCR``, and the expiry with the first hit:
``config.cache.PooledRedisCache.count_hits``); other caches create it with ``cache.add`` and
bump it with ``cache.incr``. Either way concurrent web processes never lose a count. Windows
are fixed (aligned to the epoch), which lets a burst reach twice the limit across a window
boundary; that is acceptable for throttling scripts and keeps the check to one round trip.

Scopes are checked narrowest first and the check stops at the first refusal, so one script
hammering with one cookie exhausts only its own budget, not its network's or the arena's.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError

from arena.errors import RateLimited
from arena.middleware import client_ip, request_voter, voter_cookie
from arena.privacy import prefix_hash

logger = logging.getLogger(__name__)

Action = Literal["battle", "vote", "download"]
SCOPES = ("voter", "prefix", "global")  # checked in this order: narrowest first

_ACTION_NOUNS = {"battle": "new battles", "vote": "votes", "download": "vote downloads"}
_SCOPE_SOURCES = {"voter": "this browser", "prefix": "your network"}


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests per ``window_s`` seconds."""

    limit: int
    window_s: int


def _rates(action: Action) -> dict[str, Rate]:
    """The configured rates of ``action`` per scope (settings hold ``(limit, window_s)`` pairs,
    parsed by ``config.env.env_rates`` at start-up)."""
    pairs = {
        "battle": settings.RATE_LIMIT_BATTLES,
        "vote": settings.RATE_LIMIT_VOTES,
        "download": settings.RATE_LIMIT_DOWNLOADS,
    }[action]
    return {
        scope: Rate(limit=limit, window_s=window_s) for scope, (limit, window_s) in pairs.items()
    }


def rate_limit_network(request: HttpRequest, *, action: Action) -> None:
    """Rate-limit ``action`` per network prefix and for everybody, without a voter (a download
    of an arena's votes is not a vote and creates no voter)."""
    rate_limit_check(
        action=action,
        identities={"prefix": prefix_hash(client_ip(request)) or "unknown", "global": "all"},
    )


def rate_limit_now() -> float:
    """The limiter's clock (seconds since the epoch); tests replace it to cross windows."""
    return time.time()


def _window_phrase(window_s: int) -> str:
    named = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    if window_s in named:
        return f"per {named[window_s]}"
    for size, unit in ((86400, "days"), (3600, "hours"), (60, "minutes")):
        if window_s % size == 0:
            return f"per {window_s // size} {unit}"
    return f"per {window_s} seconds"


def _refusal(*, action: Action, scope: str, rate: Rate, retry_after_s: int) -> RateLimited:
    noun = _ACTION_NOUNS[action]
    per = _window_phrase(rate.window_s)
    if scope == "global":
        what = (
            f"The arena is receiving too many {noun} right now: "
            f"at most {rate.limit} {per} from everyone together."
        )
    else:
        what = f"Too many {noun} from {_SCOPE_SOURCES[scope]}: at most {rate.limit} {per}."
    return RateLimited(
        f"{what} Try again in {retry_after_s} s.",
        detail={
            "scope": scope,
            "limit": rate.limit,
            "window_s": rate.window_s,
            "retry_after_s": retry_after_s,
        },
    )


def _hit(*, key: str, window_s: int) -> int:
    """Count one request in the window ``key`` and return the window's count so far.

    The counter lives one window length (plus a second) from its first hit: long enough to
    outlive its window whenever the window began, and independent of ``rate_limit_now`` (the
    cache expires keys by the real clock, which a test's fake limiter clock does not move).
    """
    ttl = window_s + 1
    cache.add(key, 0, timeout=ttl)
    try:
        return int(cache.incr(key))
    except ValueError:  # the key expired between add and incr: this is the window's first hit
        cache.add(key, 1, timeout=ttl)
        return 1


def rate_limit_check(*, action: Action, identities: dict[str, str]) -> None:
    """Count one ``action`` against each limited scope; raise ``RateLimited`` past a limit.

    ``identities`` maps a scope to the identity it counts (a voter id, a prefix hash,
    ``"all"``); a scope without an identity is skipped. Does nothing when
    ``RATE_LIMITS_ENABLED`` is off. A cache outage lets requests through (logged): throttling
    is a defence, and an unreachable Redis must not stop every vote.
    """
    if not settings.RATE_LIMITS_ENABLED:
        return
    rates = _rates(action)
    now = rate_limit_now()
    counters: list[tuple[str, Rate, float]] = []  # (scope, rate, its window's end)
    keys = []
    for scope in SCOPES:
        rate, identity = rates.get(scope), identities.get(scope)
        if rate is None or not identity:
            continue
        window = int(now // rate.window_s)
        counters.append((scope, rate, float((window + 1) * rate.window_s)))
        keys.append(f"arena:rl:{action}:{scope}:{identity}:{rate.window_s}:{window}")
    if not counters:
        return
    try:
        refused = _count(keys, [rate for _, rate, _ in counters])
    except RedisError:
        logger.warning("rate limit cache unavailable; letting the request through")
        return
    if refused is not None:
        scope, rate, window_end = counters[refused]
        retry = max(1, math.ceil(window_end - now))
        raise _refusal(action=action, scope=scope, rate=rate, retry_after_s=retry)


def _count(keys: list[str], rates: list[Rate]) -> int | None:
    """Count one hit in each window, narrowest first, up to the first past its limit; its
    index, or None. On Redis one round trip (``config.cache``); elsewhere two calls each."""
    count_hits = getattr(cache, "count_hits", None)
    if count_hits is not None:
        refused, _ = count_hits(
            [(key, rate.limit, rate.window_s + 1) for key, rate in zip(keys, rates, strict=True)]
        )
        return refused
    for index, (key, rate) in enumerate(zip(keys, rates, strict=True)):
        if _hit(key=key, window_s=rate.window_s) > rate.limit:
            return index
    return None


def rate_limit_request(request: HttpRequest, *, action: Action) -> None:
    """Rate-limit ``action`` for this request's voter, network prefix and everybody.

    With a voter cookie, the voter scope is counted first and reads only the signed cookie, so
    one browser's refused requests spend neither its network's nor the global budget. Without
    one, the network and global scopes are counted first, so a refused cookieless request (a
    script dropping cookies) creates no Voter row; only then is the new voter created and counted.
    """
    network = {"prefix": prefix_hash(client_ip(request)) or "unknown", "global": "all"}
    voter_id = voter_cookie(request)
    if voter_id:
        rate_limit_check(action=action, identities={"voter": str(voter_id), **network})
    else:
        rate_limit_check(action=action, identities=network)
        voter = request_voter(request)
        rate_limit_check(action=action, identities={"voter": str(voter.public_id)})
