"""Recompute the golden standings (see make_golden.py) and compare."""

from __future__ import annotations

import json
import math

import pytest

from tests.ranking.make_golden import GOLDEN, METHODS, compute


@pytest.mark.parametrize("method", sorted(METHODS))
def test_it_reproduces_the_golden_standings(method: str) -> None:
    votes = json.loads((GOLDEN / "votes.json").read_text())
    expected = json.loads((GOLDEN / f"{method}.json").read_text())
    got = compute(method, votes)
    assert [r["player"] for r in got] == [r["player"] for r in expected]
    for g, e in zip(got, expected, strict=True):
        for key, value in e.items():
            if isinstance(value, float):
                assert math.isclose(g[key], value, rel_tol=1e-6, abs_tol=1e-6), (key, g, e)
            else:
                assert g[key] == value, (key, g, e)


def test_it_has_a_varied_golden_vote_set() -> None:
    votes = json.loads((GOLDEN / "votes.json").read_text())
    kinds = {(len(v["groups"]), v["partial"], max(len(g) for g in v["groups"])) for v in votes}
    assert any(partial for _, partial, _ in kinds)  # best-of-K
    assert any(n == 1 for n, _, _ in kinds)  # pure tie
    assert any(n >= 3 and size >= 2 and not p for n, p, size in kinds)  # tie inside a ranking
