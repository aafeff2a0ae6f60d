"""JSON API, versioned under ``/api/v1/``. Errors are always ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated, Any, Literal

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import http_date
from ninja import NinjaAPI, Query, Schema
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from redis.exceptions import RedisError

from arena import selectors, services
from arena.errors import ArenaError, NotFound, RateLimited
from arena.fraud import arena_integrity
from arena.leaderboards import (
    LEADERBOARD_VERSION,
    leaderboard_current_head,
    leaderboard_snapshot,
    leaderboards_current,
    top_votes_to_settle,
)
from arena.middleware import client_ip, request_voter
from arena.models import MAX_K, MIN_K, GenerativeModel, ModelRating
from arena.ratelimit import rate_limit_request
from arena.sampling import arena_sampling
from arena.tokens import battle_token_make

logger = logging.getLogger(__name__)


class InvalidRequest(ArenaError):
    code = "invalid_request"


api = NinjaAPI(
    title="Arena API",
    version="1",
    description="Anonymous generative-model battles, votes and leaderboards.",
    urls_namespace="api-v1",
)


@api.exception_handler(ArenaError)
def _arena_error(request: HttpRequest, exc: ArenaError) -> HttpResponse:
    response = api.create_response(request, exc.to_dict(), status=exc.status)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after_s)
    return response


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


class Out(BaseModel):
    """A response built from dicts: pydantic checks it in its core. (ninja's ``Schema`` reads
    every field through an attribute getter, for ORM objects: ~6x the CPU, on the vote path.)"""


def _answer(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
    """``body`` rendered as ninja renders an answer, without the round trip through the
    operation's response model (validate into pydantic objects, dump back to dicts: a tenth of
    the battle and vote path's CPU). For the hot endpoints only, whose bodies are built field
    by field from their schema; tests check every mode's answer against it."""
    return api.create_response(request, body, status=status)


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


Mode = Literal["pairwise", "best_of_k", "rank_k"]
Method = Literal["bayesian", "bradley_terry", "elo"]
Choice = Literal["A", "B", "C", "D", "tie", "both_bad"]


class BattleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = None
    # A whole number (1e20 or 4.0 are refused, not rounded); the arena says which sizes it serves.
    k: StrictInt | None = Field(default=None, ge=MIN_K, le=MAX_K)
    # Model slugs the voter chose (2..the arena's largest K). A named battle's vote is kept but
    # never counts on the anonymous leaderboards.
    models: list[Annotated[str, StringConstraints(min_length=1, max_length=80)]] | None = Field(
        default=None, max_length=16
    )


class SlotOut(Out):
    """One slot before the vote: nothing its model could be read from. ``url`` is a link unique
    to this battle and slot that expires with the battle token; ``media_type`` picks the viewer
    (image, video, mesh, splat)."""

    label: str
    media_type: str
    url: str


class PromptOut(Out):
    text: str
    conditioning_image_url: str | None = None


class BattleOut(Out):
    id: str
    token: str
    arena: str
    mode: str
    k: int
    named: bool
    prompt: PromptOut
    slots: list[SlotOut]


class VoteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    choice: Choice | None = None
    ranks: dict[str, Any] | None = None
    ranking: list[Any] | None = None


class RevealOut(Out):
    label: str
    model: str
    organisation: str
    link: str
    original_url: str = Field(
        description="The model's own file; battles serve every output normalised to one form."
    )
    original_format: str


class VoteOut(Out):
    battle: str
    outcome: str
    ranking: list[list[str]]
    is_partial: bool
    reveal: list[RevealOut]


