"""Request ids, structured logs, request metrics and Sentry: what operators read when things go wrong.

- ``RequestMiddleware`` gives each request an id (the client's ``X-Request-ID`` when it is a sane
  token, else a new one), returns it in the response header, and times the request into the
  ``arena_http_request_seconds`` histogram by route (the URL pattern, not the path: bounded labels).
- ``RequestIdFilter`` puts that id (and, in a Celery worker, the task's id and name) on every log
  record; ``JsonFormatter`` writes one JSON object per line (``LOG_FORMAT=json``).
- ``sentry_init`` turns Sentry on (Django and Celery integrations) when ``SENTRY_DSN`` is set.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
REQUEST_ID_HEADER = "X-Request-ID"


def _current_task() -> tuple[str, str]:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return "", ""
    task = current_task
    if not task or not getattr(task, "request", None) or not task.request.id:
        return "", ""
    return str(task.request.id), str(task.name)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id``, ``task_id`` and ``task_name`` to every record (empty when none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"  # "-": not in a request
        record.task_id, record.task_name = _current_task()
        return True


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "task_id",
    "task_name",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, extras and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "task_id", "task_name"):
            if getattr(record, key, "") not in ("", "-"):
                entry[key] = getattr(record, key)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False)


_REQUEST_ID_META = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")
# A label per method a client may send would let anyone add series to /metrics without end.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + (match.route or match.view_name or "")


class RequestMiddleware:
    """Request id in, request id out, and the request's latency into the metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from frontend.metrics import REQUEST_SECONDS, labelled

        given = request.META.get(_REQUEST_ID_META, "")  # not request.headers: built from all
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        method = request.method if request.method in _METHODS else "other"
        labelled(REQUEST_SECONDS, method, _route(request), str(response.status_code)).observe(
            time.perf_counter() - started
        )
        response[REQUEST_ID_HEADER] = request_id
        return response


def sentry_init(dsn: str, *, environment: str, traces_sample_rate: float, **options: Any) -> None:
    """Sentry with the Django and Celery integrations, and no personal data sent."""
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install '.[ops]' "
            "(or -r requirements/ops.txt)"
        ) from exc
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,  # voters' addresses never leave the platform
        integrations=[DjangoIntegration(), CeleryIntegration()],
        **options,
    )
