"""The domain's one port to the generation workers: ``services.assets_enqueue``.

The domain never imports ``workers``; it calls the function named by ``GENERATION_JOB_SENDER``
once the surrounding transaction commits, and only then.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from arena.models import Asset
from arena.services import asset_request, assets_enqueue, assets_retry
from tests.factories import GenerativeModelFactory, PromptFactory

pytestmark = pytest.mark.django_db

SENT: list[dict[str, Any]] = []


def record_job(**job: Any) -> None:
    """A stand-in sender, named by dotted path in the tests' settings."""
    SENT.append(job)


@pytest.fixture
def sender(settings: Any) -> list[dict[str, Any]]:
    settings.GENERATION_JOB_SENDER = f"{__name__}.record_job"
    SENT.clear()
    return SENT


def _pending(n: int) -> list[Asset]:
    prompt = PromptFactory.create()
    models = GenerativeModelFactory.create_batch(n, queue="gen.port-test")
    return [asset_request(model=model, prompt=prompt)[0] for model in models]


def test_it_sends_one_job_per_asset_through_the_configured_sender_after_commit(
    sender: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    assets = _pending(3)

    with django_capture_on_commit_callbacks(execute=True):
        queued = assets_enqueue(assets=assets)
        assert sender == []  # nothing leaves before the commit

    assert queued == 3
    assert sender == [
        {"asset_id": a.pk, "queue": "gen.port-test", "backend": a.model.backend} for a in assets
    ]
    assert (
        Asset.objects.filter(pk__in=[a.pk for a in assets], enqueued_at__isnull=False).count() == 3
    )


def test_a_rolled_back_transaction_sends_nothing_and_stamps_nothing(
    sender: list[dict[str, Any]],
) -> None:
    assets = _pending(2)

    with pytest.raises(RuntimeError), transaction.atomic():
        assets_enqueue(assets=assets)
        raise RuntimeError("the caller failed after asking for the jobs")

    assert sender == []
    assert not Asset.objects.filter(enqueued_at__isnull=False).exists()


def test_nothing_to_send_is_not_an_error(sender: list[dict[str, Any]]) -> None:
    assert assets_enqueue(assets=[]) == 0
    assert sender == []


def test_retry_sends_only_the_failed_assets_again(
    sender: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    failed, pending = _pending(2)
    Asset.objects.filter(pk=failed.pk).update(status="failed", error="remote app crashed")

    with django_capture_on_commit_callbacks(execute=True):
        sent = assets_retry(asset_ids=[failed.pk, pending.pk])

    assert sent == 1
    assert [job["asset_id"] for job in sender] == [failed.pk]
    assert Asset.objects.get(pk=failed.pk).status == "pending"
