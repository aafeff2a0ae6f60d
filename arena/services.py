"""Every write to the arena's domain goes through a function here (``<noun>_<verb>``)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import random
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from arena import hotpath, leaderboards, selectors
from arena.errors import (
    AlreadyVoted,
    ArenaError,
    InvalidBattle,
    InvalidPrompt,
    InvalidToken,
    InvalidVote,
    NotEnoughAssets,
    NotFound,
    NotYourBattle,
    StillGenerating,
)
from arena.models import (
    MEDIA_TYPE_BY_FORMAT,
    SLOT_LABELS,
    Arena,
    Asset,
    AssetStatus,
    BackendCheckStatus,
    Battle,
    BattleSlot,
    BattleState,
    GenerativeModel,
    ModerationState,
    Prompt,
    PromptSet,
    Vote,
    VoteMode,
    VoteOutcome,
    Voter,
)
from arena.privacy import keyed_hash, prefix_hash
from arena.tokens import battle_token_read

log = logging.getLogger(__name__)

PAIRWISE_CHOICES = ("A", "B", "tie", "both_bad")
_ALREADY_VOTED = "This battle already has a vote; each battle takes exactly one."


def _k_checked(*, arena: Arena, mode: str, k: int | None) -> None:
    """``InvalidBattle`` (400) for a battle size the arena does not serve in ``mode``."""
    if k is None:
        return
    allowed = [2] if mode == VoteMode.PAIRWISE else sorted(arena.k_values)
    if k not in allowed:
        raise InvalidBattle(
            f"A {mode} battle in this arena shows {' or '.join(map(str, allowed))} outputs; "
            f"'k' was {k!r}.",
            detail={"k": k, "allowed": allowed},
        )


def _mode_checked(*, arena: Arena, mode: str | None) -> str:
    """``mode``, or the arena's default when none is asked; ``InvalidVote`` if it is not offered."""
    mode = mode or arena.default_mode
    if mode not in arena.vote_modes:
        raise InvalidVote(
            f"Mode {mode!r} is not offered in this arena; choose one of {', '.join(arena.vote_modes)}."
        )
    return mode


# --- voters -----------------------------------------------------------------------------------


def voter_get_or_create(
    *,
    public_id: str | None,
    user: Any = None,
    seen_in: Arena | None = None,
    voting_on: str | None = None,
) -> tuple[Voter, bool]:
    """The voter behind a cookie value, or a new one when the value is missing or unknown.

    On PostgreSQL the voter comes with what the request needs next, read in the same query:
    ``seen_in``, the arena the request serves a battle in (the outputs the voter has seen named
    there: ``selectors.voter_revealed_assets`` then asks nothing more); ``voting_on``, the
    public id of the battle the request votes on (the battle, when it was served to this
    voter: ``vote_record`` then reads it no more)."""
    if public_id:
        try:
            key = uuid.UUID(public_id)
        except ValueError:
            voter = None
        else:
            voter = _voter_read(key, seen_in, voting_on)
        if voter is not None:
            if (
                user is not None
                and getattr(user, "is_authenticated", False)
                and voter.user_id is None
            ):
                Voter.objects.filter(pk=voter.pk).update(user=user)
                voter.user = user
            return voter, False
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    voter = Voter.objects.create(user=user if authenticated else None)
    if seen_in is not None:
        voter.known_seen = {seen_in.pk: set()}  # type: ignore[attr-defined]  # (a new voter)
    return voter, True


def _voter_read(public_id: uuid.UUID, seen_in: Arena | None, voting_on: str | None) -> Voter | None:
    if not hotpath.enabled():
        return Voter.objects.filter(public_id=public_id).first()
    if voting_on is not None:
        try:
            battle_id = uuid.UUID(str(voting_on))
        except ValueError:
            battle_id = None
        read = hotpath.battle_with_slots(public_id=battle_id) if battle_id else None
        if read is not None and read.voter.public_id == public_id:
            read.voter.known_battle = read  # type: ignore[attr-defined]
            return read.voter
    if seen_in is None:
        return hotpath.row_get(Voter, column="public_id", value=public_id)
    found = hotpath.voter_with_seen(
        public_id=public_id, arena_id=seen_in.pk, recent=selectors.SEEN_RECENT
    )
    if found is None:
        return None
    voter, seen = found
    voter.known_seen = {seen_in.pk: seen}  # type: ignore[attr-defined]
    return voter


def voter_discard_unused(*, voter: Voter) -> bool:
    """Delete a voter that a failed request created, while nothing refers to it yet.

    A request that fails stores nothing, and that includes the anonymous voter it would have
    introduced. Returns whether the row was deleted.
    """
    unused = Voter.objects.filter(
        pk=voter.pk,
        battles__isnull=True,
        votes__isnull=True,
        flags__isnull=True,
        audit_entries__isnull=True,
    )
    deleted, _ = unused.delete()
    return deleted > 0


# --- battles ----------------------------------------------------------------------------------


def _least_seen(
    prompts: list[int],
    chosen: list[int],
    pool: dict[int, dict[int, list[int]]],
    seen: set[int],
    rng: random.Random,
) -> int:
    """A prompt, at random among those where the fewest of ``chosen`` have only outputs the
    voter has seen revealed."""

    if not seen:
        return rng.choice(prompts)
    counts = [sum(seen.issuperset(pool[p][m]) for m in chosen) for p in prompts]
    fewest = min(counts)
    return rng.choice([p for p, n in zip(prompts, counts, strict=True) if n == fewest])


