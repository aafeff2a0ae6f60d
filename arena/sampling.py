"""Sampling transparency: how likely the matchmaker is to show each model in the next battle.

The arena's matchmaker (``leaderboards.matchmaker_for``: overlap sampling over the current
beliefs, times each model's ``matchmaking_weight``) is sampled ``SAMPLING_DRAWS`` times per
battle size, over the models battles can be served from now (active, with ready outputs on
approved prompts, weight > 0) -- what ``services.battle_create`` asks it. The table is cached
per arena and model set for ``CACHE_S`` (the beliefs move with every vote; a rate a few minutes
old is as informative), so a read costs a few queries.

Caveat, stated on the page and in the API: when the chosen models share no prompt, a battle
falls back to models that do, so a model with few ready outputs is shown a little less than
its rate here.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from redis.exceptions import RedisError

import ranking
from arena import leaderboards, selectors
from arena.models import Arena, GenerativeModel, VoteMode

SAMPLING_DRAWS = 4000
CACHE_S = 600


@dataclass(frozen=True)
class SizeRates:
    k: int
    rates: dict[int, float]  # model id -> probability a battle of this size shows it


@dataclass(frozen=True)
class Sampling:
    draws: int
    built_at: str
    models: list[GenerativeModel]  # the servable models, by name
    sizes: list[SizeRates]
    unservable: list[GenerativeModel]  # in the arena but not shown now (no outputs, weight 0)


def _sizes(arena: Arena, servable: int) -> list[int]:
    modes = set(arena.vote_modes or [])
    sizes = {2} if VoteMode.PAIRWISE in modes else set()
    if modes & {VoteMode.BEST_OF_K, VoteMode.RANK_K}:
        sizes |= {int(k) for k in arena.k_values or []}
    return sorted(k for k in sizes if k <= servable)


def _servable(arena: Arena) -> tuple[list[int], dict[int, float]]:
    pool = selectors.arena_ready_pool(arena=arena)
    ids = sorted({model_id for by_model in pool.values() for model_id in by_model})
    weights = dict(
        GenerativeModel.objects.filter(pk__in=ids).values_list("pk", "matchmaking_weight")
    )
    return [pk for pk in ids if weights.get(pk, 1.0) > 0], weights


def _cache_get(key: str) -> dict[str, Any] | None:
    try:
        value: dict[str, Any] | None = cache.get(key)
    except RedisError:
        return None
    return value


def arena_sampling(*, arena: Arena, draws: int = SAMPLING_DRAWS) -> Sampling:
    """The matchmaker's probability of showing each servable model, per battle size."""
    candidates, weights = _servable(arena)
    key_src = f"{arena.pk}:{draws}:{sorted(weights.items())}:{candidates}"
    key = "sampling:" + hashlib.sha256(key_src.encode()).hexdigest()[:32]
    cached = _cache_get(key)
    if cached is None:
        sizes = []
        for k in _sizes(arena, len(candidates)):
            matchmaker = leaderboards.matchmaker_for(
                arena=arena, model_ids=candidates, weights=weights, seed=k
            )
            rates = ranking.sampling_rates(matchmaker, [str(pk) for pk in candidates], k, draws)
            sizes.append({"k": k, "rates": {int(p): r for p, r in rates.items()}})
        cached = {"sizes": sizes, "built_at": timezone.now().isoformat()}
        with contextlib.suppress(RedisError):  # a cache outage costs a recomputation, no more
            cache.set(key, cached, CACHE_S)
    models = list(GenerativeModel.objects.filter(arenas=arena).order_by("name"))
    servable = set(candidates)
    return Sampling(
        draws=draws,
        built_at=cached["built_at"],
        models=[m for m in models if m.pk in servable],
        sizes=[
            SizeRates(s["k"], {int(p): r for p, r in s["rates"].items()}) for s in cached["sizes"]
        ],
        unservable=[m for m in models if m.pk not in servable],
    )
