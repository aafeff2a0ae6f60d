"""The voting pages through Django's test client: battle markup, htmx vote flow, notices."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from arena.models import Battle, Vote
from tests.factories import (
    ArenaFactory,
    AssetFactory,
    GenerativeModelFactory,
    PromptFactory,
    ready_arena,
)

pytestmark = pytest.mark.django_db


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the battle form carries its token"
    return match.group(1)


def test_the_home_page_lists_arenas(client: Client) -> None:
    arena = ready_arena(models=2)

    html = client.get("/").content.decode()

    assert arena.name in html
    assert f"/arena/{arena.slug}/" in html


def test_an_arena_page_serves_k_anonymous_slots(client: Client) -> None:
    arena = ready_arena(models=4)
    names = list(arena.generative_models.values_list("name", flat=True))

    html = client.get(f"/arena/{arena.slug}/?mode=rank_k").content.decode()

    assert html.count('class="slot"') == 4
    for label in "ABCD":
        assert f'data-slot="{label}"' in html
        assert f'name="rank_{label}"' in html
    assert not any(name in html for name in names)


@pytest.mark.parametrize(("query", "slots"), [("?mode=pairwise&k=3", 2), ("?mode=rank_k&k=9", 4)])
def test_a_hand_edited_k_falls_back_to_a_size_the_mode_serves(
    client: Client, query: str, slots: int
) -> None:
    arena = ready_arena(models=4, k_values=[3, 4])

    response = client.get(f"/arena/{arena.slug}/{query}")

    assert response.status_code == 200
    assert response.content.decode().count('class="slot"') == slots


def test_posting_the_form_records_the_vote_and_reveals_names(client: Client) -> None:
    arena = ready_arena(models=2)
    html = client.get(f"/arena/{arena.slug}/").content.decode()
    battle = Battle.objects.get()

    response = client.post(
        f"/battle/{battle.public_id}/vote/", {"token": _token(html), "choice": "both_bad"}
    )

    assert response.status_code == 201
    body = response.content.decode()
    for name in arena.generative_models.values_list("name", flat=True):
        assert name in body
    assert 'id="next-battle"' in body
    assert Vote.objects.get().outcome == "both_bad"


def test_a_rank_form_with_a_missing_rank_shows_an_error_and_stores_nothing(client: Client) -> None:
    arena = ready_arena(models=4)
    html = client.get(f"/arena/{arena.slug}/?mode=rank_k").content.decode()
    battle = Battle.objects.get()

    response = client.post(
        f"/battle/{battle.public_id}/vote/",
        {"token": _token(html), "rank_A": "1", "rank_B": "2", "rank_C": "2"},
    )

    assert response.status_code == 400
    assert "missing D" in response.content.decode()
    assert response["HX-Reswap"] == "none"
    assert not Vote.objects.exists()


def test_a_duplicated_rank_field_is_refused(client: Client) -> None:
    arena = ready_arena(models=4)
    html = client.get(f"/arena/{arena.slug}/?mode=rank_k").content.decode()
    battle = Battle.objects.get()
    data = f"token={_token(html)}&rank_A=1&rank_A=2&rank_B=2&rank_C=3&rank_D=4"

    response = client.post(
        f"/battle/{battle.public_id}/vote/", data, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert "more than one rank" in response.content.decode()
    assert not Vote.objects.exists()


def test_the_next_battle_partial_is_a_fresh_battle(client: Client) -> None:
    arena = ready_arena(models=3)
    client.get(f"/arena/{arena.slug}/")

    html = client.get(f"/arena/{arena.slug}/battle/?mode=best_of_k").content.decode()

    assert "<html" not in html
    assert html.count('class="slot"') == 3
    assert Battle.objects.count() == 2


def test_an_arena_with_too_few_outputs_says_so_clearly(client: Client) -> None:
    arena = ready_arena(models=1)

    response = client.get(f"/arena/{arena.slug}/")

    assert response.status_code == 200
    assert "cannot start a 2-way battle yet" in response.content.decode()


def test_an_unknown_arena_page_is_a_readable_404(client: Client) -> None:
    response = client.get("/arena/does-not-exist/")

    assert response.status_code == 404
    assert "No active arena" in response.content.decode()


def test_the_arena_page_offers_single_key_shortcuts_that_a_voter_can_turn_off(
    client: Client,
) -> None:
    arena = ready_arena(models=2)

    html = client.get(f"/arena/{arena.slug}/").content.decode()

    assert 'data-vote-shortcuts="on"' in html
    assert 'id="vote-shortcuts-toggle"' in html and "Keyboard shortcuts" in html
    assert '<kbd class="key-hint">A</kbd>' in html


def test_the_vote_shortcuts_setting_turns_the_shortcuts_off_in_the_markup(
    client: Client, settings: Any
) -> None:
    settings.VOTE_SHORTCUTS = False
    arena = ready_arena(models=3)

    page = client.get(f"/arena/{arena.slug}/").content.decode()
    best_of = client.get(f"/arena/{arena.slug}/battle/?mode=best_of_k").content.decode()
    battle = Battle.objects.order_by("-pk").first()
    assert battle is not None
    result = client.post(
        f"/battle/{battle.public_id}/vote/", {"token": _token(best_of), "choice": "A"}
    ).content.decode()

    assert 'data-vote-shortcuts="off"' in page
    assert "vote-shortcuts-toggle" not in page  # nothing for the voter to turn back on
    for html in (page, best_of, result):
        assert "<kbd" not in html and "key-hint" not in html
    assert "(keys 1" not in best_of


def test_3d_outputs_have_accessible_names_and_the_splat_viewer_a_role(client: Client) -> None:
    arena = ArenaFactory.create(task="image-to-splat", k_values=[2])
    models = GenerativeModelFactory.create_batch(2)
    arena.generative_models.add(*models)
    prompt = PromptFactory.create(prompt_set=arena.prompt_set)
    for model in models:
        AssetFactory.create(model=model, prompt=prompt, media_type="splat", fmt="ply")

    html = client.get(f"/arena/{arena.slug}/").content.decode()

    hosts = re.findall(r'<div class="splat-host"[^>]*>', html)
    assert len(hosts) == 2
    for label, host in zip("AB", hosts, strict=True):
        assert 'role="application"' in host and 'aria-roledescription="3D viewer"' in host
        assert 'tabindex="0"' in host
        assert f'aria-label="Output {label}, 3D splat; drag or use the arrow keys to orbit"' in host
