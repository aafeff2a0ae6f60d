"""The demo content: in the image-to-3D arenas each prompt's text describes its input image."""

from __future__ import annotations

import pytest

from arena.models import Arena, Task
from workers.demo import DEMO_ARENAS, OBJECT_PROMPTS, OBJECT_SUBJECTS, demo_seed
from workers.generators import render_reference
from workers.generators.figure import ARCHETYPES, archetype_named, figure_spec
from workers.generators.reference import REFERENCE_STYLE


@pytest.mark.parametrize(
    ("index", "text", "subject"), [(i, *pair) for i, pair in enumerate(OBJECT_SUBJECTS)]
)
def test_each_object_prompt_names_the_subject_its_image_shows(
    index: int, text: str, subject: str
) -> None:
    # Named, not picked by the prompt's hash (which gave "a potted cactus" a snowman), and the
    # figure the photo draws for this prompt at its seed is that subject.
    assert archetype_named(text) == subject
    assert figure_spec(text, index, REFERENCE_STYLE).archetype == subject


def test_the_object_prompts_show_every_subject_early_and_none_twice() -> None:
    assert len(set(OBJECT_PROMPTS)) == len(OBJECT_PROMPTS) == 30
    assert {subject for _, subject in OBJECT_SUBJECTS[: len(ARCHETYPES)]} == set(ARCHETYPES)


def test_a_prompt_that_names_no_subject_is_not_described_by_its_image() -> None:
    # Why the list above is checked: the old demo prompt's photo showed a snowman.
    assert archetype_named("a potted cactus") is None
    assert figure_spec("a potted cactus", 3, REFERENCE_STYLE).archetype == "snowman"


@pytest.mark.django_db
def test_the_seeded_image_to_3d_prompts_carry_the_image_drawn_for_their_own_text() -> None:
    demo_seed(prompts_per_arena=6)

    arenas = [spec for spec in DEMO_ARENAS if spec.task == Task.IMAGE_TO_3D]
    assert arenas and all(spec.prompts == OBJECT_PROMPTS for spec in arenas)
    for spec in arenas:
        prompts = list(Arena.objects.get(slug=spec.slug).prompt_set.prompts.order_by("pk"))
        assert [p.text for p in prompts] == OBJECT_PROMPTS[:6]
        for index, prompt in enumerate(prompts):
            with prompt.conditioning_image.open("rb") as image:
                assert image.read() == render_reference(prompt=prompt.text, seed=index), prompt.text