def _matchmake(
    *,
    arena: Arena,
    pool: dict[int, dict[int, list[int]]],
    eligible: list[int],
    size: int,
    rng: random.Random,
    seen: set[int],
    weights: dict[int, float],
) -> tuple[int, list[int]]:
    """The prompt and the K models (in slot order) of the next battle (``weights``: each
    model's ``matchmaking_weight``).

    The arena's matchmaker (``ranking``'s default: overlap sampling over the current beliefs,
    weighted by each model's ``matchmaking_weight``) picks the models among those with ready
    outputs; then a prompt all of them have, preferring one whose outputs the voter has not
    seen revealed (``seen``). When no prompt has all K, the missing outputs are queued for the
    best-covered prompt and the battle falls back to K models that share one.
    """
    servable = sorted({model_id for prompt_id in eligible for model_id in pool[prompt_id]})
    candidates = [pk for pk in servable if weights.get(pk, 1.0) > 0]
    if len(candidates) >= size:
        matchmaker = leaderboards.matchmaker_for(
            arena=arena, model_ids=candidates, weights=weights, seed=rng.randrange(2**31)
        )
        chosen = [int(p) for p in matchmaker.propose(size)]
        rng.shuffle(chosen)  # the matchmaker lists its pivot first; slots must not tell
        shared = [p for p in eligible if all(m in pool[p] for m in chosen)]
        if shared:
            return _least_seen(shared, chosen, pool, seen, rng), chosen
        _queue_missing(arena=arena, pool=pool, chosen=chosen)
    prompt_id = rng.choice(eligible)
    fallback = [m for m in sorted(pool[prompt_id]) if weights.get(m, 1.0) > 0] or sorted(
        pool[prompt_id]
    )
    if len(fallback) < size:
        fallback = sorted(pool[prompt_id])
    return prompt_id, rng.sample(fallback, size)


def _queue_missing(
    *, arena: Arena, pool: dict[int, dict[int, list[int]]], chosen: list[int]
) -> None:
    """Queue the outputs the matchmaker's choice lacks on the prompt that has most of them."""
    prompt_id = max(sorted(pool), key=lambda p: sum(m in pool[p] for m in chosen))
    prompt = Prompt.objects.get(pk=prompt_id)
    pending = []
    for model in GenerativeModel.objects.filter(
        pk__in=[m for m in chosen if m not in pool[prompt_id]]
    ):
        asset, _ = asset_request(model=model, prompt=prompt)
        if asset.status == AssetStatus.PENDING and asset.enqueued_at is None:
            pending.append(asset)
    assets_enqueue(assets=pending)


def battle_create(
    *,
    arena: Arena,
    voter: Voter,
    mode: str | None = None,
    k: int | None = None,
    rng: random.Random | None = None,
) -> Battle:
    """Serve a new anonymous battle: K models that all have a ready output for one prompt.

    Raises ``InvalidVote``/``InvalidBattle`` (400) for a mode or ``k`` the arena does not offer,
    ``NotEnoughAssets`` (with a readable message) when no prompt has K ready outputs.
    """
    rng = rng or random.Random()
    mode = _mode_checked(arena=arena, mode=mode)
    _k_checked(arena=arena, mode=mode, k=k)
    try:
        return _battle_serve(arena=arena, voter=voter, mode=mode, k=k, rng=rng, fresh=False)
    except IntegrityError:
        # An output this process's pool still lists was deleted since it was read (an admin
        # removed a model or a prompt): its slot cannot be written. Read the pool again.
        return _battle_serve(arena=arena, voter=voter, mode=mode, k=k, rng=rng, fresh=True)


def _battle_serve(
    *, arena: Arena, voter: Voter, mode: str, k: int | None, rng: random.Random, fresh: bool
) -> Battle:
    pool = selectors.arena_ready_pool_cached(arena=arena, fresh=fresh)
    size, eligible = _eligible_prompts(arena=arena, mode=mode, k=k, pool=pool.by_prompt)
    if not eligible and not fresh:  # outputs may have become ready since the pool was read
        pool = selectors.arena_ready_pool_cached(arena=arena, fresh=True)
        size, eligible = _eligible_prompts(arena=arena, mode=mode, k=k, pool=pool.by_prompt)
    if not eligible:
        ready = sum(
            len(assets) for by_model in pool.by_prompt.values() for assets in by_model.values()
        )
        raise NotEnoughAssets(
            f"“{arena.name}” cannot start a {size}-way battle yet: no prompt has ready outputs from "
            f"{size} different models ({ready} outputs are ready so far). Outputs are still being "
            "generated; please try again in a moment.",
            detail={"ready_assets": ready, "k": size},
        )
    seen = selectors.voter_revealed_assets(voter=voter, arena=arena)
    prompt_id, model_ids = _matchmake(
        arena=arena,
        pool=pool.by_prompt,
        eligible=eligible,
        size=size,
        rng=rng,
        seen=seen,
        weights=pool.weights,
    )
    slots = []
    for m in model_ids:
        assets = pool.by_prompt[prompt_id][m]
        slots.append((m, rng.choice([a for a in assets if a not in seen] or assets)))
    battle = _battle_store(
        arena=arena, voter=voter, mode=mode, prompt_id=prompt_id, slots=slots, is_named=False
    )
    if prompt_id in pool.prompts:  # what the answer shows, without reading it again
        battle.prompt = selectors.fresh_copy(pool.prompts[prompt_id])
        battle.known_slots = [  # type: ignore[attr-defined]
            selectors.KnownSlot(position=i, output=pool.outputs[asset_id])
            for i, (_, asset_id) in enumerate(slots)
        ]
    return battle


def _eligible_prompts(
    *, arena: Arena, mode: str, k: int | None, pool: dict[int, dict[int, list[int]]]
) -> tuple[int, list[int]]:
    """The battle size and the prompts with ready outputs from that many models. Without an
    explicit K: the largest allowed K that the ready outputs can fill."""
    sizes = (
        [arena.k_for_mode(mode, k)]
        if (k is not None or mode == VoteMode.PAIRWISE)
        else sorted(arena.k_values, reverse=True)
    )
    size, eligible = sizes[0], []
    for size in sizes:
        eligible = sorted(
            prompt_id for prompt_id, by_model in pool.items() if len(by_model) >= size
        )
        if eligible:
            break
    return size, eligible


