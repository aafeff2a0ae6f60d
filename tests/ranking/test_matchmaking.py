"""Matchmakers: distinct proposals, admin controls, concurrency, placement."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ranking import Beliefs, Ranking, make_matchmaker, make_rater

STRATEGIES = ["random", "ucb", "default"]
PLAYERS = [f"m{i}" for i in range(8)]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_it_proposes_k_distinct_known_players(strategy: str) -> None:
    mm = make_matchmaker(strategy, make_rater("bayesian", PLAYERS), seed=0)
    for k in (2, 3, 4, 8):
        shown = mm.propose(k)
        assert len(shown) == k == len(set(shown)) and set(shown) <= set(PLAYERS)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_it_is_reproducible_per_seed(strategy: str) -> None:
    def run(seed: int) -> list[list[str]]:
        rater = make_rater("bayesian", PLAYERS)
        mm = make_matchmaker(strategy, rater, seed=seed)
        out = []
        for _ in range(10):
            shown = mm.propose(4)
            rater.record([[p] for p in sorted(shown)])
            out.append(shown)
        return out

    assert run(3) == run(3)


def _trained_beliefs() -> Beliefs:
    rater = make_rater("bayesian", PLAYERS)
    rng = np.random.default_rng(5)
    for _ in range(60):
        shown = [str(p) for p in rng.choice(PLAYERS, size=4, replace=False)]
        rater.record([[p] for p in sorted(shown)])
    return Beliefs.of(rater)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_reseeded_copy_proposes_what_a_new_matchmaker_with_that_seed_does(
    strategy: str,
) -> None:
    beliefs = _trained_beliefs()
    kept = make_matchmaker(strategy, beliefs, seed=1)
    kept.boost("m3", 4.0)
    kept.propose(4)  # (whatever the kept one has drawn or computed so far)

    def fresh(seed: int) -> list[list[str]]:
        mm = make_matchmaker(strategy, beliefs, seed=seed)
        mm.boost("m3", 4.0)
        return [mm.propose(4) for _ in range(20)]

    copy = kept.reseeded(7)
    assert [copy.propose(4) for _ in range(20)] == fresh(7)
    copy.boost("m5", 9.0)
    copy.exclude(["m0"])
    assert kept.reseeded(7).propose(4) == fresh(7)[0]  # the kept one is unchanged


def test_ambiguity_over_frozen_beliefs_is_computed_once_and_read_only() -> None:
    mm = make_matchmaker("default", _trained_beliefs(), seed=0)
    first = mm.ambiguity()  # type: ignore[attr-defined]

    assert mm.reseeded(1).ambiguity() is first  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        first[0, 1] = 0.0


def test_ambiguity_over_a_live_rater_follows_its_votes() -> None:
    rater = make_rater("bayesian", PLAYERS)
    mm = make_matchmaker("default", rater, seed=0)
    before = mm.ambiguity().copy()  # type: ignore[attr-defined]
    for _ in range(20):
        rater.record([["m0"], ["m7"]])

    assert mm.ambiguity()[0, 7] < before[0, 7]  # type: ignore[attr-defined]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_it_never_proposes_excluded_players(strategy: str) -> None:
    mm = make_matchmaker(strategy, make_rater("elo", PLAYERS), seed=1)
    mm.exclude(["m0", "m1", "m2"])
    seen = {p for _ in range(50) for p in mm.propose(3)}
    assert seen == set(PLAYERS[3:])
    with pytest.raises(ValueError, match="k: 6 is larger than the pool of 5"):
        mm.propose(6)
    mm.include(["m0"])
    assert "m0" in {p for _ in range(100) for p in mm.propose(3)}


@pytest.mark.parametrize("strategy", ["random", "default"])
def test_it_shows_a_boosted_player_more_often(strategy: str) -> None:
    def share(weight: float) -> float:
        mm = make_matchmaker(strategy, make_rater("bayesian", PLAYERS), seed=2)
        mm.boost("m5", weight)
        counts = Counter(p for _ in range(400) for p in mm.propose(2))
        return counts["m5"] / 800

    assert share(5.0) > 2 * share(1.0)


def test_it_breaks_ucb_ties_at_random_instead_of_always_returning_model_0() -> None:
    # Concurrent requests on a fresh arena: K-Sort's argmin/argmax pick the same
    # battle every time; ours spread over the pool.
    mm = make_matchmaker("ucb", make_rater("bayesian", PLAYERS), seed=4)
    battles = {tuple(sorted(mm.propose(2))) for _ in range(40)}
    pivots = Counter(p for b in battles for p in b)
    assert len(battles) > 10 and len(pivots) == len(PLAYERS)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_it_spreads_reserved_battles(strategy: str) -> None:
    rater = make_rater("bayesian", PLAYERS)
    mm = make_matchmaker(strategy, rater, seed=5)
    pending = []
    for _ in range(4):  # four simultaneous requests, no vote in yet
        shown = mm.propose(2)
        mm.reserve(shown)
        pending.append(shown)
    assert len({p for b in pending for p in b}) >= 6
    for shown in pending:
        mm.record([[shown[0]], [shown[1]]])  # votes arrive: reservations released
    mm.reserve(["m0"])
    mm.release(["m0"])
    mm.release(["m0"])  # releasing twice is harmless


def test_it_places_a_new_model_quickly() -> None:
    rng = np.random.default_rng(0)
    skill = {p: float(i) for i, p in enumerate(PLAYERS)}
    rater = make_rater("bayesian", PLAYERS)
    mm = make_matchmaker("default", rater, seed=6)

    def vote(shown: list[str]) -> Ranking:
        order = sorted(shown, key=lambda p: -(skill[p] + rng.normal(0, 0.5)))
        return Ranking(tuple((p,) for p in order))

    for _ in range(200):
        rater.record(vote(mm.propose(4)))
    skill["new"] = 3.5
    mm.add_player("new")
    assert "new" in rater.players
    shown_new = sum("new" in mm.propose(4) for _ in range(50))
    assert shown_new > 25  # uncertain newcomer is drawn into most battles
    for _ in range(40):
        rater.record(vote(mm.propose(4)))
    order = [s.player for s in rater.standings()]
    assert order.index("new") in (3, 4, 5)  # between m4 (4.0) and m3 (3.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda mm: mm.propose(1), "k: must be an int >= 2"),
        (lambda mm: mm.propose(9), "k: 9 is larger than the pool of 8"),
        (lambda mm: mm.propose("2"), "k: must be an int"),
        (lambda mm: mm.boost("m0", 0), "weight: must be a finite number > 0"),
        (lambda mm: mm.boost("nope", 2), "player: unknown player 'nope'"),
        (lambda mm: mm.exclude(["nope"]), "players: unknown player 'nope'"),
        (lambda mm: mm.exclude("m0"), "players: must be a sequence"),
        (lambda mm: mm.reserve(["nope"]), "players: unknown player 'nope'"),
        (lambda mm: mm.record([["m0"], ["m0"]]), "ranking: player 'm0' appears twice"),
        (lambda mm: mm.add_player(""), "player: player ids must be non-empty"),
    ],
)
def test_it_rejects_bad_matchmaker_arguments(call: object, message: str) -> None:
    mm = make_matchmaker("default", make_rater("elo", PLAYERS), seed=0)
    with pytest.raises(ValueError, match=message):
        call(mm)  # type: ignore[operator]
