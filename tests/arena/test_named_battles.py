"""Named battles: the voter picks the models; the vote is kept but never counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from arena.models import (
    Arena,
    ArenaTally,
    Battle,
    ModelRating,
    PairTally,
    Vote,
    Voter,
)
from tests.factories import AssetFactory, GenerativeModelFactory, PromptFactory, ready_arena

pytestmark = pytest.mark.django_db


def _post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def _slugs(arena: Arena) -> list[str]:
    return list(arena.generative_models.order_by("pk").values_list("slug", flat=True))


def _create(client: Client, arena: Arena, **body: Any) -> Any:
    return _post(client, f"/api/v1/arenas/{arena.slug}/battles", body)


def _counted() -> dict[str, Any]:
    return {
        "tally": list(ArenaTally.objects.values_list("arena_id", "votes", "digest")),
        "pairs": list(PairTally.objects.order_by("pk").values_list("a_wins", "b_wins", "ties")),
        "ratings": list(ModelRating.objects.order_by("pk").values_list("votes", "elo", "mu")),
    }


def test_it_serves_a_battle_between_the_named_models(client: Client) -> None:
    arena = ready_arena(models=4)
    chosen = _slugs(arena)[1:3]

    response = _create(client, arena, models=chosen)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["named"] is True
    assert (body["mode"], body["k"]) == ("pairwise", 2)
    battle = Battle.objects.get()
    assert battle.is_named
    assert set(battle.slots.values_list("model__slug", flat=True)) == set(chosen)
    prompts = {slot.asset.prompt_id for slot in battle.slots.select_related("asset")}
    assert prompts == {battle.prompt_id}


def test_an_anonymous_battle_says_it_is_not_named(client: Client) -> None:
    arena = ready_arena(models=2)

    body = _create(client, arena).json()

    assert body["named"] is False
    assert not Battle.objects.get().is_named


def test_naming_three_models_serves_a_k_wise_battle(client: Client) -> None:
    arena = ready_arena(models=4)

    body = _create(client, arena, models=_slugs(arena)[:3], mode="rank_k").json()

    assert (body["mode"], body["k"], body["named"]) == ("rank_k", 3, True)
    assert [s["label"] for s in body["slots"]] == ["A", "B", "C"]


def test_without_a_mode_three_named_models_get_a_k_wise_mode(client: Client) -> None:
    arena = ready_arena(models=4)

    body = _create(client, arena, models=_slugs(arena)[:3]).json()

    assert body["mode"] in ("best_of_k", "rank_k") and body["k"] == 3


def test_a_vote_on_a_named_battle_is_kept_but_never_counted(client: Client) -> None:
    arena = ready_arena(models=3)
    counted = _create(client, arena).json()  # an anonymous vote first, so the tallies exist
    _post(
        client,
        f"/api/v1/battles/{counted['id']}/vote",
        {"token": counted["token"], "choice": "A"},
    )
    before = _counted()
    assert before["tally"][0][1] == 1
    named = _create(client, arena, models=_slugs(arena)[:2]).json()

    response = _post(
        client, f"/api/v1/battles/{named['id']}/vote", {"token": named["token"], "choice": "B"}
    )

    assert response.status_code == 201
    assert response.json()["ranking"] == [["B"], ["A"]]
    vote = Vote.objects.get(battle__public_id=named["id"])
    assert vote.is_named
    assert _counted() == before
    assert Voter.objects.get().votes_cast == 2


@pytest.mark.parametrize(
    ("models", "status", "code", "message"),
    [
        (lambda s: ["no-such-model", s[0]], 404, "not_found", "No active model 'no-such-model'"),
        (lambda s: [s[0], s[0]], 400, "invalid_battle", "Name each model once; repeated: "),
        (lambda s: s[:1], 400, "invalid_battle", "Name between 2 and 4 models"),
        (lambda s: [*s, "extra-1"], 400, "invalid_battle", "Name between 2 and 4 models"),
        (lambda s: ["outsider", s[0]], 404, "not_found", "No active model 'outsider'"),
        (lambda s: [], 400, "invalid_battle", "you named 0"),
    ],
    ids=["unknown slug", "duplicate", "too few", "too many", "not in the arena", "empty"],
)
def test_a_bad_list_of_models_gets_a_clear_error_and_stores_nothing(
    client: Client, models: Any, status: int, code: str, message: str
) -> None:
    arena = ready_arena(models=4)
    GenerativeModelFactory.create(slug="outsider")  # a real model, in no arena
    voters = Voter.objects.count()

    response = _create(client, arena, models=models(_slugs(arena)))

    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert message in body["error"]
    assert not Battle.objects.exists()
    assert Voter.objects.count() in (voters, voters + 1)  # at most the caller's new cookie voter
    assert Voter.objects.filter(battles_served__gt=0).count() == 0


def test_a_mode_that_does_not_fit_the_count_is_refused(client: Client) -> None:
    arena = ready_arena(models=4)

    response = _create(client, arena, models=_slugs(arena)[:3], mode="pairwise")

    assert response.status_code == 400
    assert response.json()["error"] == (
        "A pairwise battle in this arena takes 2 models; you named 3."
    )
    assert not Battle.objects.exists()


def test_a_k_that_contradicts_the_named_models_is_refused(client: Client) -> None:
    arena = ready_arena(models=4)

    response = _create(client, arena, models=_slugs(arena)[:2], k=3)

    assert response.status_code == 400
    assert not Battle.objects.exists()


def test_models_without_outputs_for_a_shared_prompt_get_503(client: Client) -> None:
    arena = ready_arena(models=2, prompts=1)
    late = GenerativeModelFactory.create(slug="late-model")
    arena.generative_models.add(late)
    AssetFactory.create(model=late, prompt=PromptFactory.create(prompt_set=arena.prompt_set))

    response = _create(client, arena, models=[_slugs(arena)[0], "late-model"])

    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_enough_assets"
    assert "late-model" in body["error"]
    assert not Battle.objects.exists()


def test_an_inactive_model_cannot_be_named(client: Client) -> None:
    arena = ready_arena(models=3)
    retired = arena.generative_models.order_by("pk").first()
    assert retired is not None
    retired.is_active = False
    retired.save()

    response = _create(client, arena, models=[retired.slug, _slugs(arena)[1]])

    assert response.status_code == 404
    assert not Battle.objects.exists()


def test_a_count_no_battle_of_the_arena_takes_is_refused(client: Client) -> None:
    arena = ready_arena(models=4, k_values=[4])

    response = _create(client, arena, models=_slugs(arena)[:3])

    assert response.status_code == 400
    assert response.json()["error"] == "This arena has no battle of 3 models; name 2 or 4."
    assert not Battle.objects.exists()