def _battle_store(
    *,
    arena: Arena,
    voter: Voter,
    mode: str,
    prompt_id: int,
    slots: Sequence[tuple[int, int]],
    is_named: bool = False,
    state: str = BattleState.SERVED,
) -> Battle:
    """Write a battle with one slot per ``(model id, asset id)``, in slot order."""
    battle = Battle(
        arena=arena,
        prompt_id=prompt_id,
        mode=mode,
        k=len(slots),
        voter=voter,
        served_at=timezone.now(),
        is_named=is_named,
        state=state,
    )
    if hotpath.enabled():
        hotpath.battle_insert(battle=battle, slots=slots)
        return battle
    with transaction.atomic():
        battle.save(force_insert=True)
        BattleSlot.objects.bulk_create(
            BattleSlot(battle=battle, position=i, model_id=model_id, asset_id=asset_id)
            for i, (model_id, asset_id) in enumerate(slots)
        )
        Voter.objects.filter(pk=voter.pk).update(battles_served=F("battles_served") + 1)
    return battle


def _named_battle_mode(*, arena: Arena, size: int, mode: str | None) -> str:
    """The vote mode of a named battle of ``size`` models: as asked, or the first that fits."""
    fits = {
        m: (size == 2) if m == VoteMode.PAIRWISE else (size in arena.k_values)
        for m in arena.vote_modes
    }
    if mode is not None:
        mode = _mode_checked(arena=arena, mode=mode)
        if not fits[mode]:
            allowed = "2" if mode == VoteMode.PAIRWISE else " or ".join(map(str, arena.k_values))
            raise InvalidBattle(
                f"A {mode} battle in this arena takes {allowed} models; you named {size}.",
                detail={"mode": mode, "models": size},
            )
        return mode
    for candidate in [arena.default_mode, *arena.vote_modes]:
        if fits.get(candidate):
            return candidate
    sizes = sorted({2} if VoteMode.PAIRWISE in fits else set()) + [
        k for k in sorted(arena.k_values) if any(m != VoteMode.PAIRWISE for m in fits)
    ]
    raise InvalidBattle(  # e.g. 3 models where the arena's K-wise battles take 4
        f"This arena has no battle of {size} models; name {' or '.join(map(str, sizes))}.",
        detail={"models": size, "sizes": sizes},
    )


def battle_create_named(
    *,
    arena: Arena,
    voter: Voter,
    model_slugs: Sequence[str],
    mode: str | None = None,
    rng: random.Random | None = None,
) -> Battle:
    """Serve a battle between models the voter chose, by slug (``is_named``).

    The outputs are still shown in shuffled, unlabelled slots, and the vote is recorded as usual,
    but a named battle's vote never counts on the anonymous leaderboards (the voter knew the
    contenders). Raises ``InvalidBattle`` (400) for fewer than 2 or more than the arena's largest
    K models or a repeated slug, ``NotFound`` (404) for a slug that is not an active model of the
    arena, ``NotEnoughAssets`` (503) when no prompt has ready outputs from all of them. Nothing is
    stored on any error.
    """
    rng = rng or random.Random()
    slugs = [str(slug) for slug in model_slugs]
    sizes = {2} if VoteMode.PAIRWISE in arena.vote_modes else set()
    if any(m != VoteMode.PAIRWISE for m in arena.vote_modes):
        sizes |= set(arena.k_values)
    largest = max(sizes, default=2)
    if not 2 <= len(slugs) <= largest:
        raise InvalidBattle(
            f"Name between 2 and {largest} models for a battle in this arena; you named {len(slugs)}.",
            detail={"models": len(slugs), "max": largest},
        )
    repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    if repeated:
        raise InvalidBattle(
            f"Name each model once; repeated: {', '.join(repeated)}.",
            detail={"repeated": repeated},
        )
    mode = _named_battle_mode(arena=arena, size=len(slugs), mode=mode)
    found = dict(
        arena.generative_models.filter(is_active=True, slug__in=slugs).values_list("slug", "pk")
    )
    unknown = [slug for slug in slugs if slug not in found]
    if unknown:
        raise NotFound(
            f"No active model {', '.join(map(repr, unknown))} in “{arena.name}”.",
            detail={"unknown": unknown},
        )
    model_ids = [found[slug] for slug in slugs]
    pool = selectors.arena_ready_pool(arena=arena)
    shared = sorted(p for p, by_model in pool.items() if all(m in by_model for m in model_ids))
    if not shared:
        raise NotEnoughAssets(
            f"No prompt in “{arena.name}” has ready outputs from all of {', '.join(slugs)} yet; "
            "try other models or come back later.",
            detail={"models": slugs},
        )
    prompt_id = rng.choice(shared)
    rng.shuffle(model_ids)  # the slot order must not tell which model is which
    return _battle_store(
        arena=arena,
        voter=voter,
        mode=mode,
        prompt_id=prompt_id,
        slots=[(m, rng.choice(pool[prompt_id][m])) for m in model_ids],
        is_named=True,
    )


# --- votes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedVote:
    outcome: str
    groups: list[list[str]]  # slot labels, best first
    is_partial: bool


