"""Write the golden files tests/ranking/golden/*.json.

    .venv/bin/python -m tests.ranking.make_golden

``votes.json`` holds a fixed vote set (full rankings, ties, best-of-K and
pairwise votes from a seeded Thurstone voter); ``<method>.json`` the standings
each rater produces from it.  ``test_golden.py`` recomputes them and compares
with a tolerance, so a change in any method's numbers shows up as a diff of
these files, which a reviewer must accept by rerunning this script.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ranking import Ranking, make_rater

GOLDEN = Path(__file__).with_name("golden")
PLAYERS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
METHODS: dict[str, dict[str, Any]] = {
    "elo": {},
    "bradley_terry": {"rounds": 50},
    "bayesian": {},
}


def make_votes() -> list[dict[str, Any]]:
    """60 votes of mixed kinds; serialised as {"groups": [...], "partial": bool}."""
    rng = np.random.default_rng(7)
    skill = dict(zip(PLAYERS, [60.0, 40.0, 20.0, 0.0, -20.0, -40.0], strict=True))
    votes: list[dict[str, Any]] = []
    for v in range(60):
        k = 2 if v % 3 == 0 else 4
        shown = [str(p) for p in rng.choice(PLAYERS, size=k, replace=False)]
        perceived = {p: skill[p] + rng.normal(0.0, 30.0) for p in shown}
        order = sorted(shown, key=lambda p: -perceived[p])
        if v % 10 == 9:  # a tie / "both bad"
            votes.append({"groups": [order], "partial": False})
        elif k == 4 and v % 2 == 0:  # best-of-4
            votes.append({"groups": [[order[0]], order[1:]], "partial": True})
        elif k == 4 and v % 5 == 1:  # full ranking with a tie in the middle
            votes.append({"groups": [[order[0]], order[1:3], [order[3]]], "partial": False})
        else:
            votes.append({"groups": [[p] for p in order], "partial": False})
    return votes


def as_rankings(votes: list[dict[str, Any]]) -> list[Ranking]:
    return [
        Ranking(tuple(tuple(g) for g in v["groups"]), partial=bool(v["partial"])) for v in votes
    ]


def compute(method: str, votes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rater = make_rater(method, PLAYERS, **METHODS[method])
    for r in as_rankings(votes):
        rater.record(r)
    return [asdict(s) for s in rater.standings()]


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    votes = make_votes()
    (GOLDEN / "votes.json").write_text(json.dumps(votes, indent=1) + "\n")
    for method in METHODS:
        rows = compute(method, votes)
        (GOLDEN / f"{method}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