@api.get("/arenas", response=list[ArenaOut], tags=["arenas"], operation_id="arenas_list")
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
    response={201: BattleOut, 400: ErrorOut, 404: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    tags=["battles"],
    operation_id="battles_create",
)
def battles_create(
    request: HttpRequest, slug: str, payload: BattleIn | None = None
) -> HttpResponse:
    """Serve a new battle to the caller (identified by the voter cookie).

    Anonymous by default. With ``models`` (slugs) the caller picks the contenders: the battle is
    ``named`` and its vote never counts on the leaderboards. Too many requests get 429 with a
    ``Retry-After`` header.
    """
    rate_limit_request(request, action="battle")
    arena = selectors.arena_get(slug=slug, cached=True)
    payload = payload or BattleIn()
    if payload.models is None:
        battle = services.battle_create(
            arena=arena,
            voter=request_voter(request, seen_in=arena),
            mode=payload.mode,
            k=payload.k,
        )
    else:
        if payload.k is not None and payload.k != len(payload.models):
            raise InvalidRequest(
                f"'k' ({payload.k}) must match the number of named models ({len(payload.models)})."
            )
        battle = services.battle_create_named(
            arena=arena, voter=request_voter(request), model_slugs=payload.models, mode=payload.mode
        )
    view = selectors.battle_view(battle=battle)
    prompt = battle.prompt
    return _answer(
        request,
        201,
        {
            "id": str(battle.public_id),
            "token": battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
            "arena": arena.slug,
            "mode": battle.mode,
            "k": battle.k,
            "named": battle.is_named,
            "prompt": {
                "text": prompt.text,
                "conditioning_image_url": prompt.conditioning_image.url
                if prompt.conditioning_image
                else None,
            },
            "slots": [
                {"label": s.label, "media_type": s.media_type, "url": s.url} for s in view.slots
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
        429: ErrorOut,
    },
    tags=["battles"],
    operation_id="battles_vote",
)
def battles_vote(request: HttpRequest, battle_id: str, payload: VoteIn) -> HttpResponse:
    """Vote once on a battle you were served; the response reveals the models.

    Too many votes get 429 with a ``Retry-After`` header, and nothing is recorded.
    """
    rate_limit_request(request, action="vote")
    vote = services.vote_record(
        battle_public_id=battle_id,
        token=payload.token,
        voter=request_voter(request, voting_on=battle_id),
        choice=payload.choice,
        ranks=payload.ranks,
        ranking=payload.ranking,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    view = selectors.battle_view(battle=vote.battle, links=False)  # the reveal shows no media
    return _answer(
        request,
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
                    "original_url": s.original_url,
                    "original_format": s.original_fmt,
                }
                for s in view.slots
            ],
        },
    )


class StandingOut(Schema):
    model_id: int
    model: str
    slug: str
    organisation: str
    rank: int = Field(description="1 + the number of models significantly better")
    score: float
    low: float = Field(description="lower end of the 95% interval (the score itself for ELO)")
    high: float
    votes: int
    wins: int
    losses: int
    ties: int
    win_rate: float | None
    provisional: bool
    votes_to_settle: int | None = Field(
        None,
        description="Bayesian only: about how many more votes (arena-wide) until this model is "
        "separated from both neighbours at 95%; 0 settled, null not in sight",
    )
    settle_above: int | None = Field(
        None, description="the same, against the model ranked just above"
    )


class LeaderboardOut(Schema):
    arena: str
    method: Method
    snapshot_id: int | None = Field(description="null before the first snapshot is built")
    vote_set_hash: str = Field(description="identifies the exact set of counted votes")
    votes: int
    code_version: str
    params: dict[str, Any]
    built_at: str
    stale: bool = Field(description="votes arrived since built_at; a rebuild is on its way")
    top10_votes_to_settle: int | None = Field(
        None,
        description="Bayesian only: about how many more votes until the top-10 order is settled "
        "at 95%; 0 settled, null not in sight",
    )
    count: int
    page: int
    page_size: int
    results: list[StandingOut]


class ScoreOut(Schema):
    score: float
    low: float
    high: float


class HistoryEntryOut(Schema):
    snapshot_id: int
    built_at: str
    votes: int
    vote_set_hash: str
    scores: dict[str, ScoreOut] = Field(description="by model slug")


class OnlineRatingOut(Schema):
    elo: float
    mu: float
    sigma: float
    votes: int


class HeadToHeadOut(Schema):
    opponent: str
    win_rate: float | None
    comparisons: int


class ModelRecordOut(Schema):
    model: str
    slug: str
    organisation: str
    link: str
    license: str
    task: str
    standings: dict[str, StandingOut | None] = Field(description="by method")
    online: OnlineRatingOut | None
    head_to_head: list[HeadToHeadOut]


# --- leaderboards -----------------------------------------------------------------------------

LEADERBOARD_CACHE_S = 300
MAX_PAGE_SIZE = 200


