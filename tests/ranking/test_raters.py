"""Method-specific checks: Elo arithmetic, BT vs choix and the likelihood, Bayesian updates."""

from __future__ import annotations

import math

import choix
import numpy as np
import pytest
from openskill.models import PlackettLuce
from scipy.optimize import approx_fprime

from ranking import (
    BayesianRater,
    BradleyTerryRater,
    EloRater,
    PairCounts,
    Ranking,
    fit_bradley_terry,
    weng_lin_update,
)
from ranking.bradley_terry import bt_hessian, bt_objective, fit_map_newton

# -- Elo --------------------------------------------------------------------------


def test_it_moves_elo_by_half_k_between_equal_players() -> None:
    r = EloRater(["a", "b"], k_factor=32)
    r.record([["a"], ["b"]])
    assert r.ratings.tolist() == [1016.0, 984.0]
    r2 = EloRater(["a", "b"], k_factor=32)
    r2.record([["a", "b"]])
    assert r2.ratings.tolist() == [1000.0, 1000.0]


def test_a_weighted_vote_moves_elo_by_its_weight_and_counts_at_it() -> None:
    r = EloRater(["a", "b"], k_factor=32)
    r.record([["a"], ["b"]], weight=0.25)
    assert r.ratings.tolist() == [1004.0, 996.0]
    assert r.counts.wins[0, 1] == 0.25 and r.n_votes == 1


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", None])
def test_a_bad_weight_is_refused_and_changes_nothing(bad: object) -> None:
    for rater in (EloRater(["a", "b"]), BayesianRater(["a", "b"]), BradleyTerryRater(["a", "b"])):
        with pytest.raises(ValueError, match=r"^weight: "):
            rater.record([["a"], ["b"]], weight=bad)  # type: ignore[arg-type]
        assert rater.n_votes == 0 and rater.counts.wins.sum() == 0


def test_a_weighted_bayesian_update_goes_part_of_the_way() -> None:
    full, part = BayesianRater(["a", "b"]), BayesianRater(["a", "b"])
    full.record([["a"], ["b"]])
    part.record([["a"], ["b"]], weight=0.1)
    prior_mu, prior_sigma = BayesianRater(["a", "b"]).mu, BayesianRater(["a", "b"]).sigma
    assert part.mu - prior_mu == pytest.approx(0.1 * (full.mu - prior_mu))
    assert part.sigma**2 == pytest.approx(prior_sigma**2 - 0.1 * (prior_sigma**2 - full.sigma**2))


def test_it_scores_all_pairs_of_a_kwise_vote_against_pre_vote_ratings() -> None:
    r = EloRater(["a", "b", "c"], k_factor=16)
    r.record([["a"], ["b"], ["c"]])
    # each pair 1000 vs 1000: expected 0.5, step 8
    assert r.ratings.tolist() == [1016.0, 1000.0, 984.0]
    best = EloRater(["a", "b", "c"], k_factor=16)
    best.record(Ranking.best_of("a", ["b", "c"]))
    assert best.ratings.tolist() == [1016.0, 992.0, 992.0]


def test_it_uses_the_elo_expectation_with_scale_400_base_10() -> None:
    r = EloRater(["a", "b"], k_factor=10)
    r.ratings = np.array([1400.0, 1000.0])
    r.record([["b"], ["a"]])
    expected_b = 1.0 / (1.0 + 10 ** (400 / 400))
    assert r.ratings[1] == pytest.approx(1000.0 + 10 * (1 - expected_b))


def test_it_reports_elo_without_intervals() -> None:
    r = EloRater(["a", "b", "c"])
    r.record([["a"], ["b"]])
    rows = r.standings()
    assert [s.player for s in rows] == ["a", "c", "b"]
    assert all(s.low == s.high == s.score for s in rows)
    assert rows[0].rank == 1 and rows[1].rank == 2 and rows[2].rank == 3
    assert rows[1].provisional  # never played


# -- Bradley-Terry ------------------------------------------------------------------


def _random_counts(seed: int, n: int = 6, votes: int = 80) -> PairCounts:
    rng = np.random.default_rng(seed)
    players = [f"p{i}" for i in range(n)]
    skill = rng.normal(0, 1, n)
    c = PairCounts(players)
    for _ in range(votes):
        i, j = rng.choice(n, 2, replace=False)
        win = rng.random() < 1 / (1 + math.exp(skill[j] - skill[i]))
        c.add([[players[i]], [players[j]]] if win else [[players[j]], [players[i]]])
    return c


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_matches_choix_map_estimate(seed: int) -> None:
    c = _random_counts(seed)
    data = [(i, j) for i in range(len(c)) for j in range(len(c)) for _ in range(int(c.wins[i, j]))]
    l2 = 0.1
    ours = fit_bradley_terry(c, l2=l2)
    # choix minimises alpha * |theta|^2 - loglik; ours l2/2 * |theta|^2 - loglik.
    theirs = choix.opt_pairwise(len(c), data, alpha=l2 / 2, tol=1e-10)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_it_matches_choix_ilsr_with_weak_regularisation() -> None:
    c = _random_counts(3, votes=300)
    data = [(i, j) for i in range(len(c)) for j in range(len(c)) for _ in range(int(c.wins[i, j]))]
    ours = fit_bradley_terry(c, l2=1e-9)
    theirs = choix.ilsr_pairwise(len(c), data, alpha=0.0, tol=1e-12)
    np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=1e-4)


