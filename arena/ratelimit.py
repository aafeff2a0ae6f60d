"""Rate limits on battle creation and votes: fixed windows counted in the Django cache.

Each action (``battle``, ``vote``) has up to three scopes, checked narrowest first:

* ``voter``: one browser (the voter cookie's public id);
* ``prefix``: one network (the keyed hash of the client's /24 or /48, never the address);
* ``global``: everybody together.

A counter is one cache key per (action, scope, identity, window), created with ``cache.add``
(``SET NX``) and bumped with ``cache.incr`` (``INCR`` on Redis), so concurrent web processes never
lose a count. Django's ``incr`` checks that the key exists first: a request delayed past its
window's end can leave a counter of a past window without an expiry (a small leak, never a
wrong count). Windows are fixed (aligned to the epoch), which
lets a burst reach twice the limit across a window boundary; that is acceptable for throttling
scripts and keeps each check at two cache round trips per scope.

Scopes are checked narrowest first and the check stops at the first refusal, so one script
hammering with one cookie exhausts only its own budget, not its network's or the arena's.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from redis.exceptions import RedisError

from arena.errors import RateLimited
from arena.privacy import prefix_hash

logger = logging.getLogger(__name__)

Action = Literal["battle", "vote"]
SCOPES = ("voter", "prefix", "global")  # checked in this order: narrowest first

_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^(?P<limit>\d+)\s*/\s*(?P<count>\d*)\s*(?P<unit>[a-z]+)$")
_ACTION_NOUNS = {"battle": "new battles", "vote": "votes"}
_SCOPE_SOURCES = {"voter": "this browser", "prefix": "your network"}


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests per ``window_s`` seconds."""

    limit: int
    window_s: int


def rate_limits_parse(*, name: str, text: str) -> dict[str, Rate]:
    """Parse ``"voter=60/m,prefix=600/m,global=6000/m"`` into a rate per scope.

    A rate is ``<limit>/<window>`` where the window is a unit (``s``, ``m``, ``h``, ``d``), or a
    count and a unit (``10/30s``). Scopes left out are not limited; an empty string limits
    nothing. Raises ``ImproperlyConfigured`` naming ``name`` on anything else.
    """
    rates: dict[str, Rate] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        scope, sep, rate = (s.strip() for s in item.partition("="))
        if not sep or scope not in SCOPES:
            raise ImproperlyConfigured(
                f"{name}: {item!r} must be <scope>=<limit>/<window> with a scope among "
                f"{', '.join(SCOPES)}, e.g. voter=60/m"
            )
        if scope in rates:
            raise ImproperlyConfigured(f"{name}: the scope {scope!r} is given twice")
        match = _RATE.match(rate.lower())
        if not match or match["unit"] not in _UNIT_S:
            raise ImproperlyConfigured(
                f"{name}: {rate!r} is not a rate; write <limit>/<window> such as 60/m, 1000/h "
                "or 10/30s (units s, m, h, d)"
            )
        limit, count = int(match["limit"]), int(match["count"] or 1)
        if limit < 1 or count < 1:
            raise ImproperlyConfigured(f"{name}: {rate!r} must allow at least 1 per window")
        rates[scope] = Rate(limit=limit, window_s=count * _UNIT_S[match["unit"]])
    return rates


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


def _hit(*, key: str, window_end: float, now: float) -> int:
    """Count one request in the window ``key`` and return the window's count so far."""
    ttl = math.ceil(window_end - now) + 1  # outlive the window by a second, then vanish
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
    rates: dict[str, Rate] = (
        settings.RATE_LIMIT_BATTLES if action == "battle" else settings.RATE_LIMIT_VOTES
    )
    now = rate_limit_now()
    for scope in SCOPES:
        rate, identity = rates.get(scope), identities.get(scope)
        if rate is None or not identity:
            continue
        window = int(now // rate.window_s)
        window_end = float((window + 1) * rate.window_s)
        key = f"arena:rl:{action}:{scope}:{identity}:{rate.window_s}:{window}"
        try:
            count = _hit(key=key, window_end=window_end, now=now)
        except RedisError:
            logger.warning("rate limit cache unavailable; letting the request through")
            return
        if count > rate.limit:
            retry = max(1, math.ceil(window_end - now))
            raise _refusal(action=action, scope=scope, rate=rate, retry_after_s=retry)


def rate_limit_request(request: HttpRequest, *, action: Action) -> None:
    """Rate-limit ``action`` for this request's voter, network prefix and everybody.

    With a voter cookie, the voter scope is counted first and reads only the signed cookie, so
    one browser's refused requests spend neither its network's nor the global budget. Without
    one, the network and global scopes are counted first, so a refused cookieless request (a
    script dropping cookies) creates no Voter row; only then is the new voter created and counted.
    """
    # Imported here: arena.middleware imports the models, and the settings import this module.
    from arena.middleware import _COOKIE_SALT, client_ip, request_voter

    network = {"prefix": prefix_hash(client_ip(request)) or "unknown", "global": "all"}
    voter_id = request.get_signed_cookie(settings.VOTER_COOKIE_NAME, default="", salt=_COOKIE_SALT)
    if voter_id:
        rate_limit_check(action=action, identities={"voter": str(voter_id), **network})
    else:
        rate_limit_check(action=action, identities=network)
        voter = request_voter(request)
        rate_limit_check(action=action, identities={"voter": str(voter.public_id)})