def _cache_get(key: str) -> Any:
    """The cached answer, or ``None`` when the cache (Redis) cannot be reached: the answer is
    then built from the database, so a cache outage slows reads down but never fails them."""
    try:
        return cache.get(key)
    except RedisError:
        logger.warning("cache unavailable; answering %s from the database", key)
        return None


def _cache_set(key: str, value: Any, timeout_s: int) -> None:
    try:
        cache.set(key, value, timeout_s)
    except RedisError:
        logger.warning("cache unavailable; %s not cached", key)


@api.get(
    "/arenas/{slug}/leaderboard",
    response={200: LeaderboardOut, 304: None, 400: ErrorOut, 404: ErrorOut},
    tags=["leaderboards"],
    summary="An arena's leaderboard by method, with 95% intervals, paginated",
    operation_id="arenas_leaderboard",
)
def arenas_leaderboard(
    request: HttpRequest,
    slug: str,
    method: Method = "bayesian",
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
) -> HttpResponse:
    """Standings best first, from the newest snapshot (never fitted on this request). Cached;
    answers 304 to a matching ``If-None-Match``.

    ``vote_set_hash`` identifies the exact set of counted votes the snapshot was built from;
    ``stale`` says votes arrived since ``built_at`` (a rebuild has been asked for).
    """
    arena = selectors.arena_get(slug=slug, cached=True)
    current = leaderboard_current_head(arena=arena, method=method)  # one query; no snapshot yet
    key = (
        f"lb:{LEADERBOARD_VERSION}:{arena.pk}:{method}:{current.snapshot_id}:{int(current.stale)}:"
        f"{page}:{page_size}"
    )
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return HttpResponseNotModified(headers={"ETag": etag})
    cached = _cache_get(key)
    if cached is None:
        snapshot = leaderboard_snapshot(arena=arena, method=method, snapshot_id=current.snapshot_id)
        rows = snapshot.standings
        start = (page - 1) * page_size
        body = {
            "arena": arena.slug,
            "method": method,
            "snapshot_id": snapshot.pk,
            "vote_set_hash": snapshot.vote_set_hash,
            "votes": snapshot.votes,
            "code_version": snapshot.code_version,
            "params": snapshot.params,
            "built_at": snapshot.created_at.isoformat(),
            "stale": current.stale,
            "top10_votes_to_settle": top_votes_to_settle(rows) if method == "bayesian" else None,
            "count": len(rows),
            "page": page,
            "page_size": page_size,
            "results": [
                {"votes_to_settle": None, "settle_above": None, **row}
                for row in rows[start : start + page_size]
            ],
        }
        cached = (json.dumps(body), http_date(snapshot.created_at.timestamp()))
        _cache_set(key, cached, LEADERBOARD_CACHE_S)
    payload, modified = cached
    return HttpResponse(
        payload,
        content_type="application/json",
        headers={"ETag": etag, "Last-Modified": modified, "Cache-Control": "public, max-age=30"},
    )


class IntegrityOut(Schema):
    arena: str
    voters: int
    voters_kept: int
    votes: int
    votes_kept: int
    voter_authenticity: float | None
    vote_authenticity: float | None
    excluded_by_detector: dict[str, int]
    last_scan_at: str | None


@api.get(
    "/arenas/{slug}/integrity",
    response={200: IntegrityOut, 404: ErrorOut},
    tags=["leaderboards"],
    operation_id="arenas_integrity",
)
def arenas_integrity(request: HttpRequest, slug: str) -> dict[str, Any]:
    """Vote integrity: the share of voters and votes that fraud checks keep, and the votes
    excluded per detector (a vote excluded for several reasons counts under each)."""

    arena = selectors.arena_get(slug=slug)
    i = arena_integrity(arena=arena)
    return {
        "arena": arena.slug,
        "voters": i.voters,
        "voters_kept": i.voters_kept,
        "votes": i.votes,
        "votes_kept": i.votes_kept,
        "voter_authenticity": None
        if i.voter_authenticity is None
        else round(i.voter_authenticity, 4),
        "vote_authenticity": None if i.vote_authenticity is None else round(i.vote_authenticity, 4),
        "excluded_by_detector": dict(i.by_detector),
        "last_scan_at": i.last_scan_at.isoformat() if i.last_scan_at else None,
    }


class SamplingModelOut(Schema):
    model: str
    slug: str
    probability: float = Field(description="The chance that a battle of this size shows it.")


