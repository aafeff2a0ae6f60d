"""A voter's own prompt: moderation, live generation with per-slot progress, failure and retry."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from arena.models import Asset, AssetStatus, Battle, BattleState, Prompt, Vote
from arena.services import asset_fail
from arena.tokens import battle_token_make
from tests.factories import ArenaFactory, GenerativeModelFactory, without_metrics
from workers.generation import asset_generate

pytestmark = pytest.mark.django_db


def _arena(**fields: Any) -> Any:
    arena = ArenaFactory.create(allow_user_prompts=True, **fields)
    arena.generative_models.add(*GenerativeModelFactory.create_batch(4))
    return arena


def _start(client: Client, arena: Any, text: str, mode: str = "pairwise", **extra: Any) -> Any:
    return client.post(f"/arena/{arena.slug}/prompt/?mode={mode}", {"prompt": text, **extra})


def test_it_starts_a_live_battle_and_sends_one_job_per_slot(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    arena = _arena()

    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = _start(client, arena, "a teal bicycle on the moon", mode="rank_k")

    assert response.status_code == 200
    battle = Battle.objects.get()
    assert (battle.state, battle.k) == (BattleState.GENERATING, 4)
    assert Asset.objects.filter(status=AssetStatus.PENDING, enqueued_at__isnull=False).count() == 4
    assert len(without_metrics(sent)) == 1
    html = response.content.decode()
    assert html.count('class="progress-slot"') == 4
    assert "hx-get" in html and "/progress/" in html
    assert Prompt.objects.get().moderation_state == "pending"  # never shown to others unreviewed


def test_the_progress_poll_shows_the_battle_once_every_output_is_ready(client: Client) -> None:
    arena = _arena()
    _start(client, arena, "a teal bicycle on the moon")
    battle = Battle.objects.get()
    first, second = battle.slots.order_by("position").values_list("asset_id", flat=True)
    asset_generate(asset_id=first)

    waiting = client.get(f"/battle/{battle.public_id}/progress/").content.decode()
    assert "1 of 2 ready" in waiting
    assert 'data-status="ready"' in waiting and 'data-status="pending"' in waiting

    asset_generate(asset_id=second)
    ready = client.get(f"/battle/{battle.public_id}/progress/").content.decode()

    assert 'class="battle"' in ready and 'name="token"' in ready
    battle.refresh_from_db()
    assert battle.state == BattleState.SERVED
    token = re.search(r'name="token" value="([^"]+)"', ready).group(1)  # type: ignore[union-attr]
    assert (
        client.post(
            f"/battle/{battle.public_id}/vote/", {"token": token, "choice": "A"}
        ).status_code
        == 201
    )


def test_a_vote_before_the_outputs_are_ready_is_refused(client: Client) -> None:
    arena = _arena()
    _start(client, arena, "a teal bicycle on the moon")
    battle = Battle.objects.get()
    token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
    response = client.post(f"/battle/{battle.public_id}/vote/", {"token": token, "choice": "A"})

    assert response.status_code == 409
    assert "still being generated" in response.content.decode()
    assert not Vote.objects.exists()


def test_a_failed_output_shows_a_clear_message_and_can_be_retried(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    arena = _arena()
    _start(client, arena, "a teal bicycle on the moon")
    battle = Battle.objects.get()
    first, second = battle.slots.order_by("position").values_list("asset_id", flat=True)
    asset_generate(asset_id=first)
    asset_fail(asset_id=second, error="BackendError: remote app crashed (Space acme/secret-model)")

    page = client.get(f"/battle/{battle.public_id}/progress/").content.decode()
    assert "could not be generated" in page and "Try again" in page
    assert "secret-model" not in page  # errors can name the model: never shown before the vote

    with django_capture_on_commit_callbacks(execute=False) as sent:
        retried = client.post(f"/battle/{battle.public_id}/retry/")
    assert retried.status_code == 200
    assert Asset.objects.get(pk=second).status == AssetStatus.PENDING
    assert len(without_metrics(sent)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a NSFW poster", "not allowed here"),
        ("hi", "at least 3 characters"),
        ("x" * 501, "under 500 characters"),
    ],
)
def test_a_refused_prompt_gets_a_readable_error_and_stores_nothing(
    client: Client, text: str, message: str
) -> None:
    arena = _arena()

    response = _start(client, arena, text)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert (Battle.objects.count(), Asset.objects.count(), Prompt.objects.count()) == (0, 0, 0)


def test_blocklist_matches_whole_words_only(client: Client, settings: Any) -> None:
    settings.PROMPT_BLOCKLIST = ["gore"]
    arena = _arena()

    assert _start(client, arena, "a gorilla in the mist").status_code == 200
    assert _start(client, arena, "Gore everywhere").status_code == 400


def test_an_arena_without_own_prompts_refuses_them(client: Client) -> None:
    arena = ArenaFactory.create(allow_user_prompts=False)

    response = _start(client, arena, "a teal bicycle")

    assert response.status_code == 400
    assert not Battle.objects.exists()


def test_image_to_3d_needs_a_readable_image(client: Client) -> None:
    arena = _arena(task="image-to-3d")
    not_an_image = io.BytesIO(b"<html>hello</html>")
    not_an_image.name = "photo.png"

    missing = _start(client, arena, "my chair")
    broken = _start(client, arena, "my chair", image=not_an_image)

    assert missing.status_code == broken.status_code == 400
    assert "attach a PNG" in missing.content.decode()
    assert "not a readable image" in broken.content.decode()
    assert not Battle.objects.exists()


def test_image_to_3d_stores_the_image_as_a_clean_png(client: Client) -> None:
    arena = _arena(task="image-to-3d")
    photo = io.BytesIO()
    Image.new("RGB", (2000, 1000), "orange").save(photo, format="JPEG")
    photo.seek(0)
    photo.name = "photo.jpg"

    assert _start(client, arena, "my chair", image=photo).status_code == 200

    stored = Image.open(Battle.objects.get().prompt.conditioning_image.path)
    assert (stored.format, stored.size) == ("PNG", (1024, 512))


def test_someone_else_cannot_poll_your_battle(client: Client) -> None:
    arena = _arena()
    _start(client, arena, "a teal bicycle on the moon")
    battle = Battle.objects.get()

    response = Client().get(f"/battle/{battle.public_id}/progress/")

    assert response.status_code == 403


def _live_region(html: str) -> str:
    match = re.search(r'<p [^>]*id="generation-status"[^>]*>', html)
    assert match, "the generating view has its live region"
    return match.group(0)


def test_the_generating_view_reads_its_progress_out_in_a_polite_live_region(
    client: Client,
) -> None:
    arena = _arena()

    html = _start(client, arena, "a teal bicycle on the moon").content.decode()

    region = _live_region(html)
    assert 'role="status"' in region and 'aria-live="polite"' in region
    assert 'aria-atomic="true"' in region
    assert "0 of 2 ready, 2 waiting." in html
    assert re.search(r'<progress [^>]*max="2" value="0"', html)
    # The poll swaps what is around the region, never the region itself.
    poller = re.search(r'<div id="generation-poll"[^>]*>', html)
    assert poller and 'hx-target="#generation-progress"' in poller.group(0)
    assert html.index('id="generation-status"') < html.index('id="generation-progress"')
    assert 'name="seen" value=""' in html  # the first poll writes the region's text again


def test_the_poll_answers_only_what_changed(client: Client) -> None:
    arena = _arena()
    _start(client, arena, "a teal bicycle on the moon")
    battle = Battle.objects.get()
    url = f"/battle/{battle.public_id}/progress/"
    first, second = battle.slots.order_by("position").values_list("asset_id", flat=True)

    refreshed = client.get(url, {"seen": ""})
    unchanged = client.get(url, {"seen": "pending,pending"})
    Asset.objects.filter(pk=second).update(status=AssetStatus.RUNNING)
    running = client.get(url, {"seen": "pending,pending"}).content.decode()
    Asset.objects.filter(pk=second).update(status=AssetStatus.PENDING)
    asset_generate(asset_id=first)
    one_ready = client.get(url, {"seen": "pending,running"}).content.decode()

    assert refreshed.status_code == 200
    assert 'hx-swap-oob="innerHTML"' in refreshed.content.decode()
    assert unchanged.status_code == 204 and unchanged.content == b""
    for html in (running, one_ready):
        assert 'id="generation-status" hx-swap-oob="innerHTML"' in html
        assert 'role="status"' not in html  # only the text: the region itself stays in the page
        assert 'class="progress-slot"' in html and "HX-Retarget" not in html
    assert "0 of 2 ready, 1 generating, 1 waiting." in running
    assert "1 of 2 ready, 1 waiting." in one_ready
    assert re.search(r'<progress [^>]*value="1"', one_ready)
    assert 'name="seen" value="ready,pending"' in one_ready

    asset_generate(asset_id=second)
    ready = client.get(url, {"seen": "ready,pending"})
    assert 'class="battle"' in ready.content.decode()
    assert (ready["HX-Retarget"], ready["HX-Reswap"]) == ("#battle-container", "innerHTML")


def test_a_poll_that_finds_a_failure_replaces_the_whole_view(client: Client) -> None:
    arena = _arena()
    _start(client, arena, "a teal bicycle on the moon")
    battle = Battle.objects.get()
    first = battle.slots.order_by("position").values_list("asset_id", flat=True)[0]
    asset_fail(asset_id=first, error="BackendError: out of memory")

    response = client.get(f"/battle/{battle.public_id}/progress/", {"seen": "pending,pending"})

    assert response["HX-Retarget"] == "#battle-container"
    html = response.content.decode()
    assert "could not be generated" in html and 'role="alert"' in html
    assert "generation-poll" not in html  # polling stops
