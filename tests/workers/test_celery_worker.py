"""End to end through a real Celery worker process over the real broker.

CI uses Redis (REDIS_URL); locally without it the embedded filesystem broker. The worker runs as a
subprocess against the same test database, on a queue of its own so no other message reaches it.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import pytest

from arena.models import Asset, AssetStatus, GenerativeModel, VoteExclusion, VoterFlag
from arena.services import asset_request
from config.celery import app
from tests.factories import ArenaFactory, GenerativeModelFactory, PromptFactory
from tests.workers.real_worker import (
    WORKER_WAIT_S,
    start_worker,
    stop_worker,
    wait_until_idle,
    wait_until_settled,
)
from tests.workers.test_http_backend import Reply, ScriptedApi, sample
from workers.cache import cache_top_up
from workers.media import sniff_format, validate
from workers.ops import queue_depths
from workers.tasks import generate_asset_enqueue, reap_stale_generations

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_lowers_its_cpu_priority_when_it_starts() -> None:
    """The signal handler, in a process of its own (a niceness cannot be raised back)."""
    from celery import signals

    from config.celery import lower_cpu_priority

    connected = [
        r() if isinstance(r, weakref.ReferenceType) else r for _, r in signals.worker_init.receivers
    ]
    assert lower_cpu_priority in connected
    code = (
        "import os, django; django.setup(); from config.celery import lower_cpu_priority; "
        "before = os.getpriority(os.PRIO_PROCESS, 0); lower_cpu_priority(); "
        "print(before, os.getpriority(os.PRIO_PROCESS, 0))"
    )
    for nice, lowered_by in (("10", 10), ("0", 0)):
        env = {**os.environ, "WORKER_NICE": nice, "ARENA_NO_BOOTSTRAP": "1"}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        before, after = map(int, done.stdout.split())
        assert after == min(19, before + lowered_by), done.stderr


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

    assets = wait_until_settled(asset_ids, worker)

    assert [a.status for a in assets] == [AssetStatus.READY] * 4, [a.error for a in assets]
    # Served normalised (the WebM clip as MP4); the model's own file is kept for the reveal.
    assert [(a.original_fmt, a.fmt) for a in assets] == [
        ("png", "png"), ("webm", "mp4"), ("glb", "glb"), ("ply", "ply")
    ]  # fmt: skip
    for asset in assets:
        path = Path(asset.file.path)
        assert path.parent == worker["media"] / "assets"
        data = path.read_bytes()
        info = validate(data, asset.fmt)
        assert info.media_type == asset.media_type
        assert asset.size_bytes == len(data)
        assert asset.attempts == 1
        if asset.original:
            assert sniff_format(Path(asset.original.path).read_bytes()) == asset.original_fmt
    assert assets[1].original, "the WebM original is kept"
    assert validate(Path(assets[3].file.path).read_bytes(), "ply").detail["splats"] == 4000


def test_the_same_job_delivered_twice_generates_once(worker: dict[str, Any], settings: Any) -> None:
    settings.MEDIA_ROOT = worker["media"]
    model = GenerativeModelFactory.create(queue=worker["queue"])
    asset, _ = asset_request(model=model, prompt=PromptFactory.create())

    generate_asset_enqueue(asset_id=asset.pk, queue=model.queue)
    generate_asset_enqueue(asset_id=asset.pk, queue=model.queue)
    (settled,) = wait_until_settled([asset.pk], worker)
    deadline = time.monotonic() + 30
    while "'skipped'" not in worker["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.2)  # the second delivery is consumed after the first finished

    assert "'skipped'" in worker["log"].read_text()
    settled.refresh_from_db()
    assert settled.status == AssetStatus.READY
    assert settled.attempts == 1
    assert len(list((worker["media"] / "assets").glob(f"{settled.public_id}*"))) == 1


def _wait_for_status(asset_id: int, status: str, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if Asset.objects.filter(pk=asset_id, status=status).exists():
            return
        time.sleep(0.2)
    pytest.fail(f"asset {asset_id} never became {status}:\n{log.read_text()[-3000:]}")


def test_a_worker_killed_mid_generation_does_not_strand_its_asset(
    settings: Any, tmp_path: Path
) -> None:
    queue = f"gen.test-kill-{uuid.uuid4().hex[:6]}"
    media, log = tmp_path / "media", tmp_path / "worker.log"
    settings.MEDIA_ROOT = media
    model = GenerativeModelFactory.create(
        queue=queue, backend_config={"quality": 2, "style": 0, "delay_s": 30}
    )
    asset, _ = asset_request(model=model, prompt=PromptFactory.create())
    doomed = start_worker(queue, media, log)
    try:
        generate_asset_enqueue(asset_id=asset.pk, queue=queue)
        _wait_for_status(asset.pk, AssetStatus.RUNNING, 60, log)
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool child, mid-generation
        doomed.wait()
    time.sleep(1.1)
    assert Asset.objects.get(pk=asset.pk).status == AssetStatus.RUNNING

    GenerativeModel.objects.filter(pk=model.pk).update(backend_config={"quality": 2, "style": 0})
    assert reap_stale_generations(silent_for_s=1) == {"reaped": 1, "resent": 0, "queued": 1}
    rescuer = start_worker(queue, media, log)
    try:
        _wait_for_status(asset.pk, AssetStatus.READY, WORKER_WAIT_S, log)
    finally:
        stop_worker(rescuer)

    recovered = Asset.objects.get(pk=asset.pk)
    assert recovered.attempts == 2
    assert validate(Path(recovered.file.path).read_bytes(), "png").media_type == "image"


def test_the_top_up_task_fills_the_cache_through_the_worker(
    worker: dict[str, Any], settings: Any
) -> None:
    settings.MEDIA_ROOT = worker["media"]
    arena = ArenaFactory.create()
    models = GenerativeModelFactory.create_batch(2, queue=worker["queue"])
    arena.generative_models.add(*models)
    PromptFactory.create_batch(3, prompt_set=arena.prompt_set)

    first = cache_top_up(arenas=[arena])
    assets = wait_until_settled(list(Asset.objects.values_list("pk", flat=True)), worker)

    assert (first.created, first.queued) == (6, 6)
    assert [a.status for a in assets] == [AssetStatus.READY] * 6
    assert cache_top_up(arenas=[arena]).queued == 0


def test_jobs_go_only_to_their_models_queue(worker: dict[str, Any], settings: Any) -> None:
    settings.MEDIA_ROOT = worker["media"]
    elsewhere = f"gen.test-elsewhere-{uuid.uuid4().hex[:6]}"
    here = GenerativeModelFactory.create(queue=worker["queue"])
    there = GenerativeModelFactory.create(queue=elsewhere)
    prompt = PromptFactory.create()
    mine, _ = asset_request(model=here, prompt=prompt)
    theirs, _ = asset_request(model=there, prompt=prompt)
    try:
        generate_asset_enqueue(asset_id=theirs.pk, queue=there.queue)
        generate_asset_enqueue(asset_id=mine.pk, queue=here.queue)
        wait_until_settled([mine.pk], worker)

        assert Asset.objects.get(pk=theirs.pk).status == AssetStatus.PENDING
        assert queue_depths([elsewhere])[0].messages == 1
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(elsewhere)


def _http_model(api: ScriptedApi, queue: str) -> GenerativeModel:
    return GenerativeModelFactory.create(
        queue=queue,
        backend="http",
        backend_config={
            "submit_url": f"{api.url}/v1/generate",
            "result": ["output", "url"],
            "timeout_s": 20,
        },
    )


def test_a_transient_error_is_retried_by_the_worker(worker: dict[str, Any], settings: Any) -> None:
    settings.MEDIA_ROOT = worker["media"]
    api = ScriptedApi()
    try:
        api.routes[("POST", "/v1/generate")] = [
            Reply(503, {"error": "overloaded"}),
            Reply(200, {"output": {"url": f"{api.url}/files/out.png"}}),
        ]
        api.routes[("GET", "/files/out.png")] = [
            Reply(200, sample("png"), {"Content-Type": "image/png"})
        ]
        asset, _ = asset_request(
            model=_http_model(api, worker["queue"]), prompt=PromptFactory.create()
        )

        generate_asset_enqueue(asset_id=asset.pk, queue=worker["queue"], backend="http")
        (settled,) = wait_until_settled([asset.pk], worker)
    finally:
        api.close()

    assert settled.status == AssetStatus.READY, settled.error
    assert settled.attempts == 2
    assert len(api.requests_to("/v1/generate")) == 2


def test_a_job_the_remote_app_rejects_fails_for_good(worker: dict[str, Any], settings: Any) -> None:
    settings.MEDIA_ROOT = worker["media"]
    api = ScriptedApi()
    try:
        api.routes[("POST", "/v1/generate")] = [
            Reply(400, {"error": "prompt rejected by the model"})
        ]
        asset, _ = asset_request(
            model=_http_model(api, worker["queue"]), prompt=PromptFactory.create()
        )

        generate_asset_enqueue(asset_id=asset.pk, queue=worker["queue"], backend="http")
        (settled,) = wait_until_settled([asset.pk], worker)
    finally:
        api.close()

    assert settled.status == AssetStatus.FAILED
    assert "400" in settled.error or "rejected" in settled.error
    assert settled.attempts == 1
    assert not settled.file


def test_the_fraud_scan_runs_on_the_worker_and_excludes_the_promoter(
    worker: dict[str, Any],
) -> None:
    from tests.arena.test_fraud import promoter_votes
    from workers.tasks import scan_fraud

    arena, bot = promoter_votes()

    scan_fraud.apply_async(queue=worker["queue"])
    deadline = time.monotonic() + WORKER_WAIT_S
    while not VoteExclusion.objects.filter(vote__voter=bot).exists():
        assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
        assert time.monotonic() < deadline, worker["log"].read_text()[-3000:]
        time.sleep(0.3)
    wait_until_idle(worker)  # the scan has finished writing (flags, trust, exclusions)

    assert VoteExclusion.objects.filter(vote__voter=bot).count() == 50
    assert set(VoteExclusion.objects.values_list("vote__voter", flat=True)) == {bot.pk}
    assert VoterFlag.objects.get(arena=arena, voter=bot).verdict == "excluded"


def test_the_periodic_scan_on_the_worker_excludes_a_campaign_spread_over_networks(
    worker: dict[str, Any],
) -> None:
    from arena.models import Campaign
    from tests.arena.test_fraud import distributed_campaign
    from workers.tasks import scan_fraud

    world = distributed_campaign()
    sybils = world["sybils"]

    scan_fraud.apply_async(queue=worker["queue"])
    deadline = time.monotonic() + WORKER_WAIT_S
    while VoteExclusion.objects.filter(vote__voter__in=sybils).count() < 6 * len(sybils):
        assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
        assert time.monotonic() < deadline, worker["log"].read_text()[-3000:]
        time.sleep(0.3)
    wait_until_idle(worker)  # the scan has finished: nothing writes under the teardown's flush

    assert set(VoteExclusion.objects.values_list("vote__voter", flat=True)) == {
        v.pk for v in sybils
    }
    campaign = Campaign.objects.get(arena=world["arena"])
    assert campaign.model_id == world["target"] and campaign.members == len(sybils)


_DRAIN_QUEUE: list[str] = []


def drain_on_the_test_worker(*, arena_id: int) -> None:
    """The production sender, to the test worker's own queue."""
    from workers.tasks import tallies_drain_enqueue

    tallies_drain_enqueue(arena_id=arena_id, queue=_DRAIN_QUEUE[0])