class SamplingSizeOut(Schema):
    k: int
    models: list[SamplingModelOut]


class SamplingOut(Schema):
    arena: str
    method: str
    draws: int
    built_at: str
    sizes: list[SamplingSizeOut]
    not_shown: list[str] = Field(description="Models of the arena not shown now (slugs).")
    note: str


SAMPLING_METHOD = (
    "overlap sampling over the current Bayesian beliefs (models whose order is still in doubt "
    "are shown more), times each model's matchmaking weight"
)
SAMPLING_NOTE = (
    "Estimated from proposals of the live matchmaker (standard error under 1 point). When the "
    "chosen models share no prompt, a battle falls back to models that do, so a model with few "
    "ready outputs is shown a little less than its rate here."
)


@api.get(
    "/arenas/{slug}/sampling",
    response={200: SamplingOut, 404: ErrorOut},
    tags=["leaderboards"],
    operation_id="arenas_sampling",
)
def arenas_sampling(request: HttpRequest, slug: str) -> dict[str, Any]:
    """Sampling transparency: how likely the matchmaker is to show each model, per battle size."""
    arena = selectors.arena_get(slug=slug)
    sampling = arena_sampling(arena=arena)
    return {
        "arena": arena.slug,
        "method": SAMPLING_METHOD,
        "draws": sampling.draws,
        "built_at": sampling.built_at,
        "sizes": [
            {
                "k": size.k,
                "models": sorted(
                    (
                        {"model": m.name, "slug": m.slug, "probability": size.rates[m.pk]}
                        for m in sampling.models
                    ),
                    key=lambda row: (-row["probability"], row["model"]),
                ),
            }
            for size in sampling.sizes
        ],
        "not_shown": [m.slug for m in sampling.unservable],
        "note": SAMPLING_NOTE,
    }


@api.get(
    "/arenas/{slug}/leaderboard/history",
    response={200: list[HistoryEntryOut], 400: ErrorOut, 404: ErrorOut},
    tags=["leaderboards"],
    operation_id="arenas_leaderboard_history",
)
def arenas_leaderboard_history(
    request: HttpRequest,
    slug: str,
    method: Method = "bayesian",
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Rating history: one entry per snapshot, oldest first."""
    arena = selectors.arena_get(slug=slug)
    return [
        {
            "snapshot_id": s.pk,
            "built_at": s.created_at.isoformat(),
            "votes": s.votes,
            "vote_set_hash": s.vote_set_hash,
            "scores": {
                row["slug"]: {"score": row["score"], "low": row["low"], "high": row["high"]}
                for row in s.standings
            },
        }
        for s in selectors.leaderboard_history(arena=arena, method=method, limit=limit)
    ]


@api.get(
    "/arenas/{slug}/models/{model_slug}",
    response={200: ModelRecordOut, 404: ErrorOut},
    tags=["leaderboards"],
    operation_id="arenas_model_record",
)
def arenas_model_record(request: HttpRequest, slug: str, model_slug: str) -> dict[str, Any]:
    """One model's record in an arena: its row in every method, online ratings, head-to-heads."""
    arena = selectors.arena_get(slug=slug)
    model = GenerativeModel.objects.filter(arenas=arena, slug=model_slug).first()
    if model is None:
        raise NotFound(f"No model {model_slug!r} in arena {slug!r}.")
    standings = {
        snapshot.method: next((r for r in snapshot.standings if r["model_id"] == model.pk), None)
        for snapshot in (current.snapshot for current in leaderboards_current(arena=arena))
    }
    rating = ModelRating.objects.filter(arena=arena, model=model).first()
    matrix = selectors.arena_pair_matrix(arena=arena)
    i = next(n for n, m in enumerate(matrix.models) if m.pk == model.pk)
    return {
        "model": model.name,
        "slug": model.slug,
        "organisation": model.organisation,
        "link": model.link,
        "license": model.license,
        "task": model.task,
        "standings": standings,
        "online": {"elo": rating.elo, "mu": rating.mu, "sigma": rating.sigma, "votes": rating.votes}
        if rating
        else None,
        "head_to_head": [
            {
                "opponent": other.slug,
                "win_rate": matrix.win_rate[i][j],
                "comparisons": matrix.games[i][j],
            }
            for j, other in enumerate(matrix.models)
            if j != i and matrix.games[i][j]
        ],
    }
