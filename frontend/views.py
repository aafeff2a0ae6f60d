"""Server-rendered voting pages (htmx). Views parse input, call one service/selector, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from arena import selectors, services
from arena.errors import ArenaError, InvalidVote, NotEnoughAssets
from arena.middleware import client_ip, request_voter
from arena.models import Arena, VoteMode
from arena.tokens import battle_token_make

MODE_LABELS = {
    VoteMode.PAIRWISE: "Pairwise",
    VoteMode.BEST_OF_K: "Pick the best",
    VoteMode.RANK_K: "Rank all",
}


def _mode_from(request: HttpRequest, arena: Arena) -> str:
    mode = request.GET.get("mode") or arena.default_mode
    return mode if mode in arena.vote_modes else arena.default_mode


def _battle_context(request: HttpRequest, arena: Arena) -> dict[str, Any]:
    mode = _mode_from(request, arena)
    context: dict[str, Any] = {
        "arena": arena,
        "mode": mode,
        "modes": [(m, MODE_LABELS[m]) for m in arena.vote_modes],
    }
    try:
        k = int(request.GET["k"]) if request.GET.get("k") else None
    except ValueError:
        k = None
    try:
        battle = services.battle_create(arena=arena, voter=request_voter(request), mode=mode, k=k)
    except NotEnoughAssets as exc:
        context["notice"] = exc.message
        return context
    view = selectors.battle_view(battle=battle)
    context.update(
        battle=battle,
        view=view,
        token=battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
        ranks=list(range(1, battle.k + 1)),
        labels=[slot.label for slot in view.slots],
    )
    return context


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html", {"arenas": selectors.arena_list()})


@require_GET
def arena_page(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        arena = selectors.arena_get(slug=slug)
    except ArenaError as exc:
        return render(request, "frontend/error.html", {"message": exc.message}, status=exc.status)
    context = _battle_context(request, arena)
    return render(request, "frontend/arena.html", context)


@require_GET
def battle_partial(request: HttpRequest, slug: str) -> HttpResponse:
    """The next battle, swapped into the page by htmx without a full reload."""
    try:
        arena = selectors.arena_get(slug=slug)
    except ArenaError as exc:
        return render(request, "frontend/_notice.html", {"notice": exc.message}, status=exc.status)
    return render(request, "frontend/_battle.html", _battle_context(request, arena))


@require_POST
def vote(request: HttpRequest, battle_id: Any) -> HttpResponse:
    """Record the vote posted by the battle form; answer with the reveal (htmx out-of-band swaps)."""
    ranks = {key[5:]: value for key, value in request.POST.items() if key.startswith("rank_")}
    duplicated = [
        key[5:]
        for key in request.POST
        if key.startswith("rank_") and len(request.POST.getlist(key)) > 1
    ]
    try:
        if duplicated:
            raise InvalidVote(f"Slot {', '.join(duplicated)} was given more than one rank.")
        vote = services.vote_record(
            battle_public_id=str(battle_id),
            token=request.POST.get("token", ""),
            voter=request_voter(request),
            choice=request.POST.get("choice") or None,
            ranks=ranks or None,
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except ArenaError as exc:
        response = render(
            request, "frontend/_vote_error.html", {"message": exc.message}, status=exc.status
        )
        response["HX-Reswap"] = "none"  # keep the form; only the out-of-band error box changes
        return response
    view = selectors.battle_view(battle=vote.battle)
    placements = _placements(view.ranking, vote.is_partial)
    arena = vote.battle.arena
    return render(
        request,
        "frontend/_vote_result.html",
        {
            "view": view,
            "vote": vote,
            "arena": arena,
            "mode": vote.battle.mode,
            "slots": [(slot, placements.get(slot.label, "")) for slot in view.slots],
        },
        status=201,
    )


def _placements(groups: list[list[str]], is_partial: bool) -> dict[str, str]:
    """A short human label per slot: "Winner", "2nd", "Tied 1st", "Not picked"."""
    labels: dict[str, str] = {}
    place = 1
    for index, group in enumerate(groups):
        if is_partial and index == len(groups) - 1:
            text = "Not picked"
        else:
            ordinal = {1: "1st", 2: "2nd", 3: "3rd"}.get(place, f"{place}th")
            text = f"Tied {ordinal}" if len(group) > 1 else ("Winner" if place == 1 else ordinal)
        for label in group:
            labels[label] = text
        place += len(group)
    return labels


@require_GET
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        arena = selectors.arena_get(slug=slug)
    except ArenaError as exc:
        return render(request, "frontend/error.html", {"message": exc.message}, status=exc.status)
    rows = selectors.arena_win_rates(arena=arena)
    return render(request, "frontend/leaderboard.html", {"arena": arena, "rows": rows})
