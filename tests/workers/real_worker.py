"""A real Celery worker process for the end-to-end tests (the ``worker`` fixture in conftest.py).

It runs as a subprocess against the test database, over the real broker (Redis where REDIS_URL
is set, else the embedded filesystem broker), on a queue of its own so no other message reaches
it, in its own process group so a test can kill the whole worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from arena.models import Asset, AssetStatus

WORKER_WAIT_S = 120


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(queue: str, media: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(media),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "GENERATION_RETRY_BACKOFF_S": "1",  # retries in about a second, not ten
        # Full priority: the suite's other process is no web tier to yield to, and a worker
        # yielding to it leaves the tests waiting on it several times as long.
        "WORKER_NICE": "0",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "1",
             "--without-gossip", "--without-mingle", "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h",
             "--loglevel", "INFO"],
            cwd=django_settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a test can kill the whole worker
        )  # fmt: skip


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_settled(
    asset_ids: list[int], worker: dict[str, Any], timeout_s: float = WORKER_WAIT_S
) -> list[Asset]:
    """The assets, by primary key, once every one is ready or failed (fails the test if the
    worker dies or takes longer than ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assets = list(Asset.objects.filter(pk__in=asset_ids).order_by("pk"))
        if all(a.status in (AssetStatus.READY, AssetStatus.FAILED) for a in assets):
            return assets
        assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
        time.sleep(0.3)
    pytest.fail(f"the worker did not finish in {timeout_s}s:\n{worker['log'].read_text()[-3000:]}")


def new_queue() -> str:
    return f"gen.test-{uuid.uuid4().hex[:8]}"


def wait_until_idle(worker: dict[str, Any], timeout_s: float = WORKER_WAIT_S) -> None:
    """Return once the worker has finished every task sent to it before this call.

    The worker runs one task at a time in the order sent, so a backend check sent now (a
    builtin model: no I/O) finishes after them. A test that ends while a task still writes
    would race its own teardown (the flush deadlocks with the worker's transaction)."""
    from arena.models import BackendCheckStatus, GenerativeModel
    from arena.services import model_checks_request
    from tests.factories import GenerativeModelFactory

    marker = GenerativeModelFactory.create(queue=worker["queue"])
    model_checks_request(models=[marker])
    deadline = time.monotonic() + timeout_s
    while GenerativeModel.objects.get(pk=marker.pk).check_status == BackendCheckStatus.PENDING:
        assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
        assert time.monotonic() < deadline, worker["log"].read_text()[-3000:]
        time.sleep(0.2)
