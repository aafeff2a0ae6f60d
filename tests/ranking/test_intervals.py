"""Intervals that resample votes, not pairs: vote-level replicates and the sandwich covariance."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pytest
from numpy.typing import NDArray

from ranking import BayesianRater, BradleyTerryRater, PairCounts, Ranking, vote_weights
from ranking.base import BaseRater
from ranking.bradley_terry import (
    bt_hessian,
    fit_bradley_terry,
    fit_firth,
    fit_map_newton,
    replicate_refits,
    replicate_score_cov,
    to_display,
)
from ranking.core import LOGIT_TO_ELO

PLAYERS = [f"m{i}" for i in range(8)]
BOARD_COLUMNS = ("score", "low", "high", "sigma")
R = TypeVar("R", bound=BaseRater)


def _ballots(n: int, seed: int, players: list[str] = PLAYERS) -> list[Ranking]:
    """Full rankings of 4, best-of-4 and tied rankings from a Plackett-Luce world."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-2.0, 2.0, len(players))
    out = []
    for v in range(n):
        shown = rng.choice(len(players), size=4, replace=False)
        order = [players[i] for i in shown[np.argsort(-(theta[shown] + rng.gumbel(size=4)))]]
        if v % 3 == 0:
            out.append(Ranking(tuple((p,) for p in order)))
        elif v % 3 == 1:
            out.append(Ranking(((order[0],), tuple(order[1:])), partial=True))
        else:
            out.append(Ranking(((order[0],), (order[1], order[2]), (order[3],))))
    return out


def test_vote_weights_are_poisson_one_and_a_pure_function_of_the_vote() -> None:
    weights = vote_weights(np.arange(100_000), 50)

    assert weights.shape == (100_000, 50)
    assert weights.mean() == pytest.approx(1.0, abs=0.01)
    assert weights.var() == pytest.approx(1.0, abs=0.01)
    assert (weights == 0).mean() == pytest.approx(np.exp(-1), abs=0.005)
    assert np.array_equal(vote_weights([41, 7], 50), weights[[41, 7]])  # any order, any batch
    assert abs(np.corrcoef(weights[:, 0], weights[:, 1])[0, 1]) < 0.01  # rounds independent


def test_replicates_move_with_the_votes_one_at_a_time_or_in_bulk() -> None:
    ballots = _ballots(300, seed=1)
    weights = np.random.default_rng(2).uniform(0.1, 1.0, len(ballots))
    one, bulk = PairCounts(PLAYERS, replicates=20), PairCounts(PLAYERS, replicates=20)

    for key, (ballot, weight) in enumerate(zip(ballots, weights, strict=True)):
        one.add(ballot, float(weight), key)
    bulk.add_many(ballots, weights, list(range(len(ballots))))

    for a, b in ((one.wins, bulk.wins), (one.ties, bulk.ties)):
        assert np.allclose(a, b)
    assert np.allclose(one.rep_wins, bulk.rep_wins) and np.allclose(one.rep_ties, bulk.rep_ties)
    # On average over the replicates, the counts themselves.
    assert one.rep_wins.mean(axis=0) == pytest.approx(one.wins, rel=0.35, abs=2.0)


def test_the_replicates_of_a_subset_are_the_subsets_replicates() -> None:
    counts = PairCounts(PLAYERS, replicates=5)
    counts.add_many(_ballots(100, seed=3), None, list(range(100)))

    sub = counts.subset(["m5", "m1"])

    assert sub.players == ["m5", "m1"]
    assert np.array_equal(sub.rep_wins[:, 0, 1], counts.rep_wins[:, 5, 1])
    assert np.array_equal(sub.rep_ties[:, 1, 0], counts.rep_ties[:, 1, 5])


def test_counts_with_replicates_want_a_vote_key() -> None:
    counts = PairCounts(PLAYERS, replicates=5)

    with pytest.raises(ValueError, match="key: counts with replicates need an int vote key"):
        counts.add(Ranking((("m1",), ("m2",))))
    with pytest.raises(ValueError, match="keys: counts with replicates need one int vote key"):
        counts.add_many([Ranking((("m1",), ("m2",)))])
    with pytest.raises(ValueError, match="other: has 0 replicates"):
        counts.merge(PairCounts(PLAYERS))


def test_a_vote_bootstrap_needs_as_many_replicates_as_rounds() -> None:
    rater = BradleyTerryRater(PLAYERS, rounds=10, resample="vote")
    rater.counts = PairCounts(PLAYERS, replicates=4)
    rater.record(Ranking((("m1",), ("m2",))))

    with pytest.raises(ValueError, match="needs 10 vote-level replicates, the counts have 4"):
        rater.standings()


