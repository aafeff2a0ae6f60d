"""Typed readers for settings that come from the environment.

Every helper fails loudly (``ImproperlyConfigured``) on a value it cannot parse, naming the
variable, instead of silently falling back to a default: a typo in production config must stop
the process at start-up, not at the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    return (os.environ if environ is None else environ).get(name)


def env_str(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean (use one of 1/0, true/false, yes/no, on/off)"
    )


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")
    return number


def env_list(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(
    name: str, default: str, *, schemes: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> str:
    """A URL whose scheme must be one of ``schemes`` (``redis://``, ``postgres://`` ...)."""
    value = env_str(name, default, environ=environ).strip()
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name}={value!r} must be a URL starting with one of: {', '.join(s + '://' for s in schemes)}"
        )
    return value


# --- rate limits ("voter=60/m,prefix=600/m,global=6000/m"), read by arena.ratelimit ------------

RATE_SCOPES = ("voter", "prefix", "global")
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^(?P<limit>\d+)\s*/\s*(?P<count>\d*)\s*(?P<unit>[a-z]+)$")


def rate_limits_parse(*, name: str, text: str) -> dict[str, tuple[int, int]]:
    """Parse ``"voter=60/m,prefix=600/m,global=6000/m"`` into ``(limit, window_s)`` per scope.

    A rate is ``<limit>/<window>`` where the window is a unit (``s``, ``m``, ``h``, ``d``), or a
    count and a unit (``10/30s``). Scopes left out are not limited; an empty string limits
    nothing. Raises ``ImproperlyConfigured`` naming ``name`` on anything else.
    """
    rates: dict[str, tuple[int, int]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        scope, sep, rate = (s.strip() for s in item.partition("="))
        if not sep or scope not in RATE_SCOPES:
            raise ImproperlyConfigured(
                f"{name}: {item!r} must be <scope>=<limit>/<window> with a scope among "
                f"{', '.join(RATE_SCOPES)}, e.g. voter=60/m"
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
        rates[scope] = (limit, count * _UNIT_S[match["unit"]])
    return rates


def env_rates(
    name: str, default: str, *, environ: Mapping[str, str] | None = None
) -> dict[str, tuple[int, int]]:
    return rate_limits_parse(name=name, text=env_str(name, default, environ=environ))
