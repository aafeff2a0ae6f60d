"""A Celery worker over Redis outlives a Redis restart (``workers.redis_broker``).

Kombu's stock Redis transport makes a worker holding unacknowledged messages (a countdown
task is one) exit with "Unrecoverable error" when Redis goes away. The test runs a Redis of its
own on a free port, so the suite's Redis is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings as django_settings

pytestmark = pytest.mark.worker

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    assert REDIS_SERVER is not None
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"redis-server did not listen on {port}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def broker() -> Iterator[dict[str, object]]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    state: dict[str, object] = {"port": port, "redis": _start_redis(port)}
    try:
        yield state
    finally:
        _stop(state["redis"])  # type: ignore[arg-type]


def _successes(log: Path) -> int:
    return log.read_text(errors="replace").count("succeeded in")


def _wait_for_successes(log: Path, worker: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 90
    while _successes(log) < count:
        assert worker.poll() is None, log.read_text(errors="replace")[-4000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(0.2)


def test_a_worker_holding_a_countdown_task_outlives_a_redis_restart(
    broker: dict[str, object], tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{broker['port']}/0"
    queue = f"test-redis-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    # (Without PYTEST_XDIST_WORKER: tests.settings would point an xdist worker's broker back at
    # the suite's Redis.)
    inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    env = {**inherited, "CELERY_BROKER_URL": url, "ARENA_NO_BOOTSTRAP": "1", "WORKER_NICE": "0"}
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "1",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{queue}@%h", "--loglevel", "INFO"],
            cwd=django_settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    sender = Celery(broker=url)
    try:
        sender.send_task("celery.accumulate", args=[1], queue=queue)
        _wait_for_successes(log, worker, 1)
        # Held, unacknowledged, by the worker until it is due: what the crash needed.
        sender.send_task("celery.accumulate", args=[2], queue=queue, countdown=600)
        time.sleep(1.5)

        _stop(broker["redis"])  # type: ignore[arg-type]
        time.sleep(3)
        broker["redis"] = _start_redis(int(broker["port"]))  # type: ignore[call-overload]
        sender.send_task("celery.accumulate", args=[3], queue=queue)
        _wait_for_successes(log, worker, 2)

        text = log.read_text(errors="replace")
        assert worker.poll() is None, text[-4000:]
        assert "Unrecoverable error" not in text
        assert f":{broker['port']}/0" in text, "the worker used the test's own Redis"
        assert "Connection to broker lost" in text, "Redis did go away under the worker"
        assert "restored" in text.lower() or "Restoring" in text
    finally:
        sender.close()
        with_group = worker.poll() is None
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            if with_group:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


@pytest.mark.parametrize(
    ("url", "transport", "tls"),
    [
        ("redis://127.0.0.1:1/0", "workers.redis_broker", "False"),
        # kombu turns TLS on by the transport's name: rediss keeps its own.
        ("rediss://127.0.0.1:1/0", "kombu.transport.redis", "True"),
    ],
)
def test_a_redis_broker_url_selects_the_transport_that_survives_restarts(
    url: str, transport: str, tls: str
) -> None:
    code = (
        "import django; django.setup(); from config.celery import app; "
        "c = app.connection_for_write(); "
        "print(type(c.transport).__module__, bool(c.ssl))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **os.environ,
            "CELERY_BROKER_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ARENA_NO_BOOTSTRAP": "1",
        },
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.stdout.strip() == f"{transport} {tls}", done.stderr
