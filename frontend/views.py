"""Server-rendered voting pages (htmx). Views parse input, call one service/selector, render."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from arena import selectors, services
from arena.errors import ArenaError, InvalidVote, NotEnoughAssets, NotYourBattle, RateLimited
from arena.exports import vote_rows
from arena.leaderboards import (
    METHOD_LABELS,
    METHODS,
    leaderboard_current,
    top_votes_to_settle,
)
from arena.middleware import client_ip, request_voter
from arena.models import Arena, Battle, BattleState, GenerativeModel, VoteMode
from arena.ratelimit import rate_limit_network, rate_limit_request
from arena.sampling import arena_sampling
from arena.tokens import battle_token_make

MODE_LABELS = {
    VoteMode.PAIRWISE: "Pairwise",
    VoteMode.BEST_OF_K: "Pick the best",
    VoteMode.RANK_K: "Rank all",
}


def _mode_from(request: HttpRequest, arena: Arena) -> str:
    mode = request.GET.get("mode") or arena.default_mode
    return mode if mode in arena.vote_modes else arena.default_mode


def _base_context(arena: Arena, mode: str) -> dict[str, Any]:
    return {
        "arena": arena,
        "mode": mode,
        "modes": [(m, MODE_LABELS[m]) for m in arena.vote_modes],
        "shortcuts": settings.VOTE_SHORTCUTS,
    }


def _battle_context(
    request: HttpRequest, arena: Arena
) -> tuple[dict[str, Any], RateLimited | None]:
    """A new battle's context; a notice instead when none can be served, with the refusal if
    the request was rate-limited."""
    mode = _mode_from(request, arena)
    try:
        k = int(request.GET["k"]) if request.GET.get("k") else None
    except ValueError:
        k = None
    if k not in ([2] if mode == VoteMode.PAIRWISE else arena.k_values):
        k = None  # a hand-edited link falls back to the arena's sizes (the API answers 400)
    try:
        rate_limit_request(request, action="battle")
        battle = services.battle_create(
            arena=arena, voter=request_voter(request, seen_in=arena), mode=mode, k=k
        )
    except RateLimited as exc:
        return {**_base_context(arena, mode), "notice": exc.message}, exc
    except NotEnoughAssets as exc:
        return {**_base_context(arena, mode), "notice": exc.message}, None
    return _served_battle_context(battle), None


def _retry_after(response: HttpResponse, exc: ArenaError | None) -> HttpResponse:
    """A rate-limited answer also says when to come back."""
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after_s)
    return response


def _served_battle_context(battle: Battle) -> dict[str, Any]:
    view = selectors.battle_view(battle=battle)
    return {
        **_base_context(battle.arena, battle.mode),
        "battle": battle,
        "view": view,
        "token": battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
        "ranks": list(range(1, battle.k + 1)),
        "labels": [slot.label for slot in view.slots],
    }


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html", {"arenas": selectors.arena_list()})


@require_GET
def arena_page(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        arena = selectors.arena_get(slug=slug)
    except ArenaError as exc:
        return render(request, "frontend/error.html", {"message": exc.message}, status=exc.status)
    context, limited = _battle_context(request, arena)
    response = render(request, "frontend/arena.html", context, status=429 if limited else 200)
    return _retry_after(response, limited)


@require_GET
def battle_partial(request: HttpRequest, slug: str) -> HttpResponse:
    """The next battle, swapped into the page by htmx without a full reload."""
    try:
        arena = selectors.arena_get(slug=slug, cached=True)
    except ArenaError as exc:
        return render(request, "frontend/_notice.html", {"notice": exc.message}, status=exc.status)
    context, limited = _battle_context(request, arena)
    response = render(request, "frontend/_battle.html", context, status=429 if limited else 200)
    return _retry_after(response, limited)


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
        rate_limit_request(request, action="vote")
        if duplicated:
            raise InvalidVote(f"Slot {', '.join(duplicated)} was given more than one rank.")
        vote = services.vote_record(
            battle_public_id=str(battle_id),
            token=request.POST.get("token", ""),
            voter=request_voter(request, voting_on=str(battle_id)),
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
        return _retry_after(response, exc)
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
            "shortcuts": settings.VOTE_SHORTCUTS,
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
    """An arena's standings by one method, with intervals, head-to-heads and rating history.

    Served from the newest snapshot (``leaderboard_current``): a view never fits. After new votes
    the page says the standings are being updated while a debounced rebuild runs on a worker.
    """
    try:
        arena = selectors.arena_get(slug=slug)
    except ArenaError as exc:
        return render(request, "frontend/error.html", {"message": exc.message}, status=exc.status)
    method = request.GET.get("method") or "bayesian"
    context: dict[str, Any] = {
        "arena": arena,
        "method": method,
        "methods": [(m, METHOD_LABELS[m]) for m in METHODS],
    }
    if method not in METHODS:
        context["error"] = (
            f"There is no ranking method called {method[:40]!r}. "
            f"Pick one of: {', '.join(METHOD_LABELS.values())}."
        )
        return render(request, "frontend/leaderboard.html", context, status=400)
    current = leaderboard_current(arena=arena, method=method)
    snapshot = current.snapshot
    models = arena.generative_models.in_bulk([row["model_id"] for row in snapshot.standings])
    standings = [row for row in snapshot.standings if row["model_id"] in models]
    shared = Counter(row["rank"] for row in standings)
    matrix = selectors.arena_pair_matrix(
        arena=arena, models=[models[row["model_id"]] for row in standings]
    )
    context |= {
        "label": METHOD_LABELS[method],
        "snapshot": snapshot,
        "stale": current.stale,
        "excluded": selectors.arena_excluded_votes(arena=arena),
        "intervals": method != "elo",
        "rows": [_leaderboard_row(row, models[row["model_id"]], shared) for row in standings],
        "heatmap": _heatmap(matrix),
        "chart": {
            "method": method,
            "label": METHOD_LABELS[method],
            "intervals": method != "elo",
            "models": standings,
            "history": [
                {
                    "votes": s.votes,
                    "at": s.created_at.isoformat(),
                    "scores": {str(row["model_id"]): row["score"] for row in s.standings},
                }
                for s in selectors.leaderboard_history(arena=arena, method=method)
            ],
        },
    }
    sampling = arena_sampling(arena=arena)
    if method == "bayesian" and any("votes_to_settle" in row for row in standings):
        top = top_votes_to_settle(standings)
        context["top_settle"] = (
            "Top 10 order: settled at 95%."
            if top == 0
            else "Top 10 order: some neighbours are too close to separate yet."
            if top is None
            else f"Top 10 order: {_about(top)} more votes to settle at 95%."
        )
    context |= {
        "sampling": sampling,
        "sampling_rows": [
            {"model": m, "pcts": [f"{100 * size.rates[m.pk]:.1f}" for size in sampling.sizes]}
            for m in sampling.models
        ],
    }
    return render(request, "frontend/leaderboard.html", context)


def _leaderboard_row(
    row: dict[str, Any], model: GenerativeModel, shared: Counter[int]
) -> dict[str, Any]:
    """A standings row as the table shows it: rounded points and interval, win rate in %."""
    return {
        **row,
        "link": model.link,
        "shared": shared[row["rank"]] > 1,
        "points": round(row["score"]),
        "plus": round(row["high"] - row["score"]),
        "minus": round(row["score"] - row["low"]),
        "win_pct": None if row["win_rate"] is None else round(100 * row["win_rate"]),
        "settle": _settle_text(row.get("votes_to_settle", -1)),
    }


def _about(votes: int) -> str:
    """Two significant figures: 'about 340', 'about 12,000'."""
    digits = max(0, len(str(votes)) - 2)
    return f"about {round(votes, -digits):,}"


def _settle_text(votes: int | None) -> str | None:
    """ "Votes to settle" as the page says it; None where the snapshot has no estimate."""
    if votes == -1:
        return None
    if votes is None:
        return "not in sight yet"
    return "settled" if votes == 0 else f"{_about(votes)} more votes"


def _heatmap(matrix: selectors.PairMatrix) -> list[tuple[GenerativeModel, list[dict[str, Any]]]]:
    """The head-to-head win rates, one row per model, each cell with its colour bucket."""
    return [
        (
            model,
            [
                {
                    "opponent": opponent,
                    "games": games,
                    "pct": None if rate is None else round(100 * rate),
                    "bucket": None if rate is None else round(10 * rate),
                }
                for opponent, rate, games in zip(matrix.models, rates, games_row, strict=True)
            ],
        )
        for model, rates, games_row in zip(
            matrix.models, matrix.win_rate, matrix.games, strict=True
        )
    ]


@require_POST
def own_prompt(request: HttpRequest, slug: str) -> HttpResponse:
    """Start a battle on the voter's own prompt: the K models generate it live."""
    try:
        rate_limit_request(request, action="battle")
        arena = selectors.arena_get(slug=slug)
        upload = request.FILES.get("image")
        battle = services.battle_create_from_prompt(
            arena=arena,
            voter=request_voter(request),
            text=request.POST.get("prompt", ""),
            image=upload.read() if upload else None,
            mode=_mode_from(request, arena),
        )
    except ArenaError as exc:
        response = render(
            request, "frontend/_prompt_error.html", {"message": exc.message}, status=exc.status
        )
        response["HX-Reswap"] = "none"
        return _retry_after(response, exc)
    return render(request, "frontend/_generating.html", _generation_context(battle))