def test_the_worker_counts_votes_within_two_seconds_of_their_commit(
    worker: dict[str, Any], settings: Any
) -> None:
    from arena.models import ArenaTally, PendingVote, Vote
    from tests.arena.test_aggregator import assert_tallies_equal_a_replay
    from tests.arena.test_leaderboards import _cast, _pairwise_first_wins
    from tests.factories import VoterFactory, ready_arena

    _DRAIN_QUEUE[:] = [worker["queue"]]
    settings.TALLY_DRAIN_SENDER = f"{__name__}.drain_on_the_test_worker"
    settings.TALLY_DRAIN_ON_COMMIT = True
    settings.TALLY_DRAIN_DEBOUNCE_S = 1
    arena = ready_arena(models=3)
    voter, rng = VoterFactory.create(), random.Random(4)

    lags = []
    for _ in range(6):
        vote = _cast(arena, voter, "pairwise", rng, _pairwise_first_wins)  # commits at once
        committed = time.monotonic()
        while PendingVote.objects.filter(vote=vote).exists():
            assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
            assert time.monotonic() - committed < 30, worker["log"].read_text()[-3000:]
            time.sleep(0.02)
        lags.append(time.monotonic() - committed)
    lags = lags[1:]  # the first waits for the worker to have started

    assert ArenaTally.objects.get(arena=arena).votes == Vote.objects.filter(arena=arena).count()
    assert_tallies_equal_a_replay(arena)
    # The debounce window (1 s), the broker's latency and one drain; the worker is idle here,
    # benchmarks/load.py measures the lag under load.
    assert max(lags) < 2.0, lags


