"""Aggregated pairwise counts: the sufficient statistics of every batch model here.

Bradley-Terry and the Bayesian refit only need, for every ordered pair (i, j),
how often i beat j and how often they tied.  The web app stores exactly this
per arena (a few KB for 100 models) and rebuilds leaderboards from it, so the
fits never touch per-vote rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .core import RankingLike, as_ranking

__all__ = ["PairCounts", "check_player_id"]


def check_player_id(player: object, arg: str = "player") -> str:
    """Return ``player`` if it is a non-empty str, else raise ``ValueError``."""
    if not isinstance(player, str) or not player:
        raise ValueError(f"{arg}: player ids must be non-empty str, got {player!r}")
    return player


class PairCounts:
    """Win and tie counts between players, growable and mergeable.

    ``wins[i, j]`` is how often ``players[i]`` beat ``players[j]``; ``ties`` is
    symmetric.  ``votes[i]`` counts the votes (rankings) player i appeared in.
    A K-wise ranking is broken into all the pairs it implies (see
    :meth:`ranking.Ranking.pairs`); a best-of-K vote only into winner-vs-each.
    """

    def __init__(self, players: Sequence[str] = ()) -> None:
        if isinstance(players, str):
            raise ValueError("players: must be a sequence of player ids, not a str")
        self._players: list[str] = []
        self._index: dict[str, int] = {}
        self.wins: NDArray[np.float64] = np.zeros((0, 0))
        self.ties: NDArray[np.float64] = np.zeros((0, 0))
        self.votes: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        for p in players:
            self.add_player(p)

    # -- players -----------------------------------------------------------------
    @property
    def players(self) -> list[str]:
        """Players in insertion order (a copy)."""
        return list(self._players)

    def __len__(self) -> int:
        return len(self._players)

    def __contains__(self, player: object) -> bool:
        return player in self._index

    def index(self, player: str, arg: str = "player") -> int:
        """Position of ``player``; ``ValueError`` if unknown."""
        try:
            return self._index[player]
        except (KeyError, TypeError):
            raise ValueError(f"{arg}: unknown player {player!r}") from None

    def add_player(self, player: str) -> None:
        """Append a player with no comparisons; ``ValueError`` if already present."""
        check_player_id(player)
        if player in self._index:
            raise ValueError(f"player: {player!r} is already present")
        self._index[player] = len(self._players)
        self._players.append(player)
        self.wins = np.pad(self.wins, ((0, 1), (0, 1)))
        self.ties = np.pad(self.ties, ((0, 1), (0, 1)))
        self.votes = np.append(self.votes, np.int64(0))

    # -- votes -------------------------------------------------------------------
    def add(self, ranking: RankingLike, weight: float = 1.0) -> None:
        """Add one vote's pairwise outcomes, each counted ``weight`` times.

        All players must be known; nothing is changed if one is not.
        """
        r = as_ranking(ranking)
        if not (isinstance(weight, int | float) and np.isfinite(weight) and weight > 0):
            raise ValueError(f"weight: must be a finite number > 0, got {weight!r}")
        idx = {p: self.index(p, "ranking") for p in r.players}
        for a, b, s in r.pairs():
            i, j = idx[a], idx[b]
            if s == 1.0:
                self.wins[i, j] += weight
            else:
                self.ties[i, j] += weight
                self.ties[j, i] += weight
        for i in idx.values():
            self.votes[i] += 1

    @classmethod
    def from_rankings(cls, players: Sequence[str], rankings: Iterable[RankingLike]) -> PairCounts:
        """Counts of ``rankings`` over ``players``."""
        out = cls(players)
        for r in rankings:
            out.add(r)
        return out

    # -- derived -----------------------------------------------------------------
    def effective_wins(self) -> NDArray[np.float64]:
        """Wins with each tie counted as half a win each way (Rao-Kupper-free BT)."""
        return self.wins + 0.5 * self.ties

    def comparisons(self) -> NDArray[np.float64]:
        """Symmetric matrix of how often each pair was compared (ties included)."""
        return self.wins + self.wins.T + self.ties

    def totals(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Per player (wins, losses, ties) over pairwise outcomes, rounded to int."""
        w = np.rint(self.wins.sum(axis=1)).astype(np.int64)
        lo = np.rint(self.wins.sum(axis=0)).astype(np.int64)
        t = np.rint(self.ties.sum(axis=1)).astype(np.int64)
        return w, lo, t

    # -- combining and persistence ----------------------------------------------
    def copy(self) -> PairCounts:
        out = PairCounts(self._players)
        out.wins = self.wins.copy()
        out.ties = self.ties.copy()
        out.votes = self.votes.copy()
        return out

    def merge(self, other: PairCounts) -> PairCounts:
        """New counts summing ``self`` and ``other`` over the union of players.

        Players keep ``self``'s order; ``other``'s new players are appended.
        """
        if not isinstance(other, PairCounts):
            raise ValueError(f"other: must be a PairCounts, got {type(other).__name__}")
        out = self.copy()
        for p in other._players:
            if p not in out._index:
                out.add_player(p)
        m = np.array([out._index[p] for p in other._players], dtype=np.intp)
        out.wins[np.ix_(m, m)] += other.wins
        out.ties[np.ix_(m, m)] += other.ties
        out.votes[m] += other.votes
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for the database)."""
        return {
            "players": list(self._players),
            "wins": self.wins.tolist(),
            "ties": self.ties.tolist(),
            "votes": self.votes.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairCounts:
        """Inverse of :meth:`to_dict`, validating shapes."""
        try:
            players = list(data["players"])
            wins = np.asarray(data["wins"], dtype=np.float64)
            ties = np.asarray(data["ties"], dtype=np.float64)
            votes = np.asarray(data["votes"], dtype=np.int64)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"data: not a PairCounts dict ({exc})") from None
        out = cls(players)
        n = len(players)
        if wins.shape != (n, n) or ties.shape != (n, n) or votes.shape != (n,):
            raise ValueError("data: wins/ties/votes shapes do not match players")
        if (wins < 0).any() or (ties < 0).any() or (votes < 0).any():
            raise ValueError("data: counts must be >= 0")
        if not np.allclose(ties, ties.T):
            raise ValueError("data: ties must be symmetric")
        out.wins, out.ties, out.votes = wins, ties, votes
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairCounts):
            return NotImplemented
        return (
            self._players == other._players
            and np.array_equal(self.wins, other.wins)
            and np.array_equal(self.ties, other.ties)
            and np.array_equal(self.votes, other.votes)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"PairCounts({len(self._players)} players, {int(self.votes.sum())} appearances)"
