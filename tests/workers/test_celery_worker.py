"""End to end through a real Celery worker process over the real broker.

CI uses Redis (REDIS_URL); locally without it the embedded filesystem broker. The worker runs as a
subprocess against the same test database, on a queue of its own so no other message reaches it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from arena.models import Asset, AssetStatus
from arena.services import asset_request
from tests.factories import ArenaFactory, GenerativeModelFactory, PromptFactory
from workers.media import validate
from workers.tasks import generate_asset_enqueue

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WORKER_WAIT_S = 120


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def worker(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    queue = f"gen.test-{uuid.uuid4().hex[:8]}"
    media = tmp_path_factory.mktemp("worker-media")
    log_path = tmp_path_factory.mktemp("worker-log") / "worker.log"
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "arena",
                "worker",
                "-Q",
                queue,
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{queue}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield {"queue": queue, "media": media, "process": process, "log": log_path}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_settled(asset_ids: list[int], worker: dict[str, Any]) -> list[Asset]:
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline:
        assets = list(Asset.objects.filter(pk__in=asset_ids).order_by("pk"))
        if all(a.status in (AssetStatus.READY, AssetStatus.FAILED) for a in assets):
            return assets
        assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
        time.sleep(0.3)
    pytest.fail(
        f"the worker did not finish in {WORKER_WAIT_S}s:\n{worker['log'].read_text()[-3000:]}"
    )


def test_a_real_worker_generates_image_video_and_3d_assets(
    worker: dict[str, Any], settings: Any
) -> None:
    settings.MEDIA_ROOT = worker["media"]
    arena = ArenaFactory.create()
    prompt = PromptFactory.create(prompt_set=arena.prompt_set, text="a lighthouse at dusk")
    specs = [
        ("text-to-image", ["png"]),
        ("text-to-video", ["webm"]),
        ("image-to-3d", ["glb"]),
        ("image-to-3d", ["ply"]),
    ]
    asset_ids = []
    for task, formats in specs:
        model = GenerativeModelFactory.create(
            task=task, output_formats=formats, queue=worker["queue"]
        )
        asset, _ = asset_request(model=model, prompt=prompt)
        asset_ids.append(asset.pk)
        generate_asset_enqueue(asset_id=asset.pk, queue=model.queue)

    assets = _wait_until_settled(asset_ids, worker)

    assert [a.status for a in assets] == [AssetStatus.READY] * 4, [a.error for a in assets]
    for asset in assets:
        path = Path(asset.file.path)
        assert path.parent == worker["media"] / "assets"
        data = path.read_bytes()
        info = validate(data, asset.fmt)
        assert info.media_type == asset.media_type
        assert asset.size_bytes == len(data)
        assert asset.attempts == 1


def test_the_same_job_delivered_twice_generates_once(worker: dict[str, Any], settings: Any) -> None:
    settings.MEDIA_ROOT = worker["media"]
    model = GenerativeModelFactory.create(queue=worker["queue"])
    asset, _ = asset_request(model=model, prompt=PromptFactory.create())

    generate_asset_enqueue(asset_id=asset.pk, queue=model.queue)
    generate_asset_enqueue(asset_id=asset.pk, queue=model.queue)
    (settled,) = _wait_until_settled([asset.pk], worker)
    deadline = time.monotonic() + 30
    while "'skipped'" not in worker["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.2)  # the second delivery is consumed after the first finished

    assert "'skipped'" in worker["log"].read_text()
    settled.refresh_from_db()
    assert settled.status == AssetStatus.READY
    assert settled.attempts == 1
    assert len(list((worker["media"] / "assets").glob(f"{settled.public_id}*"))) == 1
