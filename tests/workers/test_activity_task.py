"""The beat task behind the admin overview's activity figures."""

from __future__ import annotations

import pytest

from arena.models import ArenaActivitySummary
from tests.factories import ready_arena
from workers.tasks import rollup_activity

pytestmark = pytest.mark.django_db


def test_the_task_rolls_up_every_arena_and_says_what_it_did() -> None:
    arena = ready_arena(models=2)

    result = rollup_activity()

    assert result["arenas"] == 1 and result["rows"] > 0
    assert ArenaActivitySummary.objects.filter(arena=arena).exists()
