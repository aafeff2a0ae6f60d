"""Probes for load balancers and orchestrators.

``/healthz``: the process is up and answers (no dependencies: a liveness probe must not restart
a web process because the database is away). ``/readyz``: the database, the cache and the
Celery broker answer, so this replica can serve voters (a readiness probe takes it out of the
pool until they do).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from workers.ops import broker_check


def _database() -> str:
    for alias in connections:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:  # any driver error means not ready
            connections[alias].close_if_unusable_or_obsolete()
            return f"{alias}: {type(exc).__name__}: {exc}"[:300]
    return ""


def _cache() -> str:
    key, value = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=10)
        ok = cache.get(key) == value
        cache.delete(key)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return "" if ok else "a value written to the cache did not come back"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "cache": _cache,
    "broker": broker_check,
}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    failures = {name: why for name, check in CHECKS.items() if (why := check())}
    checks = {name: failures.get(name, "ok") for name in CHECKS}
    if failures:
        return JsonResponse(
            {"error": f"not ready: {', '.join(failures)} unreachable", "checks": checks},
            status=503,
        )
    return JsonResponse({"status": "ready", "checks": checks})