def test_for_pairwise_votes_the_score_variability_is_the_fisher_information() -> None:
    """With independent votes of one pair each, J estimates the Fisher information H."""
    rng = np.random.default_rng(5)
    theta = np.linspace(-1.0, 1.0, len(PLAYERS))
    ballots = []
    for _ in range(20_000):
        i, j = rng.choice(len(PLAYERS), size=2, replace=False)
        win = rng.random() < 1 / (1 + np.exp(theta[j] - theta[i]))
        a, b = (PLAYERS[i], PLAYERS[j]) if win else (PLAYERS[j], PLAYERS[i])
        ballots.append(Ranking(((a,), (b,))))
    counts = PairCounts(PLAYERS, replicates=400)
    counts.add_many(ballots, None, list(range(len(ballots))))
    fit = fit_bradley_terry(counts, l2=1e-6)

    j = replicate_score_cov(counts, fit)
    h = bt_hessian(fit, counts.comparisons(), 0.0)

    assert np.diag(j) == pytest.approx(np.diag(h), rel=0.2)


def _loaded(rater: R, ballots: list[Ranking]) -> R:
    """``rater`` with ``ballots`` counted (vote ids their positions, for the replicates)."""
    rater.counts.add_many(ballots, None, list(range(len(ballots))))
    rater.n_votes = len(ballots)
    return rater


def _board(
    rater: BayesianRater | BradleyTerryRater, players: list[str]
) -> dict[str, NDArray[np.float64]]:
    """The board's score, low, high and sigma columns in ``players`` order."""
    rows = {s.player: s for s in rater.standings()}
    return {c: np.array([getattr(rows[p], c) for p in players]) for c in BOARD_COLUMNS}


def test_a_full_ranking_of_four_gets_wider_bayesian_intervals_than_its_pairs_alone() -> None:
    ballots = [b for b in _ballots(1500, seed=6) if not b.partial]
    plain = _loaded(BayesianRater(PLAYERS), ballots)
    robust = _loaded(BayesianRater(PLAYERS, replicates=100), ballots)

    widened = robust.posterior()[1] / plain.posterior()[1]

    assert widened.mean() > 1.05 and widened.min() > 0.95, widened
    assert robust.posterior()[0] == pytest.approx(plain.posterior()[0])  # same scores


def test_a_bayesian_sd_is_no_narrower_than_the_spread_of_its_replicate_refits() -> None:
    """300 best-of-4 votes over 8 models: the bottom models seldom win, their likelihood is far
    from quadratic, and the linearised sandwich alone was narrower than the spread of the MAP
    refitted on each vote-level replicate."""
    ballots = [b for b in _ballots(900, seed=3) if b.partial]
    rater = _loaded(BayesianRater(PLAYERS, replicates=100), ballots)
    mu, posterior_sd = rater.posterior()
    alpha = (LOGIT_TO_ELO / rater.prior_sd) ** 2
    theta = (mu - mu.mean()) / LOGIT_TO_ELO

    spread = replicate_refits(rater.counts, alpha, theta, 100).std(axis=0, ddof=1)
    shown = _board(rater, PLAYERS)["sigma"]

    assert np.all(shown >= spread * (1 - 1e-6)), (shown, spread)
    assert np.any(posterior_sd < spread), "the sandwich alone is narrower somewhere"
    # The floor is the board's: the covariance the matchmaker and the ranks use leaves it out.
    assert np.allclose(np.sqrt(np.diag(rater.covariance())), posterior_sd)


def test_a_sparse_boards_bayesian_interval_reaches_the_unshrunk_score() -> None:
    """500 pairwise votes over 50 models: the prior pulls the extreme models towards the middle
    (by ~120 Elo points at the ends), so each interval runs from the shrunk score to the
    unshrunk (Firth) one and 1.96 sd beyond; the posterior interval alone covered 0.91."""
    players = [f"m{i:02d}" for i in range(50)]
    theta = np.linspace(-550.0, 550.0, 50) / LOGIT_TO_ELO
    rng = np.random.default_rng(5)
    ballots = []
    for _ in range(500):
        a, b = rng.choice(50, size=2, replace=False)
        win = rng.random() < 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
        ballots.append(
            Ranking(((players[a],), (players[b],)) if win else ((players[b],), (players[a],)))
        )
    rater = _loaded(BayesianRater(players, replicates=100), ballots)
    board = _board(rater, players)
    mode, low, high, sd = (board[c] for c in BOARD_COLUMNS)
    unshrunk = to_display(fit_firth(rater.counts.effective_wins(), 0.1))

    assert np.allclose(low, np.minimum(mode, unshrunk) - 1.96 * sd, atol=0.01)
    assert np.allclose(high, np.maximum(mode, unshrunk) + 1.96 * sd, atol=0.01)
    # The prior shrinks: most of the bottom ten's intervals reach further down than the mode's.
    reach = mode[:10] - 1.96 * sd[:10] - low[:10]
    assert (reach > 1.0).sum() >= 7 and reach.mean() > 20.0, reach
    # Without vote-level replicates the interval is the posterior's own, as before.
    for row in _loaded(BayesianRater(players), ballots).standings():
        assert row.high - row.score == pytest.approx(row.score - row.low)


