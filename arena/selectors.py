"""Reads of the arena's domain (``<noun>_<query>``). No writes here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from arena.errors import InvalidToken, NotFound
from arena.models import (
    SLOT_LABELS,
    Arena,
    Asset,
    AssetStatus,
    Battle,
    BattleSlot,
    BattleState,
    GenerativeModel,
    LeaderboardSnapshot,
    ModerationState,
    PairTally,
    Vote,
    VoteExclusion,
)
from arena.tokens import slot_media_read, slot_media_token


def arena_list() -> QuerySet[Arena]:
    """Active arenas with their counts of active models and votes (two aggregate subqueries)."""
    return (
        Arena.objects.filter(is_active=True)
        .annotate(
            model_count=Count(
                "generative_models", filter=Q(generative_models__is_active=True), distinct=True
            ),
            vote_count=Count("votes", distinct=True),
        )
        .order_by("position", "name")
    )


def arena_get(*, slug: str) -> Arena:
    try:
        return Arena.objects.select_related("prompt_set").get(slug=slug, is_active=True)
    except Arena.DoesNotExist:
        raise NotFound(f"No active arena called {slug!r}.") from None


def arena_ready_pool(*, arena: Arena) -> dict[int, dict[int, list[int]]]:
    """Ready assets of the arena's active models on its approved prompts: prompt -> model -> assets."""
    rows = Asset.objects.filter(
        status=AssetStatus.READY,
        model__is_active=True,
        model__arenas=arena,
        prompt__prompt_set_id=arena.prompt_set_id,
        prompt__moderation_state=ModerationState.APPROVED,
    ).values_list("prompt_id", "model_id", "id")
    pool: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for prompt_id, model_id, asset_id in rows:
        pool[prompt_id][model_id].append(asset_id)
    return pool


def voter_revealed_assets(*, voter_id: int, arena: Arena, recent: int = 500) -> set[int]:
    """The outputs this voter has seen with their models' names, in their last ``recent``
    voted battles of the arena (one query). Matchmaking shows other outputs when it can: a
    revealed output shown again names its model to anyone who remembers its bytes."""
    battles = (
        Battle.objects.filter(voter_id=voter_id, arena=arena, state=BattleState.VOTED)
        .order_by("-pk")
        .values("pk")[:recent]
    )
    return set(BattleSlot.objects.filter(battle__in=battles).values_list("asset_id", flat=True))


def battle_get(*, public_id: Any) -> Battle:
    try:
        return Battle.objects.select_related("arena", "prompt", "voter").get(public_id=public_id)
    except (ValueError, Battle.DoesNotExist):
        raise NotFound("No such battle.") from None


@dataclass(frozen=True)
class SlotView:
    label: str
    media_type: str
    fmt: str
    url: str
    width: int | None
    height: int | None
    # Only filled once the battle has its vote:
    model_name: str = ""
    model_organisation: str = ""
    model_link: str = ""
    original_url: str = ""  # the model's own file (the slot serves its normalised form)
    original_fmt: str = ""


def _original(asset: Asset) -> tuple[str, str]:
    """(link, format) of the model's own file: the stored original, or the served file when
    normalising left it as it was."""
    stored = asset.original or asset.file
    return stored.url, asset.original_fmt or asset.fmt


@dataclass(frozen=True)
class BattleView:
    battle: Battle
    slots: list[SlotView]
    revealed: bool
    ranking: list[list[str]] = field(default_factory=list)

    @property
    def has_video(self) -> bool:
        return any(slot.media_type == "video" for slot in self.slots)

    @property
    def has_3d(self) -> bool:
        return any(slot.media_type in ("mesh", "splat") for slot in self.slots)


def slot_media_url(*, battle: Battle, position: int) -> str:
    """The link a battle page fetches one slot's output through: unique to the battle and the
    slot, expiring, with no path or extension (``/m/<token>``; see ``battle_slot_for_media``)."""
    token = slot_media_token(battle_public_id=str(battle.public_id), position=position)
    return reverse("battle-media", args=[token])


def battle_slot_for_media(*, token: str) -> BattleSlot:
    """The slot (with its asset) a media link points to; NotFound / ExpiredToken otherwise."""
    try:
        battle_public_id, position = slot_media_read(token)
    except InvalidToken:
        raise NotFound("No such media link.") from None
    slot = (
        BattleSlot.objects.select_related("asset")
        .filter(battle__public_id=battle_public_id, position=position)
        .first()
    )
    if slot is None or not slot.asset.file:
        raise NotFound("No such media link.")
    return slot