# How the live region words the slots that are not ready yet, in this order.
_GENERATION_STATES = (("running", "generating"), ("pending", "waiting"), ("failed", "failed"))


def _generation_summary(statuses: list[str]) -> str:
    """The sentence the progress live region reads out: "2 anonymous models are generating your
    prompt: 1 of 2 ready, 1 generating." (it changes with every count, so each change is heard)."""
    counts = Counter(statuses)
    parts = [f"{counts['ready']} of {len(statuses)} ready"]
    parts += [f"{counts[state]} {words}" for state, words in _GENERATION_STATES if counts[state]]
    return f"{len(statuses)} anonymous models are generating your prompt: {', '.join(parts)}."


def _generation_context(battle: Battle) -> dict[str, Any]:
    slots = selectors.battle_generation_status(battle=battle)
    statuses = [s.status for s in slots]
    return {
        **_base_context(battle.arena, battle.mode),
        "battle": battle,
        "slots": slots,
        "failed": [s for s in slots if s.status == "failed"],
        "done": statuses.count("ready"),
        "summary": _generation_summary(statuses),
        # What the poller sends back as ``seen``: the slot states the page shows.
        "digest": ",".join(statuses),
    }


def _own_battle(request: HttpRequest, battle_id: Any) -> Battle:
    battle = selectors.battle_get(public_id=battle_id)
    if battle.voter_id != request_voter(request).pk:
        raise NotYourBattle("This battle was started by someone else.")
    return battle