def _parse_pairwise(labels: Sequence[str], choice: Any, ranks: Any, ranking: Any) -> ParsedVote:
    if ranks is not None or ranking is not None:
        raise InvalidVote("A pairwise vote takes a 'choice' (A, B, tie or both_bad), not ranks.")
    if choice not in PAIRWISE_CHOICES:
        raise InvalidVote(f"'choice' must be one of {', '.join(PAIRWISE_CHOICES)}; got {choice!r}.")
    a, b = labels
    if choice == "A":
        return ParsedVote(VoteOutcome.WIN, [[a], [b]], False)
    if choice == "B":
        return ParsedVote(VoteOutcome.WIN, [[b], [a]], False)
    outcome = VoteOutcome.TIE if choice == "tie" else VoteOutcome.BOTH_BAD
    return ParsedVote(outcome, [[a, b]], False)


def _parse_best_of_k(labels: Sequence[str], choice: Any, ranks: Any, ranking: Any) -> ParsedVote:
    if ranks is not None or ranking is not None:
        raise InvalidVote("A best-of-K vote takes a 'choice' (one slot label or tie), not ranks.")
    allowed = [*labels, "tie"]
    if choice not in allowed:
        raise InvalidVote(f"'choice' must be one of {', '.join(allowed)}; got {choice!r}.")
    if choice == "tie":
        return ParsedVote(VoteOutcome.TIE, [list(labels)], False)
    return ParsedVote(VoteOutcome.WIN, [[choice], [x for x in labels if x != choice]], True)


def _ranks_to_groups(labels: Sequence[str], ranks: Any) -> list[list[str]]:
    if not isinstance(ranks, Mapping):
        raise InvalidVote('\'ranks\' must map each slot label to a rank, e.g. {"A": 1, "B": 2}.')
    k = len(labels)
    unknown = sorted(str(slot) for slot in ranks if slot not in labels)
    if unknown:
        raise InvalidVote(
            f"Unknown slot(s): {', '.join(unknown)}; this battle has {', '.join(labels)}."
        )
    missing = [slot for slot in labels if slot not in ranks]
    if missing:
        raise InvalidVote(
            f"Rank every output: missing {', '.join(missing)} (this battle has {k} slots).",
            detail={"missing": missing},
        )
    by_rank: dict[int, list[str]] = {}
    for slot in labels:
        value = ranks[slot]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidVote(f"The rank for {slot} must be a whole number from 1 to {k}.")
        try:
            rank = int(value)
        except ValueError:
            raise InvalidVote(
                f"The rank for {slot} must be a whole number from 1 to {k}; got {value!r}."
            ) from None
        if not 1 <= rank <= k:
            raise InvalidVote(f"The rank for {slot} must be between 1 and {k}; got {rank}.")
        by_rank.setdefault(rank, []).append(slot)
    return [by_rank[r] for r in sorted(by_rank)]


def _groups_checked(labels: Sequence[str], ranking: Any) -> list[list[str]]:
    if not isinstance(ranking, list) or not all(isinstance(g, list) for g in ranking):
        raise InvalidVote(
            '\'ranking\' must be a list of groups of slot labels, best first, e.g. [["A"], ["B", "C"]].'
        )
    seen: list[str] = []
    for group in ranking:
        if not group:
            raise InvalidVote("'ranking' contains an empty group.")
        for slot in group:
            if slot not in labels:
                raise InvalidVote(f"Unknown slot {slot!r}; this battle has {', '.join(labels)}.")
            if slot in seen:
                raise InvalidVote(f"Slot {slot} appears more than once in the ranking.")
            seen.append(slot)
    missing = [slot for slot in labels if slot not in seen]
    if missing:
        raise InvalidVote(
            f"Rank every output: missing {', '.join(missing)} (this battle has {len(labels)} slots)."
        )
    return [list(g) for g in ranking]


def _parse_rank_k(labels: Sequence[str], choice: Any, ranks: Any, ranking: Any) -> ParsedVote:
    if choice is not None:
        raise InvalidVote(
            "A rank-K vote takes 'ranks' (a rank for every slot), not a single choice."
        )
    if (ranks is None) == (ranking is None):
        raise InvalidVote("A rank-K vote takes exactly one of 'ranks' or 'ranking'.")
    groups = (
        _ranks_to_groups(labels, ranks) if ranks is not None else _groups_checked(labels, ranking)
    )
    outcome = VoteOutcome.TIE if len(groups) == 1 else VoteOutcome.RANKED
    return ParsedVote(outcome, groups, False)


_PARSERS = {
    VoteMode.PAIRWISE: _parse_pairwise,
    VoteMode.BEST_OF_K: _parse_best_of_k,
    VoteMode.RANK_K: _parse_rank_k,
}


def vote_parse(
    *, mode: str, labels: Sequence[str], choice: Any = None, ranks: Any = None, ranking: Any = None
) -> ParsedVote:
    """Check a submission against the battle's mode and slots; raise ``InvalidVote`` if wrong."""
    return _PARSERS[VoteMode(mode)](labels, choice, ranks, ranking)


def vote_record(
    *,
    battle_public_id: str,
    token: str,
    voter: Voter,
    choice: Any = None,
    ranks: Any = None,
    ranking: Any = None,
    client_ip: str = "",
    user_agent: str = "",
) -> Vote:
    """Record the one vote of a battle and return it.

    Order of checks: the token's signature and age (400/410), the battle (404), that it was served
    to this voter (403), that it has no vote yet (409), then the submission itself (400). On any
    error nothing is stored except the voter's ``rejected_votes`` counter.
    """
    try:
        return _vote_record(
            battle_public_id=battle_public_id,
            token=token,
            voter=voter,
            choice=choice,
            ranks=ranks,
            ranking=ranking,
            client_ip=client_ip,
            user_agent=user_agent,
        )
    except ArenaError:
        Voter.objects.filter(pk=voter.pk).update(rejected_votes=F("rejected_votes") + 1)
        raise


