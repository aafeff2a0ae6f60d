"""Reads of the arena's domain (``<noun>_<query>``). No writes here."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.files.storage import FileSystemStorage
from django.db import connection, models
from django.db.models import Count, Q, QuerySet
from django.db.models.base import ModelState
from django.urls import get_script_prefix, get_urlconf, reverse

from arena import hotpath, localcache
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
    Prompt,
    Vote,
    VoteExclusion,
    Voter,
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


M = TypeVar("M", bound=models.Model)


def _copied(value: Any) -> Any:
    """``value`` with its lists and dicts copied, however deep (a JSON field's value)."""
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    return value


def fresh_copy(instance: M) -> M:
    """A new instance holding a cached row's values (lists and dicts copied too) and none of
    its cached relations: callers may change it without changing what the next caller gets.

    Built without ``Model.__init__`` (a copy of a loaded row, as unpickling builds one): the
    battle path hands out a few per request, and ``from_db`` with a deep copy cost ~10 times
    as much."""
    new = type(instance).__new__(type(instance))
    new.__dict__.update({k: _copied(v) for k, v in instance.__dict__.items() if k != "_state"})
    new._state = ModelState()
    new._state.db, new._state.adding = instance._state.db, False
    return new


def arena_get(*, slug: str, cached: bool = False) -> Arena:
    """The active arena called ``slug``, with its prompt set; NotFound otherwise.

    ``cached`` (the battle path and the leaderboard API): read from the database at most once
    per ``ARENA_LOCAL_CACHE_S`` per process (a missing arena is looked up every time), and
    handed out as a fresh instance each call."""
    found = (
        localcache.cached(("arena", slug), lambda: _arena_read(slug))
        if cached
        else _arena_read(slug)
    )
    if found is None:
        raise NotFound(f"No active arena called {slug!r}.")
    if not cached:
        return found
    arena = fresh_copy(found)
    arena.prompt_set = fresh_copy(found.prompt_set)
    return arena


def _arena_read(slug: str) -> Arena | None:
    return Arena.objects.select_related("prompt_set").filter(slug=slug, is_active=True).first()


def arena_ready_pool(*, arena: Arena) -> dict[int, dict[int, list[int]]]:
    """Ready assets of the arena's active models on its approved prompts: prompt -> model -> assets."""
    return {prompt_id: dict(by_model) for prompt_id, by_model in _ready_rows(arena)[0].items()}


@dataclass(frozen=True)
class ReadyOutput:
    """What a battle slot shows of a ready output before the vote."""

    media_type: str
    fmt: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class ReadyPool:
    """An arena's servable outputs, as one process caches them for the battle path."""

    by_prompt: dict[int, dict[int, list[int]]]  # prompt -> model -> ready asset ids
    outputs: dict[int, ReadyOutput]  # asset id -> what its slot shows
    weights: dict[int, float]  # model id -> its matchmaking weight
    prompts: dict[int, Prompt]  # the prompts of by_prompt (shared: hand out fresh_copy of one)


def _ready_rows(
    arena: Arena,
) -> tuple[dict[int, dict[int, list[int]]], dict[int, ReadyOutput], dict[int, float]]:
    rows = Asset.objects.filter(
        status=AssetStatus.READY,
        model__is_active=True,
        model__arenas=arena,
        prompt__prompt_set_id=arena.prompt_set_id,
        prompt__moderation_state=ModerationState.APPROVED,
    ).values_list(
        "prompt_id", "model_id", "id", "media_type", "fmt", "width", "height",
        "model__matchmaking_weight",
    )  # fmt: skip
    pool: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    outputs: dict[int, ReadyOutput] = {}
    weights: dict[int, float] = {}
    for prompt_id, model_id, asset_id, media_type, fmt, width, height, weight in rows:
        pool[prompt_id][model_id].append(asset_id)
        outputs[asset_id] = ReadyOutput(media_type, fmt, width, height)
        weights[model_id] = weight
    return pool, outputs, weights


def _ready_pool_read(arena: Arena) -> ReadyPool:
    pool, outputs, weights = _ready_rows(arena)
    return ReadyPool(
        by_prompt={prompt_id: dict(by_model) for prompt_id, by_model in pool.items()},
        outputs=outputs,
        weights=weights,
        prompts=Prompt.objects.in_bulk(list(pool)),
    )


def arena_ready_pool_cached(*, arena: Arena, fresh: bool = False) -> ReadyPool:
    """The arena's ready pool, read at most once per ``ARENA_LOCAL_CACHE_S`` per process
    (``fresh``: now). The battle path reads it again when the cached pool cannot fill a battle."""
    return localcache.cached(
        ("ready-pool", arena.pk, arena.prompt_set_id),
        lambda: _ready_pool_read(arena),
        fresh=fresh,
    )


#: How many of a voter's last voted battles in an arena matchmaking looks back on.
SEEN_RECENT = 500


def voter_revealed_assets(*, voter: Voter, arena: Arena, recent: int = SEEN_RECENT) -> set[int]:
    """The outputs this voter has seen with their models' names, in their last ``recent``
    voted battles of the arena (one query, written out: it runs on every battle; none when the
    voter was read together with them, ``known_seen``). Matchmaking shows other outputs when it
    can: a revealed output shown again names its model to anyone who remembers its bytes."""
    known: dict[int, set[int]] | None = getattr(voter, "known_seen", None)
    if known is not None and arena.pk in known and recent == SEEN_RECENT:
        return known[arena.pk]
    if voter.pk is None:
        return set()
    params = [voter.pk, arena.pk, recent]
    if hotpath.enabled():  # a prepared statement: parsed and planned once per connection
        return {asset_id for (asset_id,) in hotpath.run(hotpath.seen_sql("%s"), params)}
    with connection.cursor() as cursor:
        cursor.execute(hotpath.seen_sql("%s"), params)
        return {asset_id for (asset_id,) in cursor.fetchall()}


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


def original_link(*, file: str, original: str, fmt: str, original_fmt: str) -> tuple[str, str]:
    """(link, format) of the model's own file, from an asset's stored names: the original, or
    the served file when normalising left it as it was."""
    field, name = ("original", original) if original else ("file", file)
    if not name:
        raise ValueError("The asset has no file associated with it.")
    storage = Asset._meta.get_field(field).storage  # type: ignore[union-attr]
    if isinstance(storage, FileSystemStorage):
        return _file_url(storage, storage.base_url, name), original_fmt or fmt
    return storage.url(name), original_fmt or fmt  # (links of other storages may expire)


@functools.lru_cache(maxsize=4096)
def _file_url(storage: FileSystemStorage, base_url: str, name: str) -> str:
    """``storage.url(name)``, kept: a stored file's link never changes while the storage's base
    URL stays (a key here: a changed MEDIA_URL makes new links)."""
    return storage.url(name)


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
    return _media_url_head() + token


_MEDIA_URL_HEADS: dict[tuple[str, Any], str] = {}


def _media_url_head() -> str:
    """``reverse("battle-media", args=[token])`` less the token (tokens need no quoting), as
    the request's script prefix and URL conf have it: reversed once, not per slot."""
    where = (get_script_prefix(), get_urlconf())
    head = _MEDIA_URL_HEADS.get(where)
    if head is None:
        head = _MEDIA_URL_HEADS[where] = reverse("battle-media", args=["-"])[:-1]
    return head


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


@dataclass(frozen=True)
class KnownSlot:
    """A slot as the service that just served or voted on the battle read it: ``battle_view``
    shows it without reading the slots again (``Battle.known_slots``)."""

    position: int
    output: ReadyOutput
    model_name: str = ""
    model_organisation: str = ""
    model_link: str = ""
    original_url: str = ""
    original_fmt: str = ""


def known_slot(slot: BattleSlot) -> KnownSlot:
    """A slot read through the ORM (with its asset and model), as ``known_slots`` hold them."""
    asset, model = slot.asset, slot.model
    return known_slot_of(
        position=slot.position,
        media_type=asset.media_type,
        fmt=asset.fmt,
        width=asset.width,
        height=asset.height,
        file=asset.file.name or "",
        original=asset.original.name or "",
        original_fmt=asset.original_fmt,
        model_name=model.name,
        model_organisation=model.organisation,
        model_link=model.link,
    )


def known_slot_of(
    *,
    position: int,
    media_type: str,
    fmt: str,
    width: int | None,
    height: int | None,
    file: str,
    original: str,
    original_fmt: str,
    model_name: str,
    model_organisation: str,
    model_link: str,
) -> KnownSlot:
    """``known_slot`` from the values of a slot's row and its asset's and model's (the fast
    path reads them in one query, and builds no model instances for them)."""
    original_url, original_fmt = original_link(
        file=file, original=original, fmt=fmt, original_fmt=original_fmt
    )
    return KnownSlot(
        position=position,
        output=ReadyOutput(media_type, fmt, width, height),
        model_name=model_name,
        model_organisation=model_organisation,
        model_link=model_link,
        original_url=original_url,
        original_fmt=original_fmt,
    )


def battle_view(*, battle: Battle, links: bool = True) -> BattleView:
    """What a page or API may show of a battle: model identities only after its vote, and media
    only through per-battle links (the same output has another URL in every battle). Without
    ``links`` the slots' ``url`` is empty (an answer that shows no media signs none).

    A battle the service has just served or voted on carries its slots (``known_slots``, and
    ``known_ranking`` once voted): then nothing is read again."""
    revealed = battle.state == BattleState.VOTED
    known: list[KnownSlot] | None = getattr(battle, "known_slots", None)
    ranking: list[list[str]] | None = getattr(battle, "known_ranking", None) if revealed else []
    if known is None or ranking is None:
        rows = battle.slots.select_related("asset", "model").order_by("position")
        known = [known_slot(slot) for slot in rows]
        if revealed:
            ranking = Vote.objects.values_list("slot_ranking", flat=True).get(battle=battle)
    slots = [
        SlotView(
            label=SLOT_LABELS[slot.position],
            media_type=slot.output.media_type,
            fmt=slot.output.fmt,
            url=slot_media_url(battle=battle, position=slot.position) if links else "",
            width=slot.output.width,
            height=slot.output.height,
            model_name=slot.model_name if revealed else "",
            model_organisation=slot.model_organisation if revealed else "",
            model_link=slot.model_link if revealed else "",
            original_url=slot.original_url if revealed else "",
            original_fmt=slot.original_fmt if revealed else "",
        )
        for slot in known
    ]
    return BattleView(battle=battle, slots=slots, revealed=revealed, ranking=ranking or [])


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