def _whole_container(response: HttpResponse) -> HttpResponse:
    """The answer replaces everything in #battle-container, whatever element asked for it."""
    response["HX-Retarget"] = "#battle-container"
    response["HX-Reswap"] = "innerHTML"
    return response


@require_GET
def battle_progress(request: HttpRequest, battle_id: Any) -> HttpResponse:
    """The progress of a voter's own prompt; the battle once every output is ready.

    Without ``seen`` it answers the whole generating view. The page's poller sends ``seen``, the
    slot states it shows (``digest``): an unchanged state is a 204 (nothing swapped), a changed
    one only the progress list plus the new text of the live region, which stays in the page so
    that screen readers hear each change once (``_generation_poll.html``). The battle, a failure
    and errors replace the whole container.
    """
    try:
        battle = _own_battle(request, battle_id)
    except ArenaError as exc:
        notice = render(
            request, "frontend/_notice.html", {"notice": exc.message}, status=exc.status
        )
        return _whole_container(notice)
    if battle.state != BattleState.GENERATING or services.battle_mark_ready(battle=battle):
        ready = render(request, "frontend/_battle.html", _served_battle_context(battle))
        return _whole_container(ready)
    context = _generation_context(battle)
    seen = request.GET.get("seen")
    if seen is None or context["failed"]:
        return _whole_container(render(request, "frontend/_generating.html", context))
    if seen == context["digest"]:
        return HttpResponse(status=204)
    context["announce"] = _generation_summary(seen.split(",")) != context["summary"]
    return render(request, "frontend/_generation_poll.html", context)


@require_POST
def battle_retry(request: HttpRequest, battle_id: Any) -> HttpResponse:
    """Send the failed generations of a voter's own battle again."""
    try:
        battle = _own_battle(request, battle_id)
    except ArenaError as exc:
        return render(request, "frontend/_notice.html", {"notice": exc.message}, status=exc.status)
    failed = list(battle.slots.filter(asset__status="failed").values_list("asset_id", flat=True))
    services.assets_retry(asset_ids=failed)
    return render(request, "frontend/_generating.html", _generation_context(battle))


# --- optional accounts ------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login; the browser's voter is tied to the account as soon as the login succeeds.

    (``request_voter`` would also tie it on the next request that resolves the voter: doing it
    here means votes cast from this browser are attributed even before that.)
    """

    template_name = "registration/login.html"
    next_page = "frontend:home"  # a URL name: resolve_url reverses it

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        if settings.VOTER_COOKIE_NAME in self.request.COOKIES:
            request_voter(self.request)  # links the cookie's voter to the now-authenticated user
        return response


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only). The voter cookie goes too: the next person at this browser
    must not vote as the account's voter."""

    next_page = "frontend:home"  # a URL name: resolve_url reverses it

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        response.delete_cookie(settings.VOTER_COOKIE_NAME, samesite="Lax")
        return response


@require_GET
def votes_download(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """The arena's votes as JSON Lines (the rows of ``manage.py export_votes``, pseudonyms under
    a key drawn for this download), streamed. For staff, and for anyone when the arena
    publishes its votes (without voters' own prompt texts or exclusion details: see
    ``vote_rows(public=True)``); others get a 404, as if there were nothing to download."""
    try:
        arena = selectors.arena_get(slug=slug)
    except ArenaError as exc:
        return render(request, "frontend/error.html", {"message": exc.message}, status=exc.status)
    if not (arena.publish_votes or request.user.is_staff):
        message = "This arena does not publish its votes."
        return render(request, "frontend/error.html", {"message": message}, status=404)
    if not request.user.is_staff:
        try:
            rate_limit_network(request, action="download")
        except RateLimited as exc:
            refused = render(
                request, "frontend/error.html", {"message": exc.message}, status=exc.status
            )
            refused["Retry-After"] = str(exc.retry_after_s)
            return refused
    rows = vote_rows(arena=arena, public=not request.user.is_staff)
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{arena.slug}-votes.jsonl"'
    response["Cache-Control"] = "private, no-store"
    return response
