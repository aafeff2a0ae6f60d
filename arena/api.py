"""JSON API, versioned under ``/api/v1/``. Errors are always ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from arena import selectors, services
from arena.errors import ArenaError
from arena.middleware import client_ip, request_voter
from arena.tokens import battle_token_make

api = NinjaAPI(
    title="Arena API",
    version="1",
    description="Anonymous generative-model battles, votes and leaderboards.",
    urls_namespace="api-v1",
)


@api.exception_handler(ArenaError)
def _arena_error(request: HttpRequest, exc: ArenaError) -> HttpResponse:
    return api.create_response(request, exc.to_dict(), status=exc.status)


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields = [".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in exc.errors]
    message = f"Invalid request: check {', '.join(fields)}."
    return api.create_response(
        request, {"error": message, "code": "invalid_request", "detail": exc.errors}, status=400
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(
        request,
        {"error": exc.message, "code": "http_error", "detail": None},
        status=exc.status_code,
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(
        request, {"error": "Not found.", "code": "not_found", "detail": None}, status=404
    )


class ErrorOut(Schema):
    error: str
    code: str
    detail: Any = None


class ArenaOut(Schema):
    slug: str
    name: str
    description: str
    task: str
    vote_modes: list[str]
    k_values: list[int]
    default_mode: str
    models: int
    votes: int


class BattleIn(Schema):
    mode: str | None = None
    k: int | None = None


class SlotOut(Schema):
    label: str
    media_type: str
    format: str
    url: str


class PromptOut(Schema):
    text: str
    conditioning_image_url: str | None = None


class BattleOut(Schema):
    id: str
    token: str
    arena: str
    mode: str
    k: int
    prompt: PromptOut
    slots: list[SlotOut]


class VoteIn(Schema):
    token: str
    choice: str | None = None
    ranks: dict[str, Any] | None = None
    ranking: list[Any] | None = None


class RevealOut(Schema):
    label: str
    model: str
    organisation: str
    link: str


class VoteOut(Schema):
    battle: str
    outcome: str
    ranking: list[list[str]]
    is_partial: bool
    reveal: list[RevealOut]


class WinRateOut(Schema):
    model: str
    organisation: str
    votes: int
    win_rate: float | None


@api.get("/arenas", response=list[ArenaOut], tags=["arenas"])
def arenas_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "slug": a.slug,
            "name": a.name,
            "description": a.description,
            "task": a.task,
            "vote_modes": a.vote_modes,
            "k_values": a.k_values,
            "default_mode": a.default_mode,
            "models": a.model_count,  # type: ignore[attr-defined]
            "votes": a.vote_count,  # type: ignore[attr-defined]
        }
        for a in selectors.arena_list()
    ]


@api.post(
    "/arenas/{slug}/battles",
    response={201: BattleOut, 400: ErrorOut, 404: ErrorOut, 503: ErrorOut},
    tags=["battles"],
)
def battles_create(request: HttpRequest, slug: str, payload: BattleIn | None = None) -> Status:
    """Serve a new anonymous battle to the caller (identified by the voter cookie)."""
    arena = selectors.arena_get(slug=slug)
    payload = payload or BattleIn()
    battle = services.battle_create(
        arena=arena, voter=request_voter(request), mode=payload.mode, k=payload.k
    )
    view = selectors.battle_view(battle=battle)
    prompt = battle.prompt
    return Status(
        201,
        {
            "id": str(battle.public_id),
            "token": battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
            "arena": arena.slug,
            "mode": battle.mode,
            "k": battle.k,
            "prompt": {
                "text": prompt.text,
                "conditioning_image_url": prompt.conditioning_image.url
                if prompt.conditioning_image
                else None,
            },
            "slots": [
                {"label": s.label, "media_type": s.media_type, "format": s.fmt, "url": s.url}
                for s in view.slots
            ],
        },
    )


@api.post(
    "/battles/{battle_id}/vote",
    response={
        201: VoteOut,
        400: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        410: ErrorOut,
    },
    tags=["battles"],
)
def battles_vote(request: HttpRequest, battle_id: str, payload: VoteIn) -> Status:
    """Vote once on a battle you were served; the response reveals the models."""
    vote = services.vote_record(
        battle_public_id=battle_id,
        token=payload.token,
        voter=request_voter(request),
        choice=payload.choice,
        ranks=payload.ranks,
        ranking=payload.ranking,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    view = selectors.battle_view(battle=vote.battle)
    return Status(
        201,
        {
            "battle": battle_id,
            "outcome": vote.outcome,
            "ranking": vote.slot_ranking,
            "is_partial": vote.is_partial,
            "reveal": [
                {
                    "label": s.label,
                    "model": s.model_name,
                    "organisation": s.model_organisation,
                    "link": s.model_link,
                }
                for s in view.slots
            ],
        },
    )


@api.get(
    "/arenas/{slug}/win-rates",
    response={200: list[WinRateOut], 404: ErrorOut},
    tags=["leaderboards"],
)
def arenas_win_rates(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    arena = selectors.arena_get(slug=slug)
    return [
        {
            "model": r.model.name,
            "organisation": r.model.organisation,
            "votes": r.votes,
            "win_rate": r.win_rate,
        }
        for r in selectors.arena_win_rates(arena=arena)
    ]
