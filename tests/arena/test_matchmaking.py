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
    assert len(sent) == 1
