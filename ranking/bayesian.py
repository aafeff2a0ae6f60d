"""Bayesian skill ratings: online Gaussian beliefs plus a MAP refit for display.

Two layers, one model (a Gaussian prior on each model's skill and a
Plackett-Luce / Bradley-Terry likelihood):

*Online* (``online()``): every K-wise vote updates each shown model's Gaussian
``N(mu, sigma^2)`` with the Weng & Lin (2011) Bayesian approximation for the
Plackett-Luce model -- the TrueSkill idea (Herbrich et al. 2006; Thurstone's
1927 "law of comparative judgment" with Gaussian performances) in the form
that openskill maintains.  Full rankings with ties go through
``openskill.models.PlackettLuce`` itself.  A best-of-K (top-1) vote is *not* a
ranking with tied losers: its Plackett-Luce likelihood is just the first
factor, "the winner was chosen out of these K".  openskill can only express
ties, so for partial rankings we apply the same Weng-Lin update restricted to
the stages actually observed (:func:`weng_lin_update`; identical to openskill
on full rankings, which the tests check).  This is what K-Sort Arena (Li et al.
2024, arXiv:2408.14468) does with TrueSkill-style updates.

*Display* (``standings()``, ``display="map"``, the default): K-Sort shows
``mu - 3 sigma`` of the online filter.  That order keeps swapping neighbours
long after convergence, because an online filter's ``mu`` depends on the order
the votes arrived in and ``mu - 3 sigma`` mixes in how *often* a model was
shown.  Instead we refit the same prior and likelihood on *all* votes at once
(the posterior mode over the aggregated pair counts with the broken-down
pairwise Bradley-Terry likelihood, Gaussian prior ``N(0, s^2)`` in log-odds
units, damped Newton), and

* choose the prior width ``s`` by empirical Bayes (MacKay's evidence fixed
  point, never narrower than the configured ``sigma / (sqrt 2 beta)``): a
  fixed narrow prior compresses a board whose models are far apart and pulls
  the models with few votes to the middle, misordering them;

* order the board by the posterior mode (a function of the vote counts only,
  so it is replayable and rebuildable from the database, and it converges to
  the true order instead of oscillating around it);
* report ``sigma`` and the ``level`` interval ``mu +- z sigma`` from the
  Laplace approximation (inverse Hessian); with vote-level replicates
  (``replicates``, the leaderboards') ``sigma`` is widened to the vote-level
  variance (:meth:`BayesianRater._vote_level`), the board's sd is no narrower
  than the spread of replicate refits (:meth:`BayesianRater._shown_width`), and the interval is
  *bias-aware*: it runs from ``min(mu, u) - z sigma`` to ``max(mu, u) + z
  sigma``, ``u`` the model's unshrunk score (Firth's bias-reduced fit). The
  prior shrinks a sparsely voted model towards the middle, and a posterior
  interval around the mode alone then misses the extreme models' true scores:
  50 models with 500 pairwise votes covered 0.913, bias-aware 0.939 (40 seeds,
  benchmarks/coverage.py's world); where votes are plentiful ``u`` and ``mu``
  coincide and nothing changes. Rank = 1 + the number of
  models that are significantly better *pair by pair*: j counts against i
  when ``mu_j - mu_i > z * sd(mu_j - mu_i)`` with the sd of the difference
  from the joint covariance (:func:`ranking.core.rank_by_differences`).
  Models the data cannot yet separate share a rank, so a swap between them
  never changes a displayed rank; comparing marginal intervals instead
  (the LMSYS rule, used for ``bradley_terry``) would tie almost every
  neighbour because the estimates of neighbours are strongly correlated;
* flag ``provisional`` while ``sigma > provisional_sigma`` Elo points.

``refit_every`` > 1 makes the refit periodic (the board is refreshed every
that many votes) for very busy arenas; the default refits lazily on every
read after new votes, which costs a few milliseconds for 100 models.
``display="conservative"`` reproduces K-Sort's ``mu - 3 sigma`` board and
``display="online"`` orders by the online ``mu``; both exist for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from openskill.models import PlackettLuce
from scipy.stats import norm

from .base import BaseRater, check_level, check_positive
from .bradley_terry import (
    fit_firth,
    fit_map_newton,
    laplace_cov,
    replicate_refits,
    replicate_score_cov,
    sandwich_cov,
    to_display,
)
from .core import (
    ELO_INIT,
    LOGIT_TO_ELO,
    Ranking,
    Standing,
    rank_by_differences,
    rank_by_intervals,
)

__all__ = ["BayesianRater", "weighted_step", "weng_lin_update"]

#: Ridge of the unshrunk (Firth) fit that bias-aware intervals reach to: the Bradley-Terry
#: rater's default, a N(0, 3.2^2) log-strength prior that only keeps an unbeaten model finite.
UNSHRUNK_L2 = 0.1

Display = Literal["map", "conservative", "online"]


def weighted_step(
    mu: NDArray[np.float64],
    sigma: NDArray[np.float64],
    new_mu: NDArray[np.float64],
    new_sigma: NDArray[np.float64],
    weight: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A full vote's update ``(mu, sigma) -> (new_mu, new_sigma)`` taken ``weight`` of the way:
    the mean moves ``weight`` times as far and the variance shrinks ``weight`` times as much
    (a weight above 1 may not shrink it past a tenth of its old value)."""
    var, new_var = sigma**2, new_sigma**2
    out_var = np.maximum(var - weight * (var - new_var), 0.01 * var)
    return mu + weight * (new_mu - mu), np.sqrt(out_var)