def battle_view(*, battle: Battle) -> BattleView:
    """What a page or API may show of a battle: model identities only after its vote, and media
    only through per-battle links (the same output has another URL in every battle)."""
    revealed = battle.state == BattleState.VOTED
    slot_rows = battle.slots.select_related("asset", "model").order_by("position")
    slots = [
        SlotView(
            label=slot.label,
            media_type=slot.asset.media_type,
            fmt=slot.asset.fmt,
            url=slot_media_url(battle=battle, position=slot.position),
            width=slot.asset.width,
            height=slot.asset.height,
            model_name=slot.model.name if revealed else "",
            model_organisation=slot.model.organisation if revealed else "",
            model_link=slot.model.link if revealed else "",
            original_url=_original(slot.asset)[0] if revealed else "",
            original_fmt=_original(slot.asset)[1] if revealed else "",
        )
        for slot in slot_rows
    ]
    ranking: list[list[str]] = []
    if revealed:
        ranking = Vote.objects.values_list("slot_ranking", flat=True).get(battle=battle)
    return BattleView(battle=battle, slots=slots, revealed=revealed, ranking=ranking)


@dataclass(frozen=True)
class SlotProgress:
    label: str
    status: str


def battle_generation_status(*, battle: Battle) -> list[SlotProgress]:
    """Per-slot generation state of a battle.

    No model names and no error texts: a remote app's error can name the model, and the vote
    has not happened yet (operators see the errors in the admin).
    """
    rows = battle.slots.order_by("position").values_list("position", "asset__status")
    return [SlotProgress(label=SLOT_LABELS[position], status=status) for position, status in rows]


# --- leaderboards -----------------------------------------------------------------------------


def leaderboard_latest(*, arena: Arena, method: str) -> LeaderboardSnapshot | None:
    """The newest snapshot of ``method`` for the arena, or None before the first rebuild."""
    return (
        LeaderboardSnapshot.objects.filter(arena=arena, method=method)
        .order_by("-created_at", "-pk")
        .first()
    )


def leaderboard_history(
    *, arena: Arena, method: str, limit: int = 200
) -> list[LeaderboardSnapshot]:
    """Snapshots of ``method``, oldest first (the newest ``limit``): the rating history."""
    rows = list(
        LeaderboardSnapshot.objects.filter(arena=arena, method=method).order_by(
            "-created_at", "-pk"
        )[:limit]
    )
    return rows[::-1]


@dataclass(frozen=True)
class PairMatrix:
    models: list[GenerativeModel]
    # win_rate[i][j]: share of i's comparisons with j that i won (ties half, each comparison at
    # its vote's weight); None if never met. games: the comparisons, unweighted.
    win_rate: list[list[float | None]]
    games: list[list[int]]


def arena_pair_matrix(*, arena: Arena, models: list[GenerativeModel] | None = None) -> PairMatrix:
    """Pairwise win rates between the arena's models, from the aggregated pair tallies."""
    models = (
        models
        if models is not None
        else list(GenerativeModel.objects.filter(arenas=arena).order_by("name"))
    )
    index = {m.pk: i for i, m in enumerate(models)}
    n = len(models)
    wins = [[0.0] * n for _ in range(n)]
    games = [[0] * n for _ in range(n)]
    weight = [[0.0] * n for _ in range(n)]
    for a, b, a_wins, b_wins, ties, comparisons in PairTally.objects.filter(
        arena=arena
    ).values_list("model_a_id", "model_b_id", "a_wins", "b_wins", "ties", "comparisons"):
        if a in index and b in index:
            i, j = index[a], index[b]
            total = max(0.0, a_wins + b_wins + ties)
            wins[i][j] += max(0.0, a_wins + ties / 2)
            wins[j][i] += max(0.0, b_wins + ties / 2)
            weight[i][j] += total
            weight[j][i] += total
            games[i][j] += comparisons
            games[j][i] += comparisons
    # Win shares are weighted like the leaderboards (votes at their voters' earned trust).
    rate = [
        [
            min(1.0, wins[i][j] / weight[i][j]) if games[i][j] and weight[i][j] > 0 else None
            for j in range(n)
        ]
        for i in range(n)
    ]
    return PairMatrix(models=models, win_rate=rate, games=games)


def arena_excluded_votes(*, arena: Arena) -> int:
    """How many of the arena's votes fraud checks keep out of its leaderboards."""
    return VoteExclusion.objects.filter(vote__arena=arena).count()
