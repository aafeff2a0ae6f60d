"""Battle serving picks its models with the arena's matchmaker, honours weights, and falls back."""

from __future__ import annotations

import random
from typing import Any

import pytest

from arena import leaderboards
from arena.models import Asset, AssetStatus, GenerativeModel
from arena.services import battle_create
from tests.factories import (
    ArenaFactory,
    AssetFactory,
    GenerativeModelFactory,
    PromptFactory,
    VoterFactory,
    ready_arena,
    without_metrics,
)

pytestmark = pytest.mark.django_db


def test_a_model_weighted_zero_is_never_served() -> None:
    arena = ready_arena(models=4)
    hidden = arena.generative_models.order_by("pk").first()
    assert hidden is not None
    GenerativeModel.objects.filter(pk=hidden.pk).update(matchmaking_weight=0)
    voter, rng = VoterFactory.create(), random.Random(4)

    shown = {
        slot.model_id
        for _ in range(25)
        for slot in battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng).slots.all()
    }

    assert hidden.pk not in shown
    assert len(shown) == 3


def test_a_boosted_model_is_shown_more_often() -> None:
    arena = ready_arena(models=5)
    boosted = arena.generative_models.order_by("pk").last()
    assert boosted is not None
    GenerativeModel.objects.filter(pk=boosted.pk).update(matchmaking_weight=5)
    voter, rng = VoterFactory.create(), random.Random(8)

    battles = [battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng) for _ in range(60)]
    share = sum(b.slots.filter(model=boosted).exists() for b in battles) / len(battles)

    assert share > 2 / 5 + 0.1, f"a uniform draw shows it in 40% of pairs; got {share:.0%}"