def _coverage(method: str, seeds: int, votes: int = 1000, best_only: bool = False) -> float:
    """Share of (model, seed) whose true centred score lies in its 95% interval: 16 models
    over +-550 Elo points, ``votes`` full rankings of 4 each (Plackett-Luce), or only their
    winners (``best_only``: best-of-4 votes)."""
    players = [f"m{i:02d}" for i in range(16)]
    theta = np.linspace(-550.0, 550.0, 16) / LOGIT_TO_ELO
    true = 1000.0 + LOGIT_TO_ELO * (theta - theta.mean())
    covered = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        ballots = []
        for _ in range(votes):
            shown = rng.choice(16, size=4, replace=False)
            order = shown[np.argsort(-(theta[shown] + rng.gumbel(size=4)))]
            names = [players[i] for i in order]
            if best_only:
                ballots.append(Ranking(((names[0],), tuple(names[1:])), partial=True))
            else:
                ballots.append(Ranking(tuple((p,) for p in names)))
        rater: BradleyTerryRater | BayesianRater
        if method == "bradley_terry":
            rater = BradleyTerryRater(players, rounds=100, resample="vote")
        elif method == "bradley_terry_firth":
            rater = BradleyTerryRater(players, rounds=100, resample="vote", bias_reduction="firth")
        else:
            rater = BayesianRater(players, replicates=100)
        board = _board(_loaded(rater, ballots), players)
        covered += int(((board["low"] <= true) & (true <= board["high"])).sum())
    return covered / (16 * seeds)


@pytest.mark.parametrize("method", ["bradley_terry", "bayesian"])
def test_k4_intervals_cover_the_true_scores(method: str) -> None:
    """The pair bootstrap covered about 0.85-0.89 here (benchmarks/coverage.py); a vote-level
    one must stay above 0.90 (95% nominal; 192 model-seeds, so about +-1.6% of noise)."""
    assert _coverage(method, seeds=12) >= 0.90


def test_small_best_of_4_boards_get_intervals_that_cover_with_firths_fit() -> None:
    """500 best-of-4 votes over 16 models: the bottom models rarely win, so the plain vote
    bootstrap covered about 0.875 (benchmarks/coverage.py); the leaderboards' Bradley-Terry
    (Firth's bias-reduced fit, no narrower than the Laplace width there) must stay above
    0.90 (12 seeds, 192 model-seeds)."""
    assert _coverage("bradley_terry_firth", seeds=12, votes=500, best_only=True) >= 0.90


def test_firths_fit_equals_the_plain_fit_on_balanced_counts_and_stays_finite_when_unbeaten() -> (
    None
):
    balanced = np.full((3, 3), 5.0)
    np.fill_diagonal(balanced, 0.0)
    assert np.allclose(fit_firth(balanced, 0.1), 0.0, atol=1e-7)

    # m0 beat m1 and m2 six times each and never lost; m1 and m2 split evenly.
    wins = np.array([[0.0, 6.0, 6.0], [0.0, 0.0, 3.0], [0.0, 3.0, 0.0]])
    plain, _ = fit_map_newton(wins, 0.1)
    firth = fit_firth(wins, 0.1)
    assert np.all(np.isfinite(firth))
    # The penalised MLE leans on the weak prior alone; Firth's fit is pulled in from there.
    assert 0.0 < firth[0] - firth[1] < plain[0] - plain[1]


def test_the_rater_refuses_an_unknown_bias_reduction() -> None:
    with pytest.raises(ValueError, match=r"^bias_reduction: "):
        BradleyTerryRater(PLAYERS, bias_reduction="jackknife")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^bias_reduction: 'firth' needs resample='vote'"):
        BradleyTerryRater(PLAYERS, bias_reduction="firth")  # the pair bootstrap's default
