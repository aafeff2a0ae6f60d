"""One generation job, the reaper and the cache top-up, without a worker (see test_celery_worker)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from arena.models import Asset, AssetStatus, Battle, GenerativeModel
from arena.services import (
    asset_claim,
    asset_heartbeat,
    asset_request,
    assets_reap_stale,
    assets_retry_failed,
    battle_create_from_prompt,
)
from tests.arena.test_generation_port import SENT
from tests.factories import ArenaFactory, GenerativeModelFactory, PromptFactory, VoterFactory
from workers import backends
from workers.backends import BackendError, GenerationRequest, TransientBackendError
from workers.cache import cache_top_up
from workers.generation import asset_generate
from workers.generators import GeneratedFile
from workers.tasks import reap_stale_generations

pytestmark = pytest.mark.django_db


class ScriptedBackend:
    """Stands in for a remote generator: raises the scripted errors, then delegates to builtin."""

    name = "scripted"
    soft_time_limit_s = 10
    time_limit_s = 20

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def check_config(self, config: dict[str, Any], formats: list[str]) -> None:
        pass

    def generate(self, request: GenerationRequest) -> GeneratedFile:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return backends.BuiltinBackend().generate(request)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ScriptedBackend]]:
    def install(*errors: Exception) -> ScriptedBackend:
        backend = ScriptedBackend(list(errors))
        monkeypatch.setitem(backends._REGISTRY, "scripted", backend)
        return backend

    yield install


def _pending_asset(backend: str = "builtin") -> Asset:
    model = GenerativeModelFactory.create(backend=backend)
    asset, _ = asset_request(model=model, prompt=PromptFactory.create())
    return asset


def test_it_generates_a_pending_asset_once() -> None:
    asset = _pending_asset()

    assert asset_generate(asset_id=asset.pk, worker="w1") == "ready"
    assert asset_generate(asset_id=asset.pk, worker="w2") == "skipped"

    asset.refresh_from_db()
    assert (asset.status, asset.attempts, asset.worker) == (AssetStatus.READY, 1, "w1")
    assert asset.checksum and asset.size_bytes > 0


def test_a_transient_error_gives_the_row_back_for_a_retry(
    scripted: Callable[..., ScriptedBackend],
) -> None:
    scripted(TransientBackendError("503 from the remote app"))
    asset = _pending_asset("scripted")

    with pytest.raises(TransientBackendError):
        asset_generate(asset_id=asset.pk, final_attempt=False)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.PENDING
    assert "503" in asset.error

    assert asset_generate(asset_id=asset.pk) == "ready"
    asset.refresh_from_db()
    assert (asset.status, asset.attempts, asset.error) == (AssetStatus.READY, 2, "")


def test_a_transient_error_on_the_last_attempt_fails_for_good(
    scripted: Callable[..., ScriptedBackend],
) -> None:
    scripted(TransientBackendError("timed out after 300 s"))
    asset = _pending_asset("scripted")

    assert asset_generate(asset_id=asset.pk, final_attempt=True) == "failed"

    asset.refresh_from_db()
    assert asset.status == AssetStatus.FAILED
    assert "gave up after retries" in asset.error and "timed out" in asset.error


def test_a_permanent_error_fails_at_once_with_the_error_recorded(
    scripted: Callable[..., ScriptedBackend],
) -> None:
    backend = scripted(BackendError("remote app raised: CUDA out of memory"))
    asset = _pending_asset("scripted")

    assert asset_generate(asset_id=asset.pk, final_attempt=False) == "failed"

    asset.refresh_from_db()
    assert asset.status == AssetStatus.FAILED
    assert "CUDA out of memory" in asset.error
    assert backend.calls == 1


def test_a_corrupt_output_is_rejected_and_never_served(monkeypatch: pytest.MonkeyPatch) -> None:
    def corrupt(request: GenerationRequest) -> GeneratedFile:
        return GeneratedFile(
            data=b"\x89PNG\r\n\x1a\nnot really",
            extension="png",
            content_type="image/png",
            media_type="image",
        )

    monkeypatch.setattr(backends.BuiltinBackend, "generate", lambda self, request: corrupt(request))
    asset = _pending_asset()

    assert asset_generate(asset_id=asset.pk) == "failed"

    asset.refresh_from_db()
    assert asset.status == AssetStatus.FAILED
    assert "InvalidMedia" in asset.error
    assert not asset.file


def test_failed_assets_can_be_retried() -> None:
    asset = _pending_asset()
    Asset.objects.filter(pk=asset.pk).update(status=AssetStatus.FAILED, error="boom")

    assert assets_retry_failed(asset_ids=[asset.pk]) == [asset.pk]
    assert Asset.objects.get(pk=asset.pk).status == AssetStatus.PENDING


def test_the_reaper_returns_only_running_rows_whose_heartbeat_stopped() -> None:
    silent, beating, legacy = _pending_asset(), _pending_asset(), _pending_asset()
    long_ago = timezone.now() - timedelta(minutes=20)
    Asset.objects.filter(pk=silent.pk).update(
        status=AssetStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )
    # A long job that still beats is alive, however long ago it started.
    Asset.objects.filter(pk=beating.pk).update(
        status=AssetStatus.RUNNING, started_at=long_ago, heartbeat_at=timezone.now()
    )
    # Claimed before heartbeats existed: judged by its claim.
    Asset.objects.filter(pk=legacy.pk).update(
        status=AssetStatus.RUNNING, started_at=long_ago, heartbeat_at=None
    )

    assert sorted(assets_reap_stale(silent_for_s=90)) == sorted([silent.pk, legacy.pk])

    assert Asset.objects.get(pk=silent.pk).status == AssetStatus.PENDING
    assert Asset.objects.get(pk=beating.pk).status == AssetStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_while_its_backend_works(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.GENERATION_HEARTBEAT_S = 1
    asset = _pending_asset()
    original = backends.BuiltinBackend.generate
    seen: list[Any] = []

    def slow(self: Any, request: Any) -> Any:
        # Work until two beats after the claim have landed (a busy machine may delay a beat, so
        # wait on the beats rather than on the clock); a job that never beats ends at the deadline.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = Asset.objects.values("started_at", "heartbeat_at").get(pk=asset.pk)
            if not seen or seen[-1]["heartbeat_at"] != row["heartbeat_at"]:
                seen.append(row)
            if len(seen) >= 3:  # the claim's own stamp, then two beats
                break
            time.sleep(0.05)
        return original(self, request)

    monkeypatch.setattr(backends.BuiltinBackend, "generate", slow)

    assert asset_generate(asset_id=asset.pk, worker="w1") == "ready"

    claimed, first, second = seen[:3]
    assert claimed["heartbeat_at"] == claimed["started_at"]
    assert claimed["started_at"] < first["heartbeat_at"] < second["heartbeat_at"]
    # beats come about an interval apart, not in a burst
    assert (second["heartbeat_at"] - first["heartbeat_at"]).total_seconds() >= 0.9


def test_a_beat_for_a_row_that_is_no_longer_the_workers_own_says_so() -> None:
    asset = _pending_asset()
    assert asset_claim(asset_id=asset.pk, worker="w1")

    assert asset_heartbeat(asset_id=asset.pk, worker="w1") is True
    assert asset_heartbeat(asset_id=asset.pk, worker="w2") is False  # another worker's job
    assets_reap_stale(silent_for_s=0)
    assert asset_heartbeat(asset_id=asset.pk, worker="w1") is False  # reaped: back to pending


def test_the_reaper_resends_what_a_live_own_prompt_battle_still_waits_for(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.GENERATION_JOB_SENDER = "tests.arena.test_generation_port.record_job"
    SENT.clear()
    arena = ArenaFactory.create(allow_user_prompts=True)
    arena.generative_models.add(*GenerativeModelFactory.create_batch(2))
    battle = battle_create_from_prompt(
        arena=arena, voter=VoterFactory.create(), text="a glass whale", mode="pairwise"
    )
    lost, fresh = (slot.asset for slot in battle.slots.order_by("position"))
    Asset.objects.filter(pk=lost.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    elsewhere = _pending_asset()  # pending, but no voter waits for it
    Asset.objects.filter(pk=elsewhere.pk).update(enqueued_at=timezone.now() - timedelta(hours=1))
    SENT.clear()

    with django_capture_on_commit_callbacks(execute=True):
        summary = reap_stale_generations()

    assert summary == {"reaped": 0, "resent": 1, "queued": 1}
    assert [job["asset_id"] for job in SENT] == [lost.pk]
    assert fresh.pk not in [job["asset_id"] for job in SENT]

    # A battle nobody has waited on for over an hour gets no more resends.
    Battle.objects.filter(pk=battle.pk).update(served_at=timezone.now() - timedelta(hours=2))
    Asset.objects.filter(pk=lost.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    assert reap_stale_generations()["resent"] == 0


def _arena_with(
    models: int, prompts: int, **model_fields: Any
) -> tuple[Any, list[GenerativeModel]]:
    arena = ArenaFactory.create()
    rows = GenerativeModelFactory.create_batch(models, **model_fields)
    arena.generative_models.add(*rows)
    PromptFactory.create_batch(prompts, prompt_set=arena.prompt_set)
    return arena, rows


def test_the_top_up_fills_exactly_the_gap(django_capture_on_commit_callbacks: Any) -> None:
    arena, models = _arena_with(models=3, prompts=4)
    first_prompt = arena.prompt_set.prompts.first()
    for model in models:  # prompt 1 is already covered by all three models
        asset, _ = asset_request(model=model, prompt=first_prompt)
        Asset.objects.filter(pk=asset.pk).update(status=AssetStatus.READY)

    with django_capture_on_commit_callbacks(execute=False) as sent:
        summary = cache_top_up(arenas=[arena])

    assert (summary.created, summary.queued) == (9, 9)
    assert len(sent) == 1
    assert Asset.objects.filter(status=AssetStatus.PENDING, enqueued_at__isnull=False).count() == 9

    with django_capture_on_commit_callbacks(execute=False) as sent_again:
        again = cache_top_up(arenas=[arena])
    assert (again.created, again.queued) == (0, 0)
    assert sent_again == []


def test_the_top_up_respects_each_models_in_flight_budget(
    django_capture_on_commit_callbacks: Any,
) -> None:
    arena, _models = _arena_with(models=2, prompts=5, max_in_flight=2)

    with django_capture_on_commit_callbacks(execute=False):
        summary = cache_top_up(arenas=[arena])

    assert summary.queued == 4
    assert summary.over_budget == 6


def test_the_top_up_resends_a_job_lost_in_transit(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    arena, models = _arena_with(models=1, prompts=1)
    asset, _ = asset_request(model=models[0], prompt=arena.prompt_set.prompts.get())
    Asset.objects.filter(pk=asset.pk).update(enqueued_at=timezone.now() - timedelta(hours=2))
    settings.GENERATION_RESEND_AFTER_S = 1800

    with django_capture_on_commit_callbacks(execute=False):
        summary = cache_top_up(arenas=[arena])

    assert (summary.created, summary.queued) == (0, 1)
    resent_at = Asset.objects.get(pk=asset.pk).enqueued_at
    assert resent_at is not None and resent_at > timezone.now() - timedelta(minutes=1)
