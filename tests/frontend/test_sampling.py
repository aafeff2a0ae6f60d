"""Sampling transparency: the matchmaker's chance of showing each model, in the API and page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from ranking import BayesianRater, make_matchmaker, sampling_rates
from tests.factories import ready_arena

pytestmark = pytest.mark.django_db


def test_the_rates_of_a_proposal_sum_to_its_size_and_follow_a_boost() -> None:
    players = [f"m{i}" for i in range(6)]
    plain = make_matchmaker("default", BayesianRater(players), seed=1)
    boosted = make_matchmaker("default", BayesianRater(players), seed=1)
    boosted.boost("m3", 4.0)
    boosted.exclude(["m5"])

    before = sampling_rates(plain, players, 2, draws=3000)
    after = sampling_rates(boosted, players, 2, draws=3000)

    assert sum(before.values()) == pytest.approx(2.0)
    assert sum(after.values()) == pytest.approx(2.0)
    assert after["m3"] > 1.5 * before["m3"]
    assert after["m5"] == 0.0


def test_the_rates_want_a_positive_number_of_draws() -> None:
    players = ["a", "b"]
    with pytest.raises(ValueError, match="draws: must be an int >= 1"):
        sampling_rates(make_matchmaker("random", BayesianRater(players)), players, 2, draws=0)


def _sampling(client: Client, slug: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/arenas/{slug}/sampling")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_api_publishes_each_models_chance_per_battle_size() -> None:
    arena = ready_arena(models=4)
    client = Client()

    body = _sampling(client, arena.slug)

    assert body["arena"] == arena.slug and body["draws"] == 4000
    sizes = {size["k"]: size["models"] for size in body["sizes"]}
    assert set(sizes) == {2, *arena.k_values} - {k for k in arena.k_values if k > 4}
    for k, rows in sizes.items():
        assert len(rows) == 4
        assert sum(r["probability"] for r in rows) == pytest.approx(k)
        assert all(0 < r["probability"] <= 1 for r in rows)
    assert body["not_shown"] == []
    assert "falls back" in body["note"]


def test_a_paused_model_is_listed_as_not_shown_and_the_rest_share_its_battles() -> None:
    arena = ready_arena(models=3)
    paused = arena.generative_models.order_by("pk").first()
    assert paused is not None
    paused.matchmaking_weight = 0
    paused.save(update_fields=["matchmaking_weight"])

    body = _sampling(Client(), arena.slug)

    assert body["not_shown"] == [paused.slug]
    pairwise = next(size for size in body["sizes"] if size["k"] == 2)
    assert [r["probability"] for r in pairwise["models"]] == [1.0, 1.0]


def test_an_unknown_arena_gets_a_json_404() -> None:
    response = Client().get("/api/v1/arenas/no-such-arena/sampling")

    assert response.status_code == 404
    assert "error" in response.json()


def test_the_leaderboard_page_shows_the_table() -> None:
    arena = ready_arena(models=3)

    html = Client().get(f"/arena/{arena.slug}/leaderboard/").content.decode()

    section = html.split('id="lb-sampling"', 1)[1].split("</section>", 1)[0]
    assert "How often each model is shown" in section
    names = set(arena.generative_models.values_list("name", flat=True))
    rows = re.findall(r'<th scope="row">([^<]+)</th>((?:<td class="num">[^<]+</td>)+)', section)
    assert {name for name, _ in rows} == names
    pairwise = [float(re.findall(r">([\d.]+)%<", cells)[0]) for _, cells in rows]
    assert sum(pairwise) == pytest.approx(200.0, abs=0.5)  # a pairwise battle shows two
    assert f"/api/v1/arenas/{arena.slug}/sampling" in section
