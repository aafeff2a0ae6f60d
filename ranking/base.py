"""Bookkeeping shared by all raters: players, pair counts, standings rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .core import Ranking, RankingLike, Standing, as_ranking
from .counts import PairCounts

__all__ = ["BaseRater", "check_positive"]


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``float(value)`` if it is a finite number > 0 (or >= 0), else ``ValueError``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = value >= 0 if allow_zero else value > 0  # type: ignore[operator]
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be a finite number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_level(level: object) -> float:
    """A confidence level strictly between 0 and 1."""
    if (
        not isinstance(level, int | float)
        or isinstance(level, bool)
        or not 0.0 < float(level) < 1.0
    ):
        raise ValueError(f"level: must be strictly between 0 and 1, got {level!r}")
    return float(level)


class BaseRater:
    """Players, :class:`PairCounts` and the Standing table; subclasses add the model."""

    method: str = "base"

    def __init__(
        self, players: Sequence[str], provisional_sigma: float, *, replicates: int = 0
    ) -> None:
        self.provisional_sigma = check_positive("provisional_sigma", provisional_sigma)
        self.counts = PairCounts(replicates=replicates)
        self.n_votes = 0
        if isinstance(players, str):
            raise ValueError("players: must be a sequence of player ids, not a str")
        self.counts.add_players(players)
        for _ in players:
            self._on_add_player()

    @property
    def players(self) -> list[str]:
        return self.counts.players

    def add_player(self, player: str) -> None:
        self.counts.add_player(player)
        self._on_add_player()

    def record(self, ranking: RankingLike, weight: float = 1.0, key: int | None = None) -> None:
        """Record one vote; ``weight`` (0 < weight, 1 = a full vote) scales its evidence: the
        counts it adds and, in the online raters, the size of its update. ``key`` (the vote's
        id; default: its position in the record order) draws its bootstrap weights."""
        r = as_ranking(ranking)
        for p in r.players:  # validate everything before changing anything
            self.counts.index(p, "ranking")
        if not (isinstance(weight, int | float) and np.isfinite(weight) and weight > 0):
            raise ValueError(f"weight: must be a finite number > 0, got {weight!r}")
        if key is not None and (not isinstance(key, int) or isinstance(key, bool)):
            raise ValueError(f"key: must be an int vote id, got {key!r}")
        self._on_record(r, float(weight))
        self.counts.add(r, weight, self.n_votes if key is None else key)
        self.n_votes += 1

    def comparisons(self) -> NDArray[np.float64]:
        return self.counts.comparisons()

    # -- hooks -----------------------------------------------------------------------
    def _on_add_player(self) -> None:
        """Grow model state for the player just appended to ``self.counts``."""

    def _on_record(self, ranking: Ranking, weight: float = 1.0) -> None:
        """Update model state with a validated vote of ``weight`` (counts not yet updated)."""

    # -- standings ---------------------------------------------------------------------
    def _table(
        self,
        score: NDArray[np.float64],
        low: NDArray[np.float64],
        high: NDArray[np.float64],
        rank: NDArray[np.int64],
        mu: NDArray[np.float64],
        sigma: NDArray[np.float64],
        order: NDArray[np.intp] | None = None,
    ) -> list[Standing]:
        """Standing rows, best first.

        Sorted by ``-score`` (stable, so exact ties keep insertion order, which
        makes the output a pure function of the votes) unless ``order`` is given.
        """
        wins, losses, ties = self.counts.totals()
        if order is None:
            order = np.argsort(-score, kind="stable")
        players = self.counts.players
        rows = []
        for i in order:
            n = wins[i] + losses[i] + ties[i]
            rows.append(
                Standing(
                    player=players[i],
                    score=float(score[i]),
                    rank=int(rank[i]),
                    low=float(low[i]),
                    high=float(high[i]),
                    votes=int(self.counts.votes[i]),
                    mu=float(mu[i]),
                    sigma=float(sigma[i]),
                    conservative=float(mu[i] - 3.0 * sigma[i]),
                    provisional=bool(sigma[i] > self.provisional_sigma),
                    wins=int(wins[i]),
                    losses=int(losses[i]),
                    ties=int(ties[i]),
                    win_rate=float((wins[i] + 0.5 * ties[i]) / n) if n else 0.0,
                )
            )
        return rows
