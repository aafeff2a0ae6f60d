"""The one Celery app. Generation tasks go to per-model queues (``gen.*``); light work to ``light``."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


@signals.worker_init.connect
def lower_cpu_priority(**_: Any) -> None:
    """Lower the worker's CPU priority by ``WORKER_NICE`` before its pool (and embedded beat)
    start, so they inherit it: background work yields to web requests on a shared host."""
    from django.conf import settings

    if settings.WORKER_NICE:
        os.nice(settings.WORKER_NICE)
