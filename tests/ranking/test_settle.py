"""Votes to settle: the extra votes until neighbours on the board are separated at 95%."""

from __future__ import annotations

import numpy as np
import pytest

from ranking import votes_to_settle


def _board(gaps: list[float], sd: float) -> tuple[np.ndarray, np.ndarray]:
    score = np.cumsum([0.0, *[-g for g in gaps]])
    cov = np.eye(score.size) * sd**2  # independent scores: sd of a gap is sd * sqrt(2)
    return score, cov


def test_a_gap_already_wider_than_its_interval_is_settled() -> None:
    score, cov = _board([100.0, 100.0], sd=10.0)
    est = votes_to_settle(score, cov, np.full(3, 50.0), np.full(3, 1 / 3), k=2)

    assert est.own == [0, 0, 0] and est.top == 0


def test_a_gap_half_as_wide_as_needed_needs_three_times_the_evidence() -> None:
    # gap = z sd_gap / 2, so the gap's variance must fall 4x: 3x the appearances so far.
    z = 1.959964
    sd = 10.0
    gap = z * sd * np.sqrt(2) / 2
    score, cov = _board([gap], sd=sd)
    appearances = np.array([300.0, 300.0])

    est = votes_to_settle(score, cov, appearances, np.array([0.5, 0.5]), k=2, z=z)

    # 600 appearances so far; each future vote shows both (2 appearances): 3 x 600 / 2.
    assert est.above[1] == pytest.approx(900, abs=1)
    assert est.own == est.above[1:] * 2 and est.top == est.above[1]


def test_a_model_shown_more_often_settles_sooner() -> None:
    score, cov = _board([5.0, 5.0, 5.0], sd=10.0)
    rare = votes_to_settle(score, cov, np.full(4, 100.0), np.array([0.25, 0.25, 0.25, 0.25]), k=2)
    busy = votes_to_settle(score, cov, np.full(4, 100.0), np.array([0.1, 0.4, 0.4, 0.1]), k=2)

    slow, fast = rare.above[2], busy.above[2]
    assert slow is not None and fast is not None
    assert fast < slow  # the middle pair is sampled more


def test_a_model_is_as_settled_as_its_worse_neighbour_and_the_top_as_its_worst_pair() -> None:
    score, cov = _board([100.0, 5.0, 100.0], sd=10.0)
    est = votes_to_settle(score, cov, np.full(4, 100.0), np.full(4, 0.25), k=4)

    first, second, third, fourth = est.own
    assert first == 0 and fourth == 0
    middle = est.above[2]
    assert middle is not None and middle > 0
    assert second == third == middle
    assert est.top == est.above[2]


def test_a_tie_never_settles() -> None:
    score, cov = _board([0.0], sd=10.0)

    est = votes_to_settle(score, cov, np.full(2, 10.0), np.full(2, 0.5), k=2)

    assert est.own == [None, None] and est.top is None


def test_bad_shapes_are_refused() -> None:
    score, cov = _board([1.0], sd=1.0)
    with pytest.raises(ValueError, match="same players"):
        votes_to_settle(score, cov, np.ones(3), np.ones(2), k=2)
    with pytest.raises(ValueError, match="k: must be an int >= 2"):
        votes_to_settle(score, cov, np.ones(2), np.ones(2), k=1)