def test_a_process_builds_a_matchmaker_once_per_beliefs_it_keeps(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Battles take reseeded copies of the matchmaker a process built over the beliefs it
    keeps; new beliefs (the window ended) or other weights build a new one."""
    import ranking
    from arena import localcache

    settings.ARENA_LOCAL_CACHE_S = 600.0
    arena = ready_arena(models=4)
    ids = sorted(arena.generative_models.values_list("pk", flat=True))
    built: list[int] = []
    real = ranking.make_matchmaker

    def counted(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ranking, "make_matchmaker", counted)

    def propose(seed: int, weights: dict[int, float] | None = None) -> list[str]:
        matchmaker = leaderboards.matchmaker_for(
            arena=arena, model_ids=ids, weights=weights or {}, seed=seed
        )
        return matchmaker.propose(2)

    propose(0)  # (no beliefs yet: this battle fits them, for the next ones to keep)
    built.clear()
    first = [propose(seed) for seed in range(5)]
    assert len(built) == 1
    assert [propose(seed) for seed in range(5)] == first  # a seed still decides the battle
    propose(0, {ids[0]: 3.0})
    assert len(built) == 2
    localcache.clear()  # the window ended: the beliefs are read again
    assert [propose(seed) for seed in range(5)] == first
    assert len(built) == 3


def test_when_the_chosen_models_share_no_prompt_it_falls_back_and_queues_the_gap(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    arena = ArenaFactory.create()
    a, b, c = GenerativeModelFactory.create_batch(3)
    arena.generative_models.add(a, b, c)
    p1, p2 = PromptFactory.create_batch(2, prompt_set=arena.prompt_set)
    for model, prompt in ((a, p1), (b, p1), (b, p2), (c, p2)):
        AssetFactory.create(model=model, prompt=prompt)

    class Stub:
        def propose(self, k: int) -> list[str]:
            return [str(a.pk), str(c.pk)]  # A and C never met on a prompt

    monkeypatch.setattr(leaderboards, "matchmaker_for", lambda **kwargs: Stub())
    with django_capture_on_commit_callbacks(execute=False) as sent:
        battle = battle_create(
            arena=arena, voter=VoterFactory.create(), mode="pairwise", rng=random.Random(0)
        )

    served = set(battle.slots.values_list("model_id", flat=True))
    assert served in ({a.pk, b.pk}, {b.pk, c.pk})
    queued = Asset.objects.filter(status=AssetStatus.PENDING, enqueued_at__isnull=False)
    assert queued.count() == 1 and queued.get().model_id in (a.pk, c.pk)
    assert len(without_metrics(sent)) == 1


def _vote_on(battle: Any, voter: Any) -> None:
    from arena.services import vote_record
    from arena.tokens import battle_token_make

    token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
    vote_record(battle_public_id=str(battle.public_id), token=token, voter=voter, choice="A")


def test_a_voter_is_shown_outputs_they_have_not_seen_revealed_while_there_are_any() -> None:
    arena = ready_arena(models=2, prompts=6)  # every pairwise battle shows both models
    voter, rng = VoterFactory.create(), random.Random(5)

    prompts = []
    for _ in range(6):  # by chance alone, 6 distinct prompts in 6 battles: 1.5%
        battle = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)
        prompts.append(battle.prompt_id)
        _vote_on(battle, voter)
    again = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)  # all seen now

    assert len(set(prompts)) == 6
    assert again.prompt_id in prompts


def test_an_unvoted_battle_does_not_count_as_seen_and_other_voters_do_not_matter() -> None:
    arena = ready_arena(models=2, prompts=2)
    voter, other, rng = VoterFactory.create(), VoterFactory.create(), random.Random(6)
    served_only = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)
    for _ in range(4):
        _vote_on(battle_create(arena=arena, voter=other, mode="pairwise", rng=rng), other)

    later = [battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng) for _ in range(8)]

    # Nothing revealed to this voter yet: both prompts stay in play.
    assert {b.prompt_id for b in later} | {served_only.prompt_id} == set(
        arena.prompt_set.prompts.values_list("pk", flat=True)
    )


def test_another_seed_of_a_revealed_output_is_preferred() -> None:
    arena = ArenaFactory.create()
    models = GenerativeModelFactory.create_batch(2)
    arena.generative_models.add(*models)
    prompt = PromptFactory.create(prompt_set=arena.prompt_set)
    for model in models:
        for seed in (0, 1):
            AssetFactory.create(model=model, prompt=prompt, seed=seed)
    voter, rng = VoterFactory.create(), random.Random(7)

    first = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)
    _vote_on(first, voter)
    second = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)

    first_assets = set(first.slots.values_list("asset_id", flat=True))
    second_assets = set(second.slots.values_list("asset_id", flat=True))
    assert first_assets.isdisjoint(second_assets)


def test_what_a_voter_has_seen_revealed_is_their_latest_voted_battles_in_that_arena() -> None:
    from arena.models import BattleSlot
    from arena.selectors import voter_revealed_assets

    arena, elsewhere = ready_arena(models=2, prompts=6), ready_arena(models=2, prompts=2)
    voter, other, rng = VoterFactory.create(), VoterFactory.create(), random.Random(8)
    voted = []
    for _ in range(4):
        battle = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)
        _vote_on(battle, voter)
        voted.append(battle)
    battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)  # served, not voted
    _vote_on(battle_create(arena=arena, voter=other, mode="pairwise", rng=rng), other)
    _vote_on(battle_create(arena=elsewhere, voter=voter, mode="pairwise", rng=rng), voter)

    def assets(battles: list[Any]) -> set[int]:
        return set(BattleSlot.objects.filter(battle__in=battles).values_list("asset_id", flat=True))

    assert voter_revealed_assets(voter=voter, arena=arena) == assets(voted)
    assert voter_revealed_assets(voter=voter, arena=arena, recent=2) == assets(voted[-2:])


def test_a_voter_read_for_a_battle_brings_along_what_it_has_seen_in_that_arena(
    django_assert_num_queries: Any,
) -> None:
    """On PostgreSQL the battle request reads its voter and the voter's seen outputs in one
    query; what it brings equals what the query on its own answers."""
    from django.db import connection

    from arena.selectors import voter_revealed_assets
    from arena.services import voter_get_or_create

    arena, elsewhere = ready_arena(models=3, prompts=4), ready_arena(models=2, prompts=2)
    voter, rng = VoterFactory.create(), random.Random(4)
    for _ in range(3):
        _vote_on(battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng), voter)
    _vote_on(battle_create(arena=elsewhere, voter=voter, mode="pairwise", rng=rng), voter)
    expected = voter_revealed_assets(voter=voter, arena=arena)

    found, created = voter_get_or_create(public_id=str(voter.public_id), seen_in=arena)
    with django_assert_num_queries(0 if connection.vendor == "postgresql" else 1):
        seen = voter_revealed_assets(voter=found, arena=arena)
    new, new_created = voter_get_or_create(public_id=None, seen_in=arena)

    assert (found.pk, created, len(expected)) == (voter.pk, False, 3 * 2)
    assert seen == expected
    assert voter_revealed_assets(voter=found, arena=elsewhere) == voter_revealed_assets(
        voter=voter, arena=elsewhere
    )  # another arena: asked on its own
    assert new_created and voter_revealed_assets(voter=new, arena=arena) == set()