def _vote_record(
    *,
    battle_public_id: str,
    token: str,
    voter: Voter,
    choice: Any,
    ranks: Any,
    ranking: Any,
    client_ip: str,
    user_agent: str,
) -> Vote:
    token_battle_id, nonce = battle_token_read(token)
    if token_battle_id != str(battle_public_id):
        raise InvalidToken("The battle token belongs to a different battle.")
    # On PostgreSQL no transaction of its own: the battle is read first (nothing of it changes
    # once served but its state), and the one statement that writes marks it voted only while
    # it is still served, so of two concurrent votes one lands (the other's update waits for
    # the first's row lock, then finds the battle voted). Elsewhere, one transaction.
    with contextlib.nullcontext() if hotpath.enabled() else transaction.atomic():
        battle, slots_media, known = _battle_for_vote(
            battle_public_id=battle_public_id, nonce=nonce, voter=voter
        )
        labels = [SLOT_LABELS[position] for position, _, _ in slots_media]
        parsed = vote_parse(
            mode=battle.mode, labels=labels, choice=choice, ranks=ranks, ranking=ranking
        )
        now = timezone.now()
        vote = _vote_build(
            battle=battle,
            voter=voter,
            parsed=parsed,
            slots_media=slots_media,
            at=now,
            client_ip=client_ip,
            user_agent=user_agent,
        )
        if hotpath.enabled():
            _vote_store_at_once(vote=vote, at=now)
        else:
            _vote_store(vote=vote, at=now)
        battle.state, battle.voted_at = BattleState.VOTED, now
        vote.battle = battle
        if known is not None:  # the answer reveals these without reading them again
            battle.known_slots, battle.known_ranking = known, parsed.groups  # type: ignore[attr-defined]
    return vote


SlotMedia = tuple[int, int, str]  # position, model id, media type


def _battle_for_vote(
    *, battle_public_id: str, nonce: str, voter: Voter
) -> tuple[Battle, list[SlotMedia], list[selectors.KnownSlot] | None]:
    """The battle, once it is known to take this voter's vote now; its slots; and (on
    PostgreSQL, where one query reads them all) what its reveal shows of each slot."""
    try:
        public_id = uuid.UUID(str(battle_public_id))
    except ValueError:
        raise NotFound("No such battle.") from None
    known: list[selectors.KnownSlot] | None = None
    if hotpath.enabled():
        found: hotpath.BattleRead | None = getattr(voter, "known_battle", None)
        if found is None or found.battle.public_id != public_id:
            found = hotpath.battle_with_slots(public_id=public_id)
        if found is None:
            raise NotFound("No such battle.")
        battle = found.battle
        _vote_allowed(battle=battle, nonce=nonce, voter=voter)
        slots_media = [(row[0], row[1], row[3]) for row in found.slots]
        known = [_known_slot(row) for row in found.slots]
        return battle, slots_media, known
    try:
        # of=("self",): the battle row only, where row locks exist (not the arena's).
        battle = Battle.objects.select_for_update(of=("self",)).get(public_id=public_id)
    except Battle.DoesNotExist:
        raise NotFound("No such battle.") from None
    _vote_allowed(battle=battle, nonce=nonce, voter=voter)
    slots_media = list(
        battle.slots.order_by("position").values_list("position", "model_id", "asset__media_type")
    )
    return battle, slots_media, known


def _known_slot(row: hotpath.SlotRow) -> selectors.KnownSlot:
    """A slot from the fast path's row, as ``selectors.known_slot`` reads one."""
    (position, _, _, media_type, fmt, width, height, file, original, original_fmt,
     name, organisation, link) = row  # fmt: skip
    return selectors.known_slot_of(
        position=position, media_type=media_type, fmt=fmt, width=width, height=height,
        file=file or "", original=original or "", original_fmt=original_fmt, model_name=name,
        model_organisation=organisation, model_link=link,
    )  # fmt: skip


def _vote_allowed(*, battle: Battle, nonce: str, voter: Voter) -> None:
    if not hmac.compare_digest(battle.nonce, nonce):
        raise InvalidToken("The battle token is invalid.")
    if battle.voter_id != voter.pk:
        raise NotYourBattle("This battle was served to someone else; load your own battle to vote.")
    if battle.state == BattleState.VOTED:
        raise AlreadyVoted(_ALREADY_VOTED)
    if battle.state == BattleState.GENERATING:
        raise StillGenerating("The outputs are still being generated; vote once all are shown.")


def _vote_build(
    *,
    battle: Battle,
    voter: Voter,
    parsed: ParsedVote,
    slots_media: Sequence[SlotMedia],
    at: datetime,
    client_ip: str,
    user_agent: str,
) -> Vote:
    """The vote's row, not saved yet."""
    model_by_label = {SLOT_LABELS[position]: model_id for position, model_id, _ in slots_media}
    elapsed_ms = max(0, int((at - battle.served_at).total_seconds() * 1000))
    min_view_ms = battle_min_view_ms(media_types=[media for _, _, media in slots_media])
    return Vote(
        battle=battle,
        arena_id=battle.arena_id,
        voter=voter,
        mode=battle.mode,
        outcome=parsed.outcome,
        ranking=[[model_by_label[label] for label in group] for group in parsed.groups],
        slot_ranking=parsed.groups,
        is_partial=parsed.is_partial,
        time_to_vote_ms=elapsed_ms,
        min_view_ms=min_view_ms,
        too_fast=elapsed_ms < min_view_ms,
        is_named=battle.is_named,
        client_hash=keyed_hash(client_ip),
        prefix_hash=prefix_hash(client_ip),
        user_agent_hash=keyed_hash(user_agent),
    )


def _voter_counters(vote: Vote) -> dict[str, int]:
    """What the vote adds to its voter's running counters."""
    return {
        "votes_cast": 1,
        "fast_votes": 1 if vote.too_fast else 0,
        "ties_cast": 1 if vote.outcome in (VoteOutcome.TIE, VoteOutcome.BOTH_BAD) else 0,
    }


