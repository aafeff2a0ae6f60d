"""factory_boy factories for the arena's domain."""

from __future__ import annotations

import secrets
from typing import Any

import factory
from factory.django import DjangoModelFactory

from arena.models import (
    Arena,
    Asset,
    AssetStatus,
    GenerativeModel,
    Prompt,
    PromptSet,
    Task,
    VoteMode,
    Voter,
)


class GenerativeModelFactory(DjangoModelFactory[GenerativeModel]):
    class Meta:
        model = GenerativeModel

    name = factory.Sequence(lambda n: f"Model {n}")
    slug = factory.Sequence(lambda n: f"model-{n}")
    organisation = "Test Lab"
    task = Task.TEXT_TO_IMAGE
    output_formats = factory.LazyFunction(lambda: ["png"])
    backend = "builtin"
    backend_config = factory.LazyFunction(lambda: {"quality": 3, "style": 0})
    queue = "gen.cpu"


class PromptSetFactory(DjangoModelFactory[PromptSet]):
    class Meta:
        model = PromptSet

    slug = factory.Sequence(lambda n: f"set-{n}")
    name = factory.Sequence(lambda n: f"Set {n}")


class PromptFactory(DjangoModelFactory[Prompt]):
    class Meta:
        model = Prompt

    prompt_set = factory.SubFactory(PromptSetFactory)
    text = factory.Sequence(lambda n: f"a test prompt number {n}")


class ArenaFactory(DjangoModelFactory[Arena]):
    class Meta:
        model = Arena

    slug = factory.Sequence(lambda n: f"arena-{n}")
    name = factory.Sequence(lambda n: f"Arena {n}")
    task = Task.TEXT_TO_IMAGE
    prompt_set = factory.SubFactory(PromptSetFactory)
    k_values = factory.LazyFunction(lambda: [3, 4])
    vote_modes = factory.LazyFunction(
        lambda: [VoteMode.PAIRWISE, VoteMode.BEST_OF_K, VoteMode.RANK_K]
    )
    default_mode = VoteMode.PAIRWISE
    # Small served forms keep generation in tests quick (the defaults suit real models).
    media_profile = factory.LazyFunction(
        lambda: {
            "image_side": 256,
            "video_width": 128,
            "video_height": 128,
            "video_fps": 12,
            "video_seconds": 1,
            "splat_count": 4000,
        }
    )


class AssetFactory(DjangoModelFactory[Asset]):
    """A ready asset whose file name is set but not written (enough for vote logic)."""

    class Meta:
        model = Asset

    model = factory.SubFactory(GenerativeModelFactory)
    prompt = factory.SubFactory(PromptFactory)
    media_type = "image"
    fmt = "png"
    status = AssetStatus.READY
    public_id = factory.LazyFunction(lambda: secrets.token_hex(16))
    file = factory.LazyAttribute(lambda o: f"assets/{o.public_id}.png")


class VoterFactory(DjangoModelFactory[Voter]):
    class Meta:
        model = Voter


def ready_arena(*, models: int = 4, prompts: int = 2, **arena_fields: Any) -> Arena:
    """An arena whose every model has a ready asset for every prompt."""
    arena = ArenaFactory.create(**arena_fields)
    model_rows = GenerativeModelFactory.create_batch(models)
    arena.generative_models.add(*model_rows)
    for prompt in PromptFactory.create_batch(prompts, prompt_set=arena.prompt_set):
        for model in model_rows:
            AssetFactory.create(model=model, prompt=prompt)
    return arena


def without_metrics(callbacks: list[Any]) -> list[Any]:
    """On-commit callbacks other than the metrics' counters (frontend.metrics counts each
    battle and vote when its transaction commits)."""
    return [c for c in callbacks if getattr(c, "__module__", "") != "frontend.metrics"]


REQUESTED_DRAINS: list[int] = []


def drain_later(*, arena_id: int) -> None:
    """A ``TALLY_DRAIN_SENDER`` that only records the request (the ``requested_drains``
    fixture): the votes stay queued, as a Celery sender leaves them to a worker."""
    REQUESTED_DRAINS.append(arena_id)
