"""Fixtures for the worker tests: a real Celery worker process (``worker``), and for the
remote-backend tests a real Gradio app in a virtual environment of its own.

Gradio is a test-only dependency with a large dependency tree of its own, so it lives in
``var/gradio-venv/<key>/`` (``key`` hashes the requirements and the Python version), built on
first use and reused afterwards; a file lock serialises concurrent builders (pytest-xdist).
Without it (no package index reachable, a failed install) the gradio tests are skipped,
unless ``ARENA_REQUIRE_GRADIO=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workers.real_worker import new_queue, start_worker, stop_worker

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "gradio_app" / "app.py"
GRADIO_REQUIREMENTS: tuple[str, ...] = ("gradio==6.31.0",)
VENV_ROOT = ROOT / "var" / "gradio-venv"
INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 90


def _unavailable(reason: str) -> None:
    if os.environ.get("ARENA_REQUIRE_GRADIO") == "1":
        pytest.fail(f"ARENA_REQUIRE_GRADIO=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _venv_key() -> str:
    spec = "\n".join([sys.version.split()[0], *GRADIO_REQUIREMENTS])
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def gradio_python() -> Path:
    """The Python of the gradio venv, built if missing; skips/fails the test if impossible."""
    key = _venv_key()
    venv = VENV_ROOT / key
    python = venv / "bin" / "python"
    ready = venv / ".arena-ready"
    if ready.exists():
        return python
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    with (VENV_ROOT / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same venv
        if ready.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a half-built one from an interrupted run
        log = VENV_ROOT / f"{key}.log"
        try:
            with log.open("w") as out:
                subprocess.run(
                    [sys.executable, "-m", "venv", str(venv)],
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=120,
                )
                subprocess.run(
                    [str(python), "-m", "pip", "install", "-q", *GRADIO_REQUIREMENTS],
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=INSTALL_TIMEOUT_S,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            _unavailable(
                f"cannot build the gradio venv ({' '.join(GRADIO_REQUIREMENTS)}): {exc}; "
                f"{' | '.join(tail)}"
            )
        ready.write_text("\n".join(GRADIO_REQUIREMENTS) + "\n")
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def gradio_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of tests/workers/gradio_app/app.py running on 127.0.0.1 (see its docstring)."""
    python = gradio_python()
    from workers.generators import generate

    work = tmp_path_factory.mktemp("gradio-app")
    video = work / "clip.mp4"
    video.write_bytes(generate(fmt="mp4", prompt="a red cat", seed=1, quality=1).data)
    port = _free_port()
    (work / "tmp").mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(work / "tmp"),  # the app's outputs stay in pytest's temporary folder
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(work / "gradio-tmp"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    log_path = work / "app.log"
    url = f"http://127.0.0.1:{port}/"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python), str(APP), str(port), str(video)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                log_tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"the gradio test app exited with {process.returncode}:\n{log_tail}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                log_tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(
                    f"the gradio test app did not answer in {START_TIMEOUT_S} s:\n{log_tail}"
                )
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def worker(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A real Celery worker on a queue of its own, for the tests of one module
    (:mod:`tests.workers.real_worker`): its queue, media folder, process and log."""
    queue = new_queue()
    media = tmp_path_factory.mktemp("worker-media")
    log_path = tmp_path_factory.mktemp("worker-log") / "worker.log"
    with django_db_blocker.unblock():
        process = start_worker(queue, media, log_path)
    try:
        yield {"queue": queue, "media": media, "process": process, "log": log_path}
    finally:
        stop_worker(process)