def _vote_store_at_once(*, vote: Vote, at: datetime) -> None:
    """PostgreSQL: the battle marked voted, the vote, its queue row and the voter's counters
    in one statement; then the aggregator is asked to drain once this commits."""
    # Inside a caller's transaction, a savepoint: a failed statement must not end it.
    scope = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with scope:
            stored = hotpath.vote_insert(
                vote=vote,
                voted_at=at,
                counters=_voter_counters(vote),
                prefix=vote.prefix_hash,
                user_agent=vote.user_agent_hash,
            )
    except IntegrityError:  # the battle's one vote exists already; the statement wrote nothing
        raise AlreadyVoted(_ALREADY_VOTED) from None
    if not stored:  # a concurrent vote won the race
        raise AlreadyVoted(_ALREADY_VOTED)
    if not vote.is_named:
        leaderboards.tally_drain_after_commit(arena_id=vote.arena_id)


def _vote_store(*, vote: Vote, at: datetime) -> None:
    """The same through the ORM, one statement at a time (SQLite)."""
    updated = Battle.objects.filter(pk=vote.battle_id, state=BattleState.SERVED).update(
        state=BattleState.VOTED, voted_at=at
    )
    if updated != 1:  # a concurrent vote won the race (SQLite has no row locks)
        raise AlreadyVoted(_ALREADY_VOTED)
    try:
        # No savepoint: an IntegrityError here ends the caller's transaction, which rolls back.
        vote.save(force_insert=True)
    except IntegrityError:
        raise AlreadyVoted(_ALREADY_VOTED) from None
    leaderboards.tally_defer(vote=vote)
    counters = _voter_counters(vote)
    Voter.objects.filter(pk=vote.voter_id).update(
        **{name: F(name) + n for name, n in counters.items()},
        prefix_hash=vote.prefix_hash,
        user_agent_hash=vote.user_agent_hash,
    )


def battle_min_view_ms(*, media_types: Sequence[str]) -> int:
    """The least time a careful look at a battle's outputs takes: the slowest medium's minimum."""
    table: Mapping[str, int] = settings.MIN_VIEW_MS
    return max((table.get(media, 0) for media in media_types), default=0)


# --- assets -----------------------------------------------------------------------------------


def asset_request(*, model: GenerativeModel, prompt: Prompt, seed: int = 0) -> tuple[Asset, bool]:
    """The asset row for (model, prompt, seed), created as pending when missing."""
    fmt = model.primary_format
    return Asset.objects.get_or_create(
        model=model,
        prompt=prompt,
        seed=seed,
        defaults={"fmt": fmt, "media_type": MEDIA_TYPE_BY_FORMAT[fmt]},
    )


def asset_claim(*, asset_id: int, worker: str = "") -> bool:
    """Move a pending asset to running; true only for the one caller that won the claim."""
    now = timezone.now()
    updated = Asset.objects.filter(pk=asset_id, status=AssetStatus.PENDING).update(
        status=AssetStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        worker=worker[:200],
        updated_at=now,
    )
    return updated == 1


def asset_heartbeat(*, asset_id: int, worker: str) -> bool:
    """A running job says it is alive; false once the row is no longer its own (reaped)."""
    updated = Asset.objects.filter(
        pk=asset_id, status=AssetStatus.RUNNING, worker=worker[:200]
    ).update(heartbeat_at=timezone.now())
    return updated == 1


def asset_release(*, asset_id: int, error: str) -> bool:
    """Give a running asset back (running -> pending) after a transient failure, for a retry."""
    updated = Asset.objects.filter(pk=asset_id, status=AssetStatus.RUNNING).update(
        status=AssetStatus.PENDING, error=error[:4000], updated_at=timezone.now()
    )
    return updated == 1


def assets_mark_enqueued(*, asset_ids: Sequence[int]) -> None:
    Asset.objects.filter(pk__in=list(asset_ids)).update(enqueued_at=timezone.now())


def assets_enqueue(*, assets: Iterable[Asset]) -> int:
    """Stamp the assets as sent and send their generation jobs once the transaction commits.

    This is the domain's one port to the generation workers: it calls the function named by
    ``settings.GENERATION_JOB_SENDER`` (``config`` wires in ``workers.tasks.
    generate_asset_enqueue``) with ``asset_id``, ``queue`` and ``backend`` for each asset, so the
    domain never imports ``workers``. Returns the number of jobs sent.
    """
    rows = [(a.pk, a.model.queue, a.model.backend) for a in assets]
    if not rows:
        return 0
    assets_mark_enqueued(asset_ids=[pk for pk, _, _ in rows])
    send_job = import_string(settings.GENERATION_JOB_SENDER)

    def send() -> None:
        for pk, queue, backend in rows:
            send_job(asset_id=pk, queue=queue, backend=backend)

    transaction.on_commit(send)
    return len(rows)


def model_checks_request(*, models: Iterable[GenerativeModel]) -> list[str]:
    """Mark each model's backend check pending and, once the transaction commits, send it to a
    worker of the model's own queue, which checks what the web host cannot (torch, CUDA, the
    weights) and reports through :func:`model_check_record`.

    The check goes through the function named by ``settings.BACKEND_CHECK_SENDER`` (``config``
    wires in ``workers.tasks.backend_check_enqueue``; called with ``model_id`` and ``queue``),
    so the domain never imports ``workers``. A check that cannot be sent (broker down) is
    recorded as failed, saying so. Returns the queues the checks go to, one per model.
    """
    rows = [(m.pk, m.queue) for m in models]
    if not rows:
        return []
    GenerativeModel.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        check_status=BackendCheckStatus.PENDING, check_requested_at=timezone.now()
    )
    send_check = import_string(settings.BACKEND_CHECK_SENDER)

    def send() -> None:
        for pk, queue in rows:
            try:
                send_check(model_id=pk, queue=queue)
            except Exception as exc:  # each broker transport raises its own kind
                log.warning("backend check of model %s not sent to %s: %s", pk, queue, exc)
                model_check_record(
                    model_id=pk,
                    status=BackendCheckStatus.FAILED,
                    message=f"the check could not be sent to queue {queue!r}: {exc}",
                    worker="",
                )

    transaction.on_commit(send)
    return [queue for _, queue in rows]


