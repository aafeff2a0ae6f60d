"""Online Elo ratings (Elo 1978), as on early Chatbot Arena leaderboards.

Expected score of a against b: ``E = 1 / (1 + base ** ((R_b - R_a) / scale))``.
After a vote every implied pair (a, b, S) moves ``R_a += K (S - E)`` and
``R_b -= K (S - E)``; a K-wise ranking is decomposed into all the pairs it
implies (a best-of-K vote only into winner-vs-each-loser, see
:meth:`ranking.Ranking.pairs`).  All pairs of one vote are scored against the
ratings *before* the vote and applied together, so the result does not depend
on the order the pairs are listed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .base import BaseRater, check_positive
from .core import ELO_BASE, ELO_INIT, ELO_SCALE, Ranking, Standing

__all__ = ["EloRater"]


class EloRater(BaseRater):
    """Online Elo.

    Elo has no uncertainty of its own.  ``standings`` therefore report
    ``low == high == score`` and rank by score alone (1 + number of players
    with a strictly higher rating).  ``sigma`` is a Glicko-style standard
    error, ``scale/ln(base) / sqrt(Fisher information)`` of the comparisons the
    player has had at the current ratings (prior sd ``prior_sigma``); it is only
    used for the ``provisional`` flag and by matchmakers.
    """

    method = "elo"

    def __init__(
        self,
        players: Sequence[str] = (),
        *,
        k_factor: float = 16.0,
        scale: float = ELO_SCALE,
        base: float = ELO_BASE,
        init: float = ELO_INIT,
        prior_sigma: float = 350.0,
        provisional_sigma: float = 50.0,
    ) -> None:
        # K=16 is between chess's 10-32; small K gives smoother but slower ratings.
        self.k_factor = check_positive("k_factor", k_factor)
        self.scale = check_positive("scale", scale)
        self.base = check_positive("base", base)
        if self.base <= 1.0:
            raise ValueError(f"base: must be > 1, got {base!r}")
        if not (isinstance(init, int | float) and math.isfinite(init)):
            raise ValueError(f"init: must be a finite number, got {init!r}")
        self.init = float(init)
        self.prior_sigma = check_positive("prior_sigma", prior_sigma)
        self.ratings: NDArray[np.float64] = np.zeros(0)
        super().__init__(players, provisional_sigma)

    def _on_add_player(self) -> None:
        self.ratings = np.append(self.ratings, self.init)

    def _on_record(self, ranking: Ranking, weight: float = 1.0) -> None:
        idx = self.counts.index
        delta = np.zeros_like(self.ratings)
        for a, b, s in ranking.pairs():
            i, j = idx(a), idx(b)
            expected = 1.0 / (1.0 + self.base ** ((self.ratings[j] - self.ratings[i]) / self.scale))
            step = weight * self.k_factor * (s - expected)
            delta[i] += step
            delta[j] -= step
        self.ratings = self.ratings + delta

    def skills(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        unit = self.scale / math.log(self.base)
        d = (self.ratings[:, None] - self.ratings[None, :]) / unit
        p = 1.0 / (1.0 + np.exp(-d))
        info = (self.counts.comparisons() * p * (1.0 - p)).sum(axis=1)
        sigma = unit / np.sqrt(info + (unit / self.prior_sigma) ** 2)
        return self.ratings.copy(), sigma

    def covariance(self) -> NDArray[np.float64]:
        """Diagonal: Elo keeps no correlations."""
        cov: NDArray[np.float64] = np.diag(self.skills()[1] ** 2)
        return cov

    def standings(self) -> list[Standing]:
        score, sigma = self.skills()
        rank = (1 + (score[None, :] > score[:, None]).sum(axis=1)).astype(np.int64)
        return self._table(score, score, score, rank, score, sigma)
