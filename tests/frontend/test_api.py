"""The JSON API: battles, votes and errors as JSON with the right 4xx status."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from arena.leaderboards import METHODS
from arena.models import MAX_K, Battle, Vote, VoteMode
from tests.factories import ArenaFactory, ready_arena

pytestmark = pytest.mark.django_db


def _post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def _battle(client: Client, arena_slug: str, **body: Any) -> dict[str, Any]:
    response = _post(client, f"/api/v1/arenas/{arena_slug}/battles", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_it_lists_active_arenas_with_counts(client: Client) -> None:
    arena = ready_arena(models=3)
    ArenaFactory.create(is_active=False)

    body = client.get("/api/v1/arenas").json()

    assert [a["slug"] for a in body] == [arena.slug]
    assert body[0]["models"] == 3
    assert body[0]["votes"] == 0


def test_it_serves_a_battle_without_model_names(client: Client) -> None:
    arena = ready_arena(models=4)
    names = list(arena.generative_models.values_list("name", flat=True))

    battle = _battle(client, arena.slug, mode="rank_k", k=4)

    assert [s["label"] for s in battle["slots"]] == ["A", "B", "C", "D"]
    serialized = str(battle)
    assert not any(name in serialized for name in names)


def test_it_records_a_vote_and_reveals_the_models(client: Client) -> None:
    arena = ready_arena(models=4)
    battle = _battle(client, arena.slug, mode="best_of_k", k=4)

    response = _post(
        client, f"/api/v1/battles/{battle['id']}/vote", {"token": battle["token"], "choice": "D"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["ranking"] == [["D"], ["A", "B", "C"]]
    assert body["is_partial"] is True
    revealed = {r["model"] for r in body["reveal"]}
    assert revealed == set(arena.generative_models.values_list("name", flat=True))


def test_a_second_vote_gets_409_and_changes_nothing(client: Client) -> None:
    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)
    url = f"/api/v1/battles/{battle['id']}/vote"
    assert _post(client, url, {"token": battle["token"], "choice": "A"}).status_code == 201

    replay = _post(client, url, {"token": battle["token"], "choice": "B"})

    assert replay.status_code == 409
    assert replay.json()["code"] == "already_voted"
    assert Vote.objects.get().slot_ranking == [["A"], ["B"]]


def test_a_vote_from_another_voter_gets_403(client: Client) -> None:
    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)
    stranger = Client()

    response = _post(
        stranger, f"/api/v1/battles/{battle['id']}/vote", {"token": battle["token"], "choice": "A"}
    )

    assert response.status_code == 403
    assert "error" in response.json()
    assert not Vote.objects.exists()


def test_a_vote_from_another_voter_with_a_cookie_of_its_own_gets_403_and_counts_to_it(
    client: Client,
) -> None:
    """The vote's battle is read together with the voter it was served to; a voter with another
    cookie is not taken for that one: refused, and the refusal counts to the stranger."""
    from arena.models import Voter

    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)
    stranger = Client()
    _battle(stranger, arena.slug)  # (the stranger now has its cookie)

    response = _post(
        stranger, f"/api/v1/battles/{battle['id']}/vote", {"token": battle["token"], "choice": "A"}
    )

    owner = Battle.objects.get(public_id=battle["id"]).voter
    assert response.status_code == 403
    assert not Vote.objects.exists()
    assert Voter.objects.get(pk=owner.pk).rejected_votes == 0
    assert Voter.objects.exclude(pk=owner.pk).get().rejected_votes == 1


def test_a_vote_on_a_malformed_battle_id_is_refused_with_a_cookie_too(client: Client) -> None:
    """The voter is read alone when the battle id cannot be one; its token names another
    battle, so the vote is refused before any battle is looked up."""
    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)

    response = _post(
        client, "/api/v1/battles/not-a-battle/vote", {"token": battle["token"], "choice": "A"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"token": "garbage", "choice": "A"}, 400),
        ({"choice": "A"}, 400),
        ({"token": None, "choice": "A"}, 400),
    ],
)
def test_bad_tokens_get_a_json_4xx(client: Client, body: dict[str, Any], status: int) -> None:
    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)

    response = _post(client, f"/api/v1/battles/{battle['id']}/vote", body)

    assert response.status_code == status
    assert response.json()["error"]
    assert not Vote.objects.exists()


def test_a_bad_ranking_gets_400_with_a_clear_message(client: Client) -> None:
    arena = ready_arena(models=4)
    battle = _battle(client, arena.slug, mode="rank_k", k=4)

    response = _post(
        client,
        f"/api/v1/battles/{battle['id']}/vote",
        {"token": battle["token"], "ranks": {"A": 1, "B": 1, "C": 9, "D": 2}},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "The rank for C must be between 1 and 4; got 9."
    assert Battle.objects.get().state == "served"


def test_malformed_json_gets_400(client: Client) -> None:
    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)

    response = client.post(
        f"/api/v1/battles/{battle['id']}/vote", "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert "error" in response.json()


def test_an_unknown_battle_gets_404(client: Client) -> None:
    arena = ready_arena(models=2)
    battle = _battle(client, arena.slug)
    other_id = "00000000-0000-4000-8000-000000000000"

    response = _post(
        client, f"/api/v1/battles/{other_id}/vote", {"token": battle["token"], "choice": "A"}
    )

    assert response.status_code in (400, 404)
    assert "error" in response.json()


def test_an_unknown_arena_gets_404(client: Client) -> None:
    response = _post(client, "/api/v1/arenas/nope/battles", {})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_arena_without_enough_outputs_says_so(client: Client) -> None:
    arena = ready_arena(models=1)

    response = _post(client, f"/api/v1/arenas/{arena.slug}/battles", {})

    assert response.status_code == 503
    assert "cannot start a 2-way battle yet" in response.json()["error"]


def test_a_mode_the_arena_does_not_offer_gets_400(client: Client) -> None:
    arena = ready_arena(models=4, vote_modes=["pairwise"], default_mode="pairwise")

    response = _post(client, f"/api/v1/arenas/{arena.slug}/battles", {"mode": "rank_k"})

    assert response.status_code == 400
    assert "not offered" in response.json()["error"]


def test_the_openapi_schema_is_served(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()

    assert "/api/v1/battles/{battle_id}/vote" in schema["paths"]


def test_the_api_docs_page_loads_nothing_from_another_host(client: Client) -> None:
    html = client.get("/api/v1/docs").content.decode()

    assert "swagger-ui-bundle.js" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` (and a one-branch ``allOf``) to the schema it names."""
    while "$ref" in node or ("allOf" in node and len(node["allOf"]) == 1):
        node = node["allOf"][0] if "allOf" in node else node
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _parameter(schema: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    [param] = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
    return _resolve(schema, param["schema"])


def test_the_openapi_schema_types_its_parameters_and_answers(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    board = "/api/v1/arenas/{slug}/leaderboard"

    assert set(_parameter(schema, board, "method")["enum"]) == set(METHODS)
    assert _parameter(schema, board, "page_size")["maximum"] == 200
    assert _parameter(schema, board, "page")["minimum"] == 1
    battle_in = schema["components"]["schemas"]["BattleIn"]["properties"]
    assert set(_resolve(schema, battle_in["mode"]["anyOf"][0])["enum"]) == set(VoteMode.values)
    assert {b.get("maximum") for b in battle_in["k"]["anyOf"]} >= {MAX_K}
    vote_in = schema["components"]["schemas"]["VoteIn"]["properties"]
    assert {"A", "B", "tie", "both_bad"} <= set(
        _resolve(schema, vote_in["choice"]["anyOf"][0])["enum"]
    )
    operations = {
        op["operationId"] for methods in schema["paths"].values() for op in methods.values()
    }
    assert {
        "arenas_list",
        "battles_create",
        "battles_vote",
        "arenas_leaderboard",
        "arenas_leaderboard_history",
        "arenas_model_record",
        "arenas_integrity",
    } <= operations
    for path, answer in [
        (board, "LeaderboardOut"),
        ("/api/v1/arenas/{slug}/models/{model_slug}", "ModelRecordOut"),
    ]:
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        assert content["application/json"]["schema"]["$ref"].endswith(f"/{answer}")


def test_the_model_record_matches_its_schema(client: Client) -> None:
    arena = ready_arena(models=3)
    battle = _battle(client, arena.slug, mode="pairwise")
    _post(client, f"/api/v1/battles/{battle['id']}/vote", {"token": battle["token"], "choice": "A"})
    slug = arena.generative_models.order_by("pk")[0].slug

    record = client.get(f"/api/v1/arenas/{arena.slug}/models/{slug}").json()

    assert set(record["standings"]) == set(METHODS)
    assert set(record) >= {"model", "slug", "standings", "online", "head_to_head"}


def _strictly(model: Any, body: dict[str, Any]) -> None:
    """``body`` is exactly an instance of ``model``: every field, of its type, and no other."""
    from pydantic import ConfigDict, create_model

    strict = create_model(  # type: ignore[call-overload]
        f"Strict{model.__name__}",
        __config__=ConfigDict(extra="forbid", strict=True),
        **{
            name: (
                _strict_type(field.annotation),
                ... if field.is_required() else field.default,
            )
            for name, field in model.model_fields.items()
        },
    )
    strict.model_validate(body)


def _strict_type(annotation: Any) -> Any:
    from typing import get_args, get_origin

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict[str, Any]  # checked by its own _strictly call
    (item,) = get_args(annotation) if get_origin(annotation) is list else (None,)
    if isinstance(item, type) and issubclass(item, BaseModel):
        return list[dict[str, Any]]
    return annotation


@pytest.mark.parametrize(
    ("mode", "k", "ballot"),
    [
        ("pairwise", 2, {"choice": "tie"}),
        ("best_of_k", 4, {"choice": "C"}),
        ("rank_k", 4, {"ranks": {"A": 2, "B": 1, "C": 2, "D": 3}}),
    ],
)
def test_the_battle_and_vote_answers_are_exactly_their_documented_schemas(
    client: Client, mode: str, k: int, ballot: dict[str, Any]
) -> None:
    """The two busiest answers are rendered from dicts without a pass through their response
    models (frontend.api._answer): this holds them to those models, field by field."""
    from frontend.api import BattleOut, PromptOut, RevealOut, SlotOut, VoteOut

    arena = ready_arena(models=4)
    battle = _battle(client, arena.slug, mode=mode, k=k)
    _strictly(BattleOut, battle)
    _strictly(PromptOut, battle["prompt"])
    for slot in battle["slots"]:
        _strictly(SlotOut, slot)

    vote = _post(
        client, f"/api/v1/battles/{battle['id']}/vote", {"token": battle["token"], **ballot}
    )
    assert vote.status_code == 201
    assert vote["Content-Type"] == "application/json; charset=utf-8"
    body = vote.json()
    _strictly(VoteOut, body)
    for reveal in body["reveal"]:
        _strictly(RevealOut, reveal)
    assert len(body["reveal"]) == k == battle["k"]


def test_a_named_battle_s_answer_is_its_documented_schema(client: Client) -> None:
    from frontend.api import BattleOut

    arena = ready_arena(models=3)
    slugs = list(arena.generative_models.order_by("pk").values_list("slug", flat=True)[:2])
    battle = _battle(client, arena.slug, models=slugs)

    _strictly(BattleOut, battle)
    assert battle["named"] is True