def model_check_record(
    *, model_id: int, status: str, message: str, worker: str, fingerprint: str = ""
) -> bool:
    """Store the outcome of a model's backend check (``ok`` or ``failed``) as its last check.

    Unconditional, unlike a job's claim: a check only reads the worker's environment, so a
    check delivered twice records two equally true answers, the later one last. False when the
    model no longer exists.
    """
    if status not in (BackendCheckStatus.OK, BackendCheckStatus.FAILED):
        raise ValueError(f"status must be 'ok' or 'failed', got {status!r}")
    updated = GenerativeModel.objects.filter(pk=model_id).update(
        check_status=status,
        check_message=message[:4000],
        check_worker=worker[:200],
        checked_at=timezone.now(),
        check_fingerprint=fingerprint[:64],
    )
    return updated == 1


def assets_retry_failed(*, asset_ids: Sequence[int]) -> list[int]:
    """Failed -> pending (error kept until the next attempt); returns the ids that changed."""
    ids = list(
        Asset.objects.filter(pk__in=list(asset_ids), status=AssetStatus.FAILED).values_list(
            "pk", flat=True
        )
    )
    Asset.objects.filter(pk__in=ids, status=AssetStatus.FAILED).update(
        status=AssetStatus.PENDING, enqueued_at=None, updated_at=timezone.now()
    )
    return ids


def assets_retry(*, asset_ids: Sequence[int]) -> int:
    """Send the failed ones among ``asset_ids`` again; returns how many were sent."""
    ids = assets_retry_failed(asset_ids=asset_ids)
    return assets_enqueue(assets=Asset.objects.filter(pk__in=ids).select_related("model"))


def asset_regenerate(*, asset: Asset) -> Asset:
    """Throw the output away and queue a fresh one under a new random name.

    Past battles keep pointing at this row (model, prompt), which is what ratings use.
    """
    if asset.status == AssetStatus.RUNNING:
        raise ArenaError("This output is being generated right now; try again when it finishes.")
    old_files = [name for name in (asset.file.name, asset.original.name) if name]
    asset.public_id = secrets.token_hex(16)
    asset.file = None
    asset.original = None
    # The model is asked for its own format again (not the arena's served one).
    asset.fmt = asset.original_fmt or asset.fmt
    asset.original_fmt = ""
    asset.status = AssetStatus.PENDING
    asset.error, asset.checksum, asset.size_bytes = "", "", 0
    asset.enqueued_at = None
    asset.save()
    for name in old_files:
        asset.file.storage.delete(name)
    return asset


def assets_reap_stale(*, silent_for_s: int) -> list[int]:
    """Running rows whose worker vanished (killed, machine lost) go back to pending.

    A running job beats every ``GENERATION_HEARTBEAT_S``; a row whose last beat (or claim, for
    a row claimed before heartbeats) is older than ``silent_for_s`` lost its worker. A live job
    keeps beating however long it runs, so it is never taken away.
    """
    cutoff = timezone.now() - timedelta(seconds=silent_for_s)
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    ids = list(
        Asset.objects.filter(silent, status=AssetStatus.RUNNING).values_list("pk", flat=True)
    )
    Asset.objects.filter(silent, pk__in=ids, status=AssetStatus.RUNNING).update(
        status=AssetStatus.PENDING,
        enqueued_at=None,
        error="returned to the queue: its worker stopped responding",
        updated_at=timezone.now(),
    )
    return ids


# A voter does not wait longer than this for an own-prompt battle: older ones get no resends,
# so a queue nobody consumes (a GPU machine offline) does not pile up duplicates for ever.
LIVE_BATTLE_WAIT_S = 3600


