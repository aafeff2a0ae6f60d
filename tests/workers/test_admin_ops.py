"""The operators' views: generation dashboard, queue depths, admin actions and config checks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from arena.models import Arena, Asset, AssetStatus, GenerativeModel
from arena.services import asset_request
from config.celery import app
from tests.factories import GenerativeModelFactory, PromptFactory
from workers.ops import model_generation_stats, queue_depths
from workers.tasks import generate_asset_enqueue

pytestmark = pytest.mark.django_db


def test_it_counts_the_messages_waiting_in_a_queue() -> None:
    queue = f"gen.test-depth-{uuid.uuid4().hex[:6]}"
    try:
        generate_asset_enqueue(asset_id=1, queue=queue)
        generate_asset_enqueue(asset_id=2, queue=queue)

        (depth,) = queue_depths([queue])

        assert (depth.name, depth.messages) == (queue, 2)
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)


def test_a_queue_nobody_used_yet_is_empty() -> None:
    (depth,) = queue_depths([f"gen.never-{uuid.uuid4().hex[:6]}"])

    assert depth.messages == 0


def test_it_reports_success_rate_and_mean_generation_time_per_model() -> None:
    model = GenerativeModelFactory.create(name="Stats Model")
    for i, (status, ms) in enumerate(
        [(AssetStatus.READY, 100), (AssetStatus.READY, 300), (AssetStatus.FAILED, None)]
    ):
        asset, _ = asset_request(model=model, prompt=PromptFactory.create(), seed=i)
        Asset.objects.filter(pk=asset.pk).update(status=status, generation_ms=ms)

    (stats,) = [s for s in model_generation_stats() if s.model.pk == model.pk]

    assert (stats.ready, stats.failed) == (2, 1)
    assert stats.success_rate == pytest.approx(2 / 3)
    assert stats.mean_generation_ms == pytest.approx(200)


def _failed_asset() -> Asset:
    asset, _ = asset_request(model=GenerativeModelFactory.create(), prompt=PromptFactory.create())
    Asset.objects.filter(pk=asset.pk).update(
        status=AssetStatus.FAILED, error="RuntimeError: remote app crashed"
    )
    return asset


def test_the_dashboard_shows_failures_and_retries_them(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    asset = _failed_asset()

    page = admin_client.get("/admin/generation/").content.decode()
    assert "remote app crashed" in page
    assert "light" in page

    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = admin_client.post(
            "/admin/generation/", {"action": "retry", "asset": [str(asset.pk)]}
        )

    assert response.status_code == 302
    assert Asset.objects.get(pk=asset.pk).status == AssetStatus.PENDING
    assert len(sent) == 1


def test_the_dashboard_is_for_staff_only(client: Client) -> None:
    response = client.get("/admin/generation/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_asset_admin_regenerates_under_a_new_name(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    asset, _ = asset_request(model=GenerativeModelFactory.create(), prompt=PromptFactory.create())
    Asset.objects.filter(pk=asset.pk).update(status=AssetStatus.READY)

    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(
            "/admin/arena/asset/", {"action": "regenerate", "_selected_action": [str(asset.pk)]}
        )

    fresh = Asset.objects.get(pk=asset.pk)
    assert fresh.status == AssetStatus.PENDING
    assert fresh.public_id != asset.public_id
    assert fresh.enqueued_at is not None


def test_the_model_admin_disables_models(admin_client: Client) -> None:
    model = GenerativeModelFactory.create()

    admin_client.post(
        "/admin/arena/generativemodel/",
        {"action": "disable_models", "_selected_action": [str(model.pk)]},
    )

    assert GenerativeModel.objects.get(pk=model.pk).is_active is False


def test_the_model_admin_refuses_a_bad_backend_config(admin_client: Client) -> None:
    data = {
        "name": "Broken", "slug": "broken", "task": "text-to-image", "output_formats": '["png"]',
        "backend": "builtin", "backend_config": '{"quality": 9}', "queue": "gen.cpu",
        "max_in_flight": 8, "daily_budget": 0, "is_active": "on",
    }  # fmt: skip

    response = admin_client.post("/admin/arena/generativemodel/add/", data)

    assert response.status_code == 200
    assert "&#x27;quality&#x27; must be an integer from 1 to 4" in response.content.decode()
    assert not GenerativeModel.objects.filter(slug="broken").exists()


def test_the_model_admin_refuses_an_unknown_backend(admin_client: Client) -> None:
    data = {
        "name": "Nope", "slug": "nope", "task": "text-to-image", "output_formats": '["png"]',
        "backend": "teleport", "backend_config": "{}", "queue": "gen.cpu",
        "max_in_flight": 8, "daily_budget": 0, "is_active": "on",
    }  # fmt: skip

    response = admin_client.post("/admin/arena/generativemodel/add/", data)

    assert "unknown backend &#x27;teleport&#x27;" in response.content.decode()
    assert not GenerativeModel.objects.filter(slug="nope").exists()


def _arena_form(prompt_set: int, models: list[int], profile: str) -> dict[str, Any]:
    return {
        "slug": "sculpt", "name": "Sculpt", "description": "", "task": "image-to-3d",
        "prompt_set": prompt_set, "generative_models": models, "k_values": "[4]",
        "vote_modes": '["pairwise"]', "default_mode": "pairwise", "outputs_per_prompt": 1,
        "media_profile": profile, "is_active": "on", "position": 0,
    }  # fmt: skip


def test_the_arena_admin_refuses_meshes_and_splats_in_one_arena(admin_client: Client) -> None:
    mesh = GenerativeModelFactory.create(name="Mesher", task="image-to-3d", output_formats=["glb"])
    splat = GenerativeModelFactory.create(
        name="Splatter", task="image-to-3d", output_formats=["ply"]
    )
    prompt_set = PromptFactory.create().prompt_set

    response = admin_client.post(
        "/admin/arena/arena/add/", _arena_form(prompt_set.pk, [mesh.pk, splat.pk], "{}")
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "An arena shows one representation" in page
    assert "mesh: Mesher; splat: Splatter" in page
    assert not Arena.objects.filter(slug="sculpt").exists()


def test_the_arena_admin_refuses_a_bad_media_profile_and_saves_a_good_one(
    admin_client: Client,
) -> None:
    mesh = GenerativeModelFactory.create(task="image-to-3d", output_formats=["glb"])
    prompt_set = PromptFactory.create().prompt_set

    refused = admin_client.post(
        "/admin/arena/arena/add/", _arena_form(prompt_set.pk, [mesh.pk], '{"pad_bytes": 3}')
    )
    saved = admin_client.post(
        "/admin/arena/arena/add/", _arena_form(prompt_set.pk, [mesh.pk], '{"pad_bytes": 4096}')
    )

    assert "pad_bytes must be 0 or a multiple of 4 from 1024" in refused.content.decode()
    assert saved.status_code == 302
    assert Arena.objects.get(slug="sculpt").media_profile == {"pad_bytes": 4096}
