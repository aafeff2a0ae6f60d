"""Property tests (hypothesis): relabelling, monotonicity, replay."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ranking import BayesianRater, BradleyTerryRater, EloRater, Ranking, make_rater

PLAYERS = ["p0", "p1", "p2", "p3", "p4"]
FAST: dict[str, dict[str, Any]] = {
    "elo": {},
    "bradley_terry": {"rounds": 4},
    "bayesian": {},
}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def votes(draw: st.DrawFn, min_size: int = 0, max_size: int = 12) -> list[Ranking]:
    """Random votes over PLAYERS: full rankings with ties, best-of-K, pairwise ties."""
    out = []
    for _ in range(draw(st.integers(min_size, max_size))):
        k = draw(st.integers(2, len(PLAYERS)))
        shown = draw(st.permutations(PLAYERS))[:k]
        kind = draw(st.sampled_from(["full", "ties", "best"]))
        if kind == "best" and k > 2:
            out.append(Ranking.best_of(shown[0], shown[1:]))
        elif kind == "ties":
            cuts = sorted(draw(st.sets(st.integers(1, k - 1), max_size=k - 1)))
            bounds = [0, *cuts, k]
            out.append(Ranking(tuple(tuple(shown[a:b]) for a, b in itertools.pairwise(bounds))))
        else:
            out.append(Ranking(tuple((p,) for p in shown)))
    return out


def _by_player(rater: Any) -> dict[str, tuple[float, float]]:
    return {s.player: (s.score, s.sigma) for s in rater.standings()}


@SETTINGS
@given(votes(), st.permutations(range(len(PLAYERS))), st.sampled_from(sorted(FAST)))
def test_it_permutes_the_output_when_players_are_relabelled(
    vs: list[Ranking], perm: list[int], method: str
) -> None:
    names = {p: f"x{perm[i]}" for i, p in enumerate(PLAYERS)}
    a = make_rater(method, PLAYERS, **FAST[method])
    # Relabelled *and* registered in a different order.
    b = make_rater(method, sorted(names.values()), **FAST[method])
    for v in vs:
        a.record(v)
        b.record(v.relabel(names))
    got_a, got_b = _by_player(a), _by_player(b)
    for p, (score, sigma) in got_a.items():
        score_b, sigma_b = got_b[names[p]]
        assert np.isclose(score, score_b, rtol=0, atol=1e-5), (p, score, score_b)
        if method != "bradley_terry":  # BT's bootstrap draws follow the player order
            assert np.isclose(sigma, sigma_b, rtol=0, atol=1e-5)


@SETTINGS
@given(votes(), st.sampled_from(sorted(FAST)))
def test_it_gives_identical_standings_when_the_same_votes_are_replayed(
    vs: list[Ranking], method: str
) -> None:
    a = make_rater(method, PLAYERS, **FAST[method])
    b = make_rater(method, PLAYERS, **FAST[method])
    for i, v in enumerate(vs):
        a.record(v)
        b.record(v)
        if i % 3 == 0:
            a.standings()  # reading in between must not change anything
    assert a.standings() == b.standings()


def _gap(rater: Any, winner: str, loser: str) -> float:
    mu, _ = rater.skills()
    players = rater.players
    return float(mu[players.index(winner)] - mu[players.index(loser)])


@SETTINGS
@given(votes(), st.permutations(PLAYERS))
def test_it_never_lowers_the_winner_relative_to_the_loser(
    vs: list[Ranking], order: list[str]
) -> None:
    a, b = order[0], order[1]
    raters: tuple[EloRater | BradleyTerryRater | BayesianRater, ...] = (
        EloRater(PLAYERS),
        BradleyTerryRater(PLAYERS, rounds=2),
        BayesianRater(PLAYERS),
    )
    for rater in raters:
        for v in vs:
            rater.record(v)
        before = _gap(rater, a, b)
        rater.record([[a], [b]])
        after = _gap(rater, a, b)
        assert after > before - 1e-6, (type(rater).__name__, before, after)


@SETTINGS
@given(votes(min_size=1))
def test_it_keeps_counts_consistent_with_the_votes(vs: list[Ranking]) -> None:
    rater = BayesianRater(PLAYERS)
    for v in vs:
        rater.record(v)
    rows = rater.standings()
    assert sum(s.votes for s in rows) == sum(len(v.players) for v in vs)
    pairs = sum(1 for v in vs for _ in v.pairs())
    assert sum(s.wins + s.losses + s.ties for s in rows) == 2 * pairs
    assert all(0.0 <= s.win_rate <= 1.0 for s in rows)
    assert sorted(s.player for s in rows) == PLAYERS