def assets_awaited_unclaimed(*, sent_before_s: int) -> list[int]:
    """Pending outputs that a voter's live battle (started within ``LIVE_BATTLE_WAIT_S``) waits
    for, sent over ``sent_before_s`` ago.

    Their job may have been lost with the broker (a wipe, a restart without persistence): the
    caller sends them again. A duplicate of a job still queued is harmless, since only one
    delivery can claim the row.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=sent_before_s)
    return list(
        Asset.objects.filter(
            Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True),
            status=AssetStatus.PENDING,
            battle_slots__battle__state=BattleState.GENERATING,
            battle_slots__battle__served_at__gte=now - timedelta(seconds=LIVE_BATTLE_WAIT_S),
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def asset_store(
    *,
    asset: Asset,
    data: bytes,
    fmt: str,
    width: int | None,
    height: int | None,
    duration_s: float | None,
    generation_ms: int,
    original: bytes | None = None,
    original_fmt: str = "",
) -> Asset:
    """Save a validated output under a random name and mark the asset ready.

    ``data`` is what battles serve; ``original`` (when it differs) is the model's own file, kept
    for the reveal and for export."""
    asset.file.save(f"{asset.public_id}.{fmt}", ContentFile(data), save=False)
    if original is not None and (original != data or original_fmt != fmt):
        asset.original.save(
            f"{asset.public_id}.{original_fmt or fmt}", ContentFile(original), save=False
        )
    else:
        asset.original = ""  # the served file is the original
    asset.original_fmt = original_fmt or fmt
    asset.fmt = fmt
    asset.media_type = MEDIA_TYPE_BY_FORMAT[fmt]
    asset.size_bytes = len(data)
    asset.width, asset.height, asset.duration_s = width, height, duration_s
    asset.generation_ms = generation_ms
    asset.checksum = hashlib.sha256(data).hexdigest()
    asset.status = AssetStatus.READY
    asset.error = ""
    asset.save()
    return asset


def asset_fail(*, asset_id: int, error: str) -> None:
    Asset.objects.filter(pk=asset_id).update(
        status=AssetStatus.FAILED, error=error[:4000], updated_at=timezone.now()
    )


# --- voters' own prompts -------------------------------------------------------------------

USER_PROMPT_MAX_CHARS = 500
USER_PROMPT_SET = "user-prompts"
_WORD = re.compile(r"[\w']+")


def prompt_moderate(*, text: str) -> str:
    """The cleaned prompt, or ``InvalidPrompt`` saying why it cannot be used.

    The blocklist (``PROMPT_BLOCKLIST``) matches whole words and phrases, case-insensitively.
    """
    cleaned = " ".join(str(text or "").split())
    if len(cleaned) < 3:
        raise InvalidPrompt("Type a prompt of at least 3 characters.")
    if len(cleaned) > USER_PROMPT_MAX_CHARS:
        raise InvalidPrompt(f"Keep the prompt under {USER_PROMPT_MAX_CHARS} characters.")
    words = " ".join(_WORD.findall(cleaned.lower()))
    for entry in settings.PROMPT_BLOCKLIST:
        phrase = " ".join(_WORD.findall(entry.lower()))
        if phrase and re.search(rf"(^| ){re.escape(phrase)}( |$)", words):
            raise InvalidPrompt(
                "This prompt is not allowed here (it matches the arena's content rules). "
                "Please try a different one."
            )
    return cleaned


CONDITIONING_MAX_SIDE = 1024
CONDITIONING_MAX_BYTES = 10 * 1024 * 1024


def conditioning_image_normalise(*, data: bytes) -> bytes:
    """An uploaded input image as a metadata-free RGB PNG of at most 1024 px a side."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > CONDITIONING_MAX_BYTES:
        raise InvalidPrompt("The image is larger than 10 MB.")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format not in ("PNG", "JPEG", "WEBP"):
                raise InvalidPrompt("Attach a PNG, JPEG or WebP image.")
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidPrompt("The attached file is not a readable image.") from None
    image.thumbnail((CONDITIONING_MAX_SIDE, CONDITIONING_MAX_SIDE))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def battle_create_from_prompt(
    *,
    arena: Arena,
    voter: Voter,
    text: str,
    image: bytes | None = None,
    mode: str | None = None,
    k: int | None = None,
    rng: random.Random | None = None,
) -> Battle:
    """A battle on a voter's own prompt: K models generate it live (jobs sent on commit).

    The prompt is stored as pending moderation, so it never enters other voters' battles or the
    shared cache until an admin approves it. Returns the battle (state ``generating``).
    """
    if not arena.allow_user_prompts:
        raise InvalidPrompt("This arena does not take your own prompts.")
    cleaned = prompt_moderate(text=text)
    needs_image = arena.task == "image-to-3d"
    if needs_image and not image:
        raise InvalidPrompt("This arena turns an image into 3D: attach a PNG, JPEG or WebP image.")
    rng = rng or random.Random()
    mode = _mode_checked(arena=arena, mode=mode)
    _k_checked(arena=arena, mode=mode, k=k)
    size = arena.k_for_mode(mode, k)
    models = list(arena.generative_models.filter(is_active=True).order_by("pk"))
    if len(models) < size:
        raise NotEnoughAssets(
            f"This arena has only {len(models)} active models; a battle needs {size}."
        )
    chosen = rng.sample(models, size)
    with transaction.atomic():
        prompt = _user_prompt(arena=arena, text=cleaned, image=image if needs_image else None)
        assets = [asset_request(model=model, prompt=prompt)[0] for model in chosen]
        battle = _battle_store(
            arena=arena,
            voter=voter,
            mode=mode,
            prompt_id=prompt.pk,
            slots=[(a.model_id, a.pk) for a in assets],
            state=BattleState.GENERATING,
        )
        assets_enqueue(assets=[a for a in assets if a.status == AssetStatus.PENDING])
    return battle


def _user_prompt(*, arena: Arena, text: str, image: bytes | None) -> Prompt:
    """The voter's prompt in the arena's pending-moderation set (with its input image, if any)."""
    prompt_set, _ = PromptSet.objects.get_or_create(
        slug=f"{USER_PROMPT_SET}-{arena.slug}"[:80],
        defaults={"name": f"Voters' prompts: {arena.name}"},
    )
    prompt, _ = Prompt.objects.get_or_create(
        prompt_set=prompt_set,
        text=text,
        defaults={"category": "user", "moderation_state": ModerationState.PENDING},
    )
    if image is not None and not prompt.conditioning_image:
        png = conditioning_image_normalise(data=image)
        prompt.conditioning_image.save(
            f"cond-{secrets.token_hex(8)}.png", ContentFile(png), save=True
        )
    return prompt


def battle_mark_ready(*, battle: Battle) -> bool:
    """Generating -> served once every slot's output is ready; the vote clock starts now."""
    if battle.state != BattleState.GENERATING:
        return battle.state == BattleState.SERVED
    statuses = set(battle.slots.values_list("asset__status", flat=True))
    if statuses != {AssetStatus.READY}:
        return False
    now = timezone.now()
    Battle.objects.filter(pk=battle.pk, state=BattleState.GENERATING).update(
        state=BattleState.SERVED, served_at=now
    )
    battle.state, battle.served_at = BattleState.SERVED, now
    return True