def test_it_uses_the_analytic_gradient_and_hessian() -> None:
    c = _random_counts(4)
    c.add([["p0", "p1"]])  # a tie, counted half each way
    w = c.effective_wins()
    theta = np.random.default_rng(0).normal(0, 1, len(c))
    for lapse in (0.0, 0.05):
        _f, g = bt_objective(theta, w, 0.1, lapse)
        num = approx_fprime(theta, lambda t, lp=lapse: bt_objective(t, w, 0.1, lp)[0], 1e-7)
        np.testing.assert_allclose(g, num, atol=1e-4)
    # For lapse 0 the Fisher matrix is the exact Hessian.
    h = bt_hessian(theta, w + w.T, 0.1)
    num_h = np.array(
        [
            approx_fprime(theta, lambda t, k=k: bt_objective(t, w, 0.1)[1][k], 1e-6)
            for k in range(len(c))
        ]
    )
    np.testing.assert_allclose(h, num_h, atol=1e-3)


def test_it_maximises_the_likelihood_directly_on_tiny_data() -> None:
    # Two players, a beat b 3 times and lost once: MLE difference is log(3).
    c = PairCounts(["a", "b"])
    for _ in range(3):
        c.add([["a"], ["b"]])
    c.add([["b"], ["a"]])
    theta = fit_bradley_terry(c, l2=1e-10)
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-5)
    newton, _ = fit_map_newton(c.effective_wins(), 1e-10)
    np.testing.assert_allclose(newton, theta, atol=1e-5)


def test_it_keeps_perfect_separation_finite() -> None:
    r = BradleyTerryRater(["a", "b"], rounds=10)
    for _ in range(20):
        r.record([["a"], ["b"]])
    rows = r.standings()
    assert rows[0].player == "a" and math.isfinite(rows[0].score)
    assert rows[0].score - rows[1].score < 2000


def test_it_anchors_bt_scores_at_mean_1000_and_gives_intervals_that_contain_them() -> None:
    r = BradleyTerryRater([f"p{i}" for i in range(6)], rounds=30)
    r.counts = _random_counts(5)
    rows = r.standings()
    assert np.mean([s.score for s in rows]) == pytest.approx(1000.0)
    assert all(s.low <= s.score + 1e-9 and s.score <= s.high + 1e-9 for s in rows)
    assert rows == r.standings()  # cached, deterministic


def test_it_bootstraps_deterministically_per_seed_and_supports_multinomial() -> None:
    def board(seed: int, resample: str) -> list[tuple[float, float]]:
        r = BradleyTerryRater(
            [f"p{i}" for i in range(6)],
            rounds=20,
            seed=seed,
            resample=resample,  # type: ignore[arg-type]
        )
        r.counts = _random_counts(6)
        return [(s.low, s.high) for s in r.standings()]

    assert board(1, "poisson") == board(1, "poisson")
    assert board(1, "poisson") != board(2, "poisson")
    assert board(1, "multinomial") == board(1, "multinomial")


def test_it_gives_an_unplayed_model_the_prior_interval() -> None:
    r = BradleyTerryRater(["a", "b", "new"], rounds=10)
    r.record([["a"], ["b"]])
    new = next(s for s in r.standings() if s.player == "new")
    assert new.high - new.low > 1000 and new.provisional and new.rank == 1


# -- Bayesian ---------------------------------------------------------------------------


@pytest.mark.parametrize("ranks", [[0, 1, 2, 3], [0, 1, 1, 2], [1, 0], [0, 0, 1], [2, 0, 1, 1]])
def test_it_reproduces_openskill_plackett_luce_on_full_rankings(ranks: list[int]) -> None:
    rng = np.random.default_rng(len(ranks) + sum(ranks))
    mu = rng.normal(25, 3, len(ranks))
    sigma = rng.uniform(2, 8, len(ranks))
    model = PlackettLuce(tau=0.0)
    teams = [[model.rating(mu=float(m), sigma=float(s))] for m, s in zip(mu, sigma, strict=True)]
    rated = model.rate(teams, ranks=[float(r) for r in ranks])
    ours_mu, ours_sigma = weng_lin_update(mu, sigma, ranks)
    np.testing.assert_allclose(ours_mu, [t[0].mu for t in rated], rtol=1e-10)
    np.testing.assert_allclose(ours_sigma, [t[0].sigma for t in rated], rtol=1e-10)