def test_check_now_runs_on_a_worker_of_the_models_queue_and_reports_back(
    worker: dict[str, Any],
) -> None:
    from arena.models import BackendCheckStatus
    from arena.services import model_checks_request

    queue = worker["queue"]
    builtin = GenerativeModelFactory.create(queue=queue)
    gpu = GenerativeModelFactory.create(
        queue=queue, backend="diffusers", backend_config={"weights_path": "/models/sdxl"}
    )
    unknown = GenerativeModelFactory.create(queue=queue, backend="teleport", backend_config={})
    ids = [builtin.pk, gpu.pk, unknown.pk]

    model_checks_request(models=[builtin, gpu, unknown])  # autocommit: sent at once

    deadline = time.monotonic() + WORKER_WAIT_S
    while GenerativeModel.objects.filter(pk__in=ids, check_status="pending").exists():
        assert worker["process"].poll() is None, worker["log"].read_text()[-3000:]
        assert time.monotonic() < deadline, worker["log"].read_text()[-3000:]
        time.sleep(0.2)
    checked = {m.pk: m for m in GenerativeModel.objects.filter(pk__in=ids)}
    assert [checked[pk].check_status for pk in ids] == [
        BackendCheckStatus.OK, BackendCheckStatus.FAILED, BackendCheckStatus.FAILED,
    ]  # fmt: skip
    # Without torch the worker says so; with it (CI installs the CPU build), that this machine
    # has no CUDA device for a model that asks for one.
    if importlib.util.find_spec("torch") and importlib.util.find_spec("diffusers"):
        assert "no CUDA device" in checked[gpu.pk].check_message
    else:
        assert "not installed: torch" in checked[gpu.pk].check_message
    assert "unknown backend 'teleport'" in checked[unknown.pk].check_message
    assert all(m.check_worker.startswith(f"{queue}-") for m in checked.values())