def weng_lin_update(
    mu: NDArray[np.float64],
    sigma: NDArray[np.float64],
    ranks: Sequence[int],
    *,
    partial: bool = False,
    beta: float = 25.0 / 6.0,
    kappa: float = 1e-4,
    tau: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weng & Lin (2011, Algorithm 4) Plackett-Luce update of one vote.

    ``mu``/``sigma`` are the shown players' beliefs, ``ranks[i]`` the index of
    player i's group (0 = best).  Equal ranks are ties, handled exactly as in
    openskill 6.2 (each stage's terms are divided by the number of players
    tied at that stage; openskill's later "average the tied players' mu
    change" step is a no-op there, because it reads the already-updated
    ratings, so we leave it out too).  With ``partial`` the players of the
    last group are unordered: the stages that would "choose" one of them are
    not observed and are skipped.  Returns new ``(mu, sigma)``.
    """
    r = np.asarray(ranks)
    sig2 = sigma**2 + tau**2
    c = math.sqrt(float(np.sum(sig2 + beta**2)))
    e = np.exp((mu - mu.max()) / c)  # shift: the ratios below are invariant
    last = int(r.max())
    # sum_q: total strength of the players still "in the race" at stage q.
    sum_q = np.array([e[r >= r[q]].sum() for q in range(len(r))])
    a = np.array([(r == r[q]).sum() for q in range(len(r))])
    observed = (r != last) if partial else np.ones(len(r), dtype=bool)
    new_mu = mu.copy()
    new_sigma = np.sqrt(sig2)
    for i in range(len(r)):
        omega = 0.0
        delta = 0.0
        for q in range(len(r)):
            if r[q] > r[i] or not observed[q]:
                continue
            p = e[i] / sum_q[q]
            delta += p * (1.0 - p) / a[q]
            omega += ((1.0 - p) if q == i else -p) / a[q]
        omega *= sig2[i] / c
        delta *= sig2[i] / c**2
        delta *= math.sqrt(sig2[i]) / c  # openskill's default gamma
        new_mu[i] = mu[i] + omega
        new_sigma[i] = math.sqrt(sig2[i]) * math.sqrt(max(1.0 - delta, kappa))
    return new_mu, new_sigma


class BayesianRater(BaseRater):
    """Gaussian skill per model, updated online, displayed by a MAP refit.

    See the module docstring for the display rule.  ``mu``, ``sigma`` and
    ``beta`` are in openskill units (defaults are openskill's / TrueSkill's:
    ``mu=25``, ``sigma=25/3``, ``beta=25/6``); everything shown is converted
    to the Elo-like scale, one logit = 400/ln 10 points, where 25 maps to 1000
    and the prior sd ``25/3`` to about 245 points (the narrowest prior the
    refit uses; ``empirical_prior=False`` fixes it).  ``tau`` (skill drift per
    vote) defaults to 0 because a model checkpoint does not change.
    ``replicates`` = R > 0 keeps R vote-level bootstrap replicates of the counts
    and reports the sandwich (vote-level) covariance instead of the Laplace one:
    the pairs of one K-wise vote are not independent evidence (the leaderboards
    use R = 100; see :func:`ranking.bradley_terry.sandwich_cov`).
    ``lapse`` > 0 makes the refit robust to absurd votes (see
    :func:`ranking.bradley_terry.bt_objective`); off by default, it costs
    about 3x the refit time.
    """

    method = "bayesian"

    def __init__(
        self,
        players: Sequence[str] = (),
        *,
        mu: float = 25.0,
        sigma: float = 25.0 / 3.0,
        beta: float = 25.0 / 6.0,
        tau: float = 0.0,
        kappa: float = 1e-4,
        display: Display = "map",
        level: float = 0.95,
        provisional_sigma: float = 50.0,
        refit_every: int = 1,
        lapse: float = 0.0,
        empirical_prior: bool = True,
        replicates: int = 0,
    ) -> None:
        if not (isinstance(mu, int | float) and math.isfinite(mu)):
            raise ValueError(f"mu: must be a finite number, got {mu!r}")
        self.mu0 = float(mu)
        self.sigma0 = check_positive("sigma", sigma)
        self.beta = check_positive("beta", beta)
        self.tau = check_positive("tau", tau, allow_zero=True)
        self.kappa = check_positive("kappa", kappa)
        if display not in ("map", "conservative", "online"):
            raise ValueError(f"display: must be 'map', 'conservative' or 'online', got {display!r}")
        self.display: Display = display
        self.level = check_level(level)
        if not isinstance(refit_every, int) or isinstance(refit_every, bool) or refit_every < 1:
            raise ValueError(f"refit_every: must be an int >= 1, got {refit_every!r}")
        self.refit_every = refit_every
        ok = isinstance(lapse, int | float) and not isinstance(lapse, bool)
        if not (ok and 0.0 <= lapse < 0.5):
            raise ValueError(f"lapse: must be in [0, 0.5), got {lapse!r}")
        self.lapse = float(lapse)
        if not isinstance(empirical_prior, bool):
            raise ValueError(f"empirical_prior: must be a bool, got {empirical_prior!r}")
        self.empirical_prior = empirical_prior
        self._model = PlackettLuce(mu=self.mu0, sigma=self.sigma0, beta=self.beta, tau=self.tau)
        # Elo points per openskill mu unit: PL's two-player win probability is
        # sigmoid((mu_a - mu_b) / (sqrt(2) beta)) once sigmas are small.
        self._unit = LOGIT_TO_ELO / (math.sqrt(2.0) * self.beta)
        # Same prior in log-odds units for the refit: precision 1 / prior_sd^2.
        self._l2 = (math.sqrt(2.0) * self.beta / self.sigma0) ** 2
        self.mu: NDArray[np.float64] = np.zeros(0)
        self.sigma: NDArray[np.float64] = np.zeros(0)
        self._fit: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        self._cov: NDArray[np.float64] = np.zeros((0, 0))
        self._theta: NDArray[np.float64] = np.zeros(0)  # the last refit, log-odds
        self._fit_votes = -1
        #: Prior sd used by the last refit, Elo points (grows under empirical Bayes).
        self.prior_sd = LOGIT_TO_ELO / math.sqrt(self._l2)
        self._board: list[Standing] | None = None
        self._board_votes = -1
        super().__init__(players, provisional_sigma, replicates=replicates)

    # -- online layer ------------------------------------------------------------------
    def _on_add_player(self) -> None:
        self.mu = np.append(self.mu, self.mu0)
        self.sigma = np.append(self.sigma, self.sigma0)
        self._fit = None
        self._board = None

    def _on_record(self, ranking: Ranking, weight: float = 1.0) -> None:
        idx = np.array([self.counts.index(p) for p in ranking.players], dtype=np.intp)
        ranks = [gi for gi, g in enumerate(ranking.groups) for _ in g]
        last_size = len(ranking.groups[-1])
        if ranking.partial and last_size > 1:
            mu, sigma = weng_lin_update(
                self.mu[idx],
                self.sigma[idx],
                ranks,
                partial=True,
                beta=self.beta,
                kappa=self.kappa,
                tau=self.tau,
            )
        else:
            teams = [
                [self._model.rating(mu=float(self.mu[i]), sigma=float(self.sigma[i]))] for i in idx
            ]
            rated = self._model.rate(teams, ranks=[float(x) for x in ranks])
            mu = np.array([t[0].mu for t in rated])
            sigma = np.array([t[0].sigma for t in rated])
        if weight != 1.0:
            mu, sigma = weighted_step(self.mu[idx], self.sigma[idx], mu, sigma, weight)
        self.mu[idx] = mu
        self.sigma[idx] = sigma
        self._fit = None

    def online(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Online ``(mu, sigma)`` on the display scale (Elo-like points)."""
        return ELO_INIT + self._unit * (self.mu - self.mu0), self._unit * self.sigma

    # -- refit layer ---------------------------------------------------------------------
    def posterior(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """MAP refit over all votes: ``(mu, sigma)`` on the display scale."""
        if self._fit is None or self._fit_votes != self.n_votes:
            theta, h, self.prior_sd = self._refit()
            self._cov = LOGIT_TO_ELO**2 * laplace_cov(h)
            if self._vote_level_on():
                self._cov = self._vote_level(theta, h, self._cov)
            sd = np.sqrt(np.clip(np.diag(self._cov), 0.0, None))
            self._theta = theta
            self._fit = (to_display(theta), sd)
            self._fit_votes = self.n_votes
        return self._fit[0].copy(), self._fit[1].copy()

    def _vote_level_on(self) -> bool:
        """Whether the vote-level widths apply: replicates kept (the leaderboards'), no lapse
        model, and votes to resample."""
        return self.counts.replicates >= 2 and self.lapse == 0.0 and self.n_votes > 0

    def _vote_level(
        self, theta: NDArray[np.float64], h: NDArray[np.float64], laplace: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The Laplace covariance widened to the vote-level (sandwich) variance per model.

        The pairs of one K-wise vote share a judgement, so they are not the independent
        evidence the Laplace width assumes. Each model's sd becomes the larger of its sandwich
        sd (from the vote-level replicates) and its Laplace sd: under a random-utility voter
        the pairs a model shares in one ranking are positively correlated, so a sandwich below
        the Laplace width is estimation noise (100 replicates). The correlations stay
        Laplace's (``D C D``), so the covariance stays positive semi-definite.
        """
        alpha = (LOGIT_TO_ELO / self.prior_sd) ** 2
        j = replicate_score_cov(self.counts, theta)
        robust = np.diag(LOGIT_TO_ELO**2 * sandwich_cov(h, j, alpha))
        base = np.diag(laplace)
        scale = np.sqrt(np.maximum(robust, base) / np.where(base > 0, base, 1.0))
        out: NDArray[np.float64] = laplace * scale[:, None] * scale[None, :]
        return out

    def _shown_width(
        self, sd: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The board's small-sample corrections (vote-level replicates only): the shown sd and
        each model's unshrunk score, which its interval reaches to.

        * The shown sd is no narrower than the spread of the MAP refitted on each replicate
          (at the same prior): where votes are few the likelihood is far from quadratic (a
          model that seldom wins a best-of-4 vote) and the linearised sandwich misses that; at
          500 best-of-4 votes on 16 models it lifted the coverage of the 95% interval from 0.927
          to 0.938 (200 seeds, benchmarks/coverage.py's world), at 2,000 votes on 50 models
          from 0.924 to 0.937.
        * The unshrunk score is Firth's bias-reduced fit (see the module docstring).

        Both are for the board only: the covariance that ranks, matchmakes and extrapolates
        "votes to settle" leaves them out (with the floor in it the matchmaker's early battles
        changed and the settle estimate's median actual / predicted fell from 0.61 to 0.27,
        benchmarks/settle.py), and the aggregator's belief refresh does not pay for them.
        """
        alpha = (LOGIT_TO_ELO / self.prior_sd) ** 2
        refits = replicate_refits(self.counts, alpha, self._theta, self.counts.replicates)
        unshrunk = fit_firth(self.counts.effective_wins(), UNSHRUNK_L2, x0=self._theta)
        return np.maximum(sd, refits.std(axis=0, ddof=1)), to_display(unshrunk)

    def _refit(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """MAP fit; with ``empirical_prior`` the prior precision is estimated too.

        Empirical Bayes (type-II maximum likelihood under the Laplace
        approximation) with MacKay's (1992) fixed point: ``gamma = n - alpha *
        trace(S)`` well-determined parameters, ``alpha = gamma / |theta|^2``,
        solved by the secant method on ``log alpha`` to 1%.  alpha never exceeds the
        configured prior precision (``sigma``), which keeps sparse data
        shrunk, but the prior widens when the models are much further apart
        than the default assumes (a strong fixed prior then compresses the
        board and misorders the models with few votes).  Every refit starts
        from the configured prior and zero, so the result is a pure function
        of the counts.
        """
        wins = self.counts.effective_wins()
        x_max = math.log(self._l2)  # iterate on log(alpha)
        theta, h = fit_map_newton(wins, self._l2, self.lapse)
        alpha = self._l2
        self.eb_iterations = 0
        if self.empirical_prior and wins.sum() > 0 and theta.size > 1:

            def step(
                x: float, start: NDArray[np.float64]
            ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
                """MacKay's update g(x) = log(alpha_new) - x, and the fit at alpha = e^x."""
                th, hh = fit_map_newton(wins, math.exp(x), self.lapse, tol=1e-9, x0=start)
                gamma = th.size - math.exp(x) * float(np.trace(np.linalg.inv(hh)))
                new = gamma / max(float(th @ th), 1e-12)
                return math.log(max(new, 1e-12)) - x, th, hh

            # Secant on g (the plain fixed point converges only linearly).
            x0, (g0, theta, h) = x_max, step(x_max, theta)
            if g0 < 0:  # the data want a wider prior than the configured one
                x1 = max(x0 + g0, x0 - 2.0)
                g1, theta, h = step(x1, theta)
                for _ in range(20):
                    self.eb_iterations += 1
                    if abs(g1) < 0.01 or g1 == g0:
                        break
                    x2 = x1 - g1 * (x1 - x0) / (g1 - g0)
                    # Stay in [1/400^2, 1] x the configured precision, steps <= e^2.
                    x2 = min(x_max, max(x_max - 12.0, x1 - 2.0, min(x1 + 2.0, x2)))
                    x0, g0 = x1, g1
                    x1 = x2
                    g1, theta, h = step(x1, theta)
                alpha = math.exp(x1)
                theta, h = fit_map_newton(wins, alpha, self.lapse, x0=theta)
        return theta, h, float(LOGIT_TO_ELO / math.sqrt(alpha))

    def covariance(self) -> NDArray[np.float64]:
        """Laplace posterior covariance of the refit scores (Elo points^2).

        Neighbours on the board are strongly correlated: the sd of their
        *difference* is far smaller than either marginal sd, which is what a
        matchmaker deciding "is this order settled?" needs.
        """
        self.posterior()
        return self._cov.copy()

    def skills(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """What matchmakers see: the refit posterior (always current)."""
        return self.posterior()

    def standings(self) -> list[Standing]:
        # _on_add_player clears the board, so a new player always shows up.
        if self._board is None or self.n_votes - self._board_votes >= self.refit_every:
            self._board = self._compute_board()
            self._board_votes = self.n_votes
        assert self._board is not None
        return list(self._board)

    def _compute_board(self) -> list[Standing]:
        z = float(norm.ppf(0.5 + self.level / 2.0))
        if self.display == "map":
            mu, sd = self.posterior()
            unshrunk = mu
            if self._vote_level_on():
                sd, unshrunk = self._shown_width(sd)
            # Bias-aware: the prior pulls a sparsely voted model towards the middle by up to
            # |mode - unshrunk|, so the interval reaches past its own votes' estimate.
            low = np.minimum(mu, unshrunk) - z * sd
            high = np.maximum(mu, unshrunk) + z * sd
            rank = rank_by_differences(mu, self._cov, z)
            return self._table(mu, low, high, rank, mu, sd)
        mu, sd = self.online()
        low, high = mu - z * sd, mu + z * sd
        if self.display == "online":
            return self._table(mu, low, high, rank_by_intervals(low, high), mu, sd)
        score = mu - 3.0 * sd  # K-Sort's conservative leaderboard score
        rank = (1 + (score[None, :] > score[:, None]).sum(axis=1)).astype(np.int64)
        return self._table(score, low, high, rank, mu, sd)
