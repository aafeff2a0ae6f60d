"""Frozen beliefs: what the aggregator caches and battles read, without a fit."""

from __future__ import annotations

import numpy as np
import pytest

import ranking


def _rater() -> ranking.BayesianRater:
    rater = ranking.BayesianRater(["a", "b", "c", "d"])
    for winner, loser in [("a", "b"), ("a", "c"), ("b", "c"), ("c", "d"), ("a", "d"), ("b", "d")]:
        rater.record(ranking.Ranking(((winner,), (loser,))))
    return rater


def test_beliefs_hold_what_the_rater_believed() -> None:
    rater = _rater()

    beliefs = ranking.Beliefs.of(rater)

    assert beliefs.players == rater.players
    np.testing.assert_allclose(beliefs.skills()[0], rater.skills()[0])
    np.testing.assert_allclose(beliefs.skills()[1], rater.skills()[1])
    np.testing.assert_allclose(beliefs.covariance(), rater.covariance())
    np.testing.assert_allclose(beliefs.comparisons(), rater.comparisons())


def test_beliefs_survive_a_round_trip_through_plain_data() -> None:
    beliefs = ranking.Beliefs.of(_rater())

    again = ranking.Beliefs.from_dict(beliefs.to_dict())

    np.testing.assert_array_equal(again.covariance(), beliefs.covariance())
    assert again.players == beliefs.players


def test_a_subset_keeps_the_chosen_players_rows_and_columns_in_order() -> None:
    beliefs = ranking.Beliefs.of(_rater())

    part = beliefs.subset(["d", "a"])

    full = beliefs.covariance()
    assert part.players == ["d", "a"]
    np.testing.assert_allclose(part.covariance(), full[np.ix_([3, 0], [3, 0])])
    assert beliefs.knows(["a", "d"]) and not beliefs.knows(["a", "e"])
    with pytest.raises(KeyError, match="'e'"):
        beliefs.subset(["a", "e"])


def test_a_matchmaker_over_beliefs_proposes_what_it_would_over_the_rater() -> None:
    rater = _rater()
    live = ranking.make_matchmaker("default", rater, seed=7)
    frozen = ranking.make_matchmaker("default", ranking.Beliefs.of(rater), seed=7)

    assert [live.propose(3) for _ in range(20)] == [frozen.propose(3) for _ in range(20)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"players": ["a", "b"], "mu": [0.0], "cov": [[1, 0], [0, 1]]}, "mu: expected 2"),
        ({"players": ["a", "b"], "mu": [0, 0], "cov": [[1, 0]]}, "cov: expected a 2x2"),
        ({"players": ["a", "a"], "mu": [0, 0], "cov": [[1, 0], [0, 1]]}, "duplicate"),
        ({"players": ["a"], "mu": [float("nan")], "cov": [[1]]}, "mu: must be finite"),
        ({"players": ["a"], "mu": [0.0], "cov": [[-1.0]]}, "variances must be >= 0"),
        ({"players": ["a"], "mu": [0.0]}, "malformed"),
    ],
)
def test_malformed_beliefs_are_refused_with_the_reason(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ranking.Beliefs.from_dict(data)


def test_beliefs_are_read_only() -> None:
    beliefs = ranking.Beliefs.of(_rater())

    with pytest.raises(TypeError, match="read-only"):
        beliefs.record(ranking.Ranking((("a",), ("b",))))
    with pytest.raises(TypeError, match="read-only"):
        beliefs.add_player("e")