def test_it_updates_a_best_of_k_vote_as_winner_chosen_not_as_tie() -> None:
    mu = np.array([25.0, 25.0, 25.0, 25.0])
    sigma = np.full(4, 25 / 3)
    new_mu, new_sigma = weng_lin_update(mu, sigma, [0, 1, 1, 1], partial=True)
    assert new_mu[0] > 25 and (new_mu[1:] < 25).all()
    np.testing.assert_allclose(new_mu[1:], new_mu[1])  # symmetric losers
    assert (new_sigma < sigma).all()
    # The winner's gain equals what the first stage of a full ranking gives it.
    full_mu, _ = weng_lin_update(mu, sigma, [0, 1, 2, 3])
    assert new_mu[0] == pytest.approx(full_mu[0])
    # A tie among the losers is different evidence (their tie stage is observed).
    _, tied_sigma = weng_lin_update(mu, sigma, [0, 1, 1, 1])
    assert tied_sigma[1] < new_sigma[1]


def test_it_displays_the_map_refit_with_laplace_intervals() -> None:
    r = BayesianRater(["a", "b", "c"])
    for _ in range(30):
        r.record([["a"], ["b"], ["c"]])
    rows = r.standings()
    assert [s.player for s in rows] == ["a", "b", "c"]
    for s in rows:
        assert s.low == pytest.approx(s.mu - 1.959964 * s.sigma, abs=1e-3)
        assert s.conservative == pytest.approx(s.mu - 3 * s.sigma)
        assert s.score == s.mu
    assert [s.rank for s in rows] == [1, 2, 3]
    cov = r.covariance()
    assert np.allclose(
        np.sqrt(np.diag(cov)), [s.sigma for s in sorted(rows, key=lambda s: s.player)]
    )


def test_it_flags_provisional_until_sigma_is_small() -> None:
    players = ["a", "b", "c", "d"]
    r = BayesianRater(players, provisional_sigma=50.0)
    assert all(s.provisional for s in r.standings())
    rng = np.random.default_rng(0)
    skill = np.array([0.6, 0.2, -0.2, -0.6])
    for _ in range(150):  # noisy votes: no pair is perfectly separated
        order = np.argsort(-(skill + rng.normal(0, 1, 4)))
        r.record([[players[i]] for i in order])
    assert not any(s.provisional for s in r.standings())


def test_it_refits_periodically_when_asked() -> None:
    r = BayesianRater(["a", "b"], refit_every=3)
    first = r.standings()
    r.record([["a"], ["b"]])
    assert r.standings() == first  # not due yet
    r.record([["a"], ["b"]])
    r.record([["a"], ["b"]])
    assert r.standings()[0].player == "a" and r.standings() != first


def test_it_offers_k_sort_and_online_boards_for_comparison() -> None:
    for display in ("conservative", "online"):
        r = BayesianRater(["a", "b", "c"], display=display)
        for _ in range(5):
            r.record([["c"], ["b"], ["a"]])
        rows = r.standings()
        assert rows[0].player == "c"
        if display == "conservative":
            assert rows[0].score == pytest.approx(rows[0].mu - 3 * rows[0].sigma)
    online_mu, online_sd = r.online()
    assert online_mu[2] > 1000 > online_mu[0] and (online_sd < 245).all()


def test_it_resists_a_reversed_vote_with_a_lapse_rate() -> None:
    def gap(lapse: float) -> float:
        r = BayesianRater(["a", "b", "c", "d"], lapse=lapse)
        for _ in range(20):
            r.record([["a"], ["b"], ["c"], ["d"]])
        r.record([["d"], ["c"], ["b"], ["a"]])
        mu, _ = r.posterior()
        return float(mu[0] - mu[3])

    assert gap(0.05) > gap(0.0)


def test_it_widens_the_prior_by_empirical_bayes_but_never_narrows_it() -> None:
    players = [f"p{i}" for i in range(8)]

    def prior_sd(consistent: bool, empirical: bool) -> tuple[float, float]:
        r = BayesianRater(players, empirical_prior=empirical)
        rng = np.random.default_rng(1)
        for _ in range(150):
            shown = [players[i] for i in sorted(rng.choice(8, 4, replace=False))]
            if not consistent:
                rng.shuffle(shown)  # coin-flip voters: no spread at all
            r.record([[p] for p in shown])
        mu, _ = r.posterior()
        return r.prior_sd, float(mu.max() - mu.min())

    default = BayesianRater(players).prior_sd
    wide, spread_eb = prior_sd(True, True)
    narrow, spread_fixed = prior_sd(True, False)
    assert narrow == pytest.approx(default) and wide > 2 * default
    assert spread_eb > spread_fixed  # the fixed prior compresses the board
    assert prior_sd(False, True)[0] == pytest.approx(default)
