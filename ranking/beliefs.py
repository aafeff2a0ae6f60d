"""Frozen beliefs: a read-only :class:`~ranking.core.Rater` over skills fitted elsewhere.

A web process serving a battle needs the matchmaker's view of the models (mean, covariance and
comparison counts) but must not fit anything on the request path. Whoever fits (the
aggregator, after it applies new votes) takes a :class:`Beliefs` of its rater with
:meth:`Beliefs.of`, stores :meth:`Beliefs.to_dict`, and battle requests rebuild it with
:meth:`Beliefs.from_dict` and narrow it to the models they may show with :meth:`Beliefs.subset`.
Any matchmaker works over it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .core import RankingLike, Rater, Standing
from .counts import check_player_id

__all__ = ["Beliefs"]


class Beliefs:
    """Fixed ``(mu, covariance, comparisons)`` per player; :meth:`record` is refused."""

    method = "beliefs"

    def __init__(
        self,
        players: Sequence[str],
        mu: Sequence[float] | NDArray[np.float64],
        cov: Sequence[Sequence[float]] | NDArray[np.float64],
        comparisons: Sequence[Sequence[float]] | NDArray[np.float64] | None = None,
    ) -> None:
        players = list(players)
        for p in players:
            check_player_id(p, "players")
        if len(set(players)) != len(players):
            raise ValueError("players: duplicate player ids")
        n = len(players)
        mu_a = np.asarray(mu, dtype=np.float64)
        cov_a = np.asarray(cov, dtype=np.float64)
        comp = np.zeros((n, n)) if comparisons is None else np.asarray(comparisons, np.float64)
        if mu_a.shape != (n,):
            raise ValueError(f"mu: expected {n} values, got shape {mu_a.shape}")
        for name, matrix in (("cov", cov_a), ("comparisons", comp)):
            if matrix.shape != (n, n):
                raise ValueError(f"{name}: expected a {n}x{n} matrix, got shape {matrix.shape}")
            if not np.all(np.isfinite(matrix)):
                raise ValueError(f"{name}: must be finite")
        if not np.all(np.isfinite(mu_a)):
            raise ValueError("mu: must be finite")
        if n and np.any(np.diag(cov_a) < 0):
            raise ValueError("cov: variances must be >= 0")
        self._players = players
        self._index = {p: i for i, p in enumerate(players)}
        self._mu, self._cov, self._comparisons = mu_a, cov_a, comp

    @classmethod
    def of(cls, rater: Rater) -> Beliefs:
        """What ``rater`` believes now (its skills, covariance and comparison counts)."""
        mu, _ = rater.skills()
        return cls(rater.players, mu, rater.covariance(), rater.comparisons())

    # -- storage ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON and pickle safe); :meth:`from_dict` reads them back."""
        return {
            "players": list(self._players),
            "mu": self._mu.tolist(),
            "cov": self._cov.tolist(),
            "comparisons": self._comparisons.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Beliefs:
        try:
            return cls(data["players"], data["mu"], data["cov"], data.get("comparisons"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"beliefs: malformed data ({exc})") from exc

    def subset(self, players: Sequence[str]) -> Beliefs:
        """The beliefs over ``players`` only, in that order (all must be known)."""
        missing = [p for p in players if p not in self._index]
        if missing:
            raise KeyError(f"players: unknown player {missing[0]!r}")
        idx = np.array([self._index[p] for p in players], dtype=np.intp)
        return Beliefs(
            list(players),
            self._mu[idx],
            self._cov[np.ix_(idx, idx)],
            self._comparisons[np.ix_(idx, idx)],
        )

    def knows(self, players: Sequence[str]) -> bool:
        return all(p in self._index for p in players)

    # -- the Rater protocol -------------------------------------------------------------------
    @property
    def players(self) -> list[str]:
        return list(self._players)

    def record(self, ranking: RankingLike) -> None:
        raise TypeError("Beliefs are read-only: record votes in the rater they were taken from")

    def add_player(self, player: str) -> None:
        raise TypeError("Beliefs are read-only: add players to the rater they were taken from")

    def standings(self) -> list[Standing]:
        raise TypeError("Beliefs hold no leaderboard: ask the rater they were taken from")

    def skills(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        sd = np.sqrt(np.clip(np.diag(self._cov), 0.0, None))
        return self._mu.copy(), sd

    def covariance(self) -> NDArray[np.float64]:
        return self._cov.copy()

    def comparisons(self) -> NDArray[np.float64]:
        return self._comparisons.copy()

    def __repr__(self) -> str:
        return f"Beliefs({len(self._players)} players)"
