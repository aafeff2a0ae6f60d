"""Aggregated pairwise counts: the sufficient statistics of every batch model here.

Bradley-Terry and the Bayesian refit only need, for every ordered pair (i, j),
how often i beat j and how often they tied.  The web app stores exactly this
per arena (a few KB for 100 models) and rebuilds leaderboards from it, so the
fits never touch per-vote rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix

from .core import RankingLike, as_ranking

__all__ = ["PairCounts", "check_player_id", "vote_weights"]

# Poisson(1) cumulative probabilities, k = 0..17 (the tail beyond is below 2**-53).
_POISSON1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(18)])
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser (Steele et al. 2014): a bijective, well-mixed hash of uint64."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


def vote_weights(keys: Sequence[int] | NDArray[np.int64], rounds: int) -> NDArray[np.float64]:
    """Poisson(1) bootstrap weights of votes, shape ``(len(keys), rounds)``.

    A pure function of (vote key, round): the same vote gets the same weights in the live
    tallies, in a rebuild and in a replay of an export, whatever order the votes come in. This
    is the online ("Poisson") bootstrap of Oza (2005) / Hanley & MacGibbon (2006): resampling
    *votes*, so the pairs one K-wise vote implies stay together, as they were judged together.
    """
    k = np.asarray(keys, dtype=np.int64).astype(np.uint64)[:, None]
    r = np.arange(rounds, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        h = _splitmix64(_splitmix64(k) + r)
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float64)


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

    With ``replicates`` = R > 0 it also keeps R bootstrap replicates of ``wins`` and ``ties``
    (``rep_wins``, ``rep_ties``, shape (R, n, n)): each vote added with weight w counts
    ``w * vote_weights([key], R)`` times in them. They are the vote-level bootstrap the
    intervals need, kept up to date like the counts themselves (memory R x 2n^2, flat in the
    number of votes).
    """

    def __init__(self, players: Sequence[str] = (), *, replicates: int = 0) -> None:
        if isinstance(players, str):
            raise ValueError("players: must be a sequence of player ids, not a str")
        if not isinstance(replicates, int) or isinstance(replicates, bool) or replicates < 0:
            raise ValueError(f"replicates: must be an int >= 0, got {replicates!r}")
        self.replicates = replicates
        self._players: list[str] = []
        self._index: dict[str, int] = {}
        self.wins: NDArray[np.float64] = np.zeros((0, 0))
        self.ties: NDArray[np.float64] = np.zeros((0, 0))
        self.votes: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.rep_wins: NDArray[np.float64] = np.zeros((replicates, 0, 0))
        self.rep_ties: NDArray[np.float64] = np.zeros((replicates, 0, 0))
        self.add_players(players)

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
        self.add_players([player])

    def add_players(self, players: Sequence[str]) -> None:
        """Append players with no comparisons, growing the arrays once; ``ValueError`` (and
        nothing added) if one is already present or repeated."""
        if isinstance(players, str):
            raise ValueError("players: must be a sequence of player ids, not a str")
        players = list(players)
        seen: set[str] = set()
        for player in players:
            check_player_id(player)
            if player in self._index or player in seen:
                raise ValueError(f"player: {player!r} is already present")
            seen.add(player)
        if not players:
            return
        for player in players:
            self._index[player] = len(self._players)
            self._players.append(player)
        grow = len(players)
        self.wins = np.pad(self.wins, ((0, grow), (0, grow)))
        self.ties = np.pad(self.ties, ((0, grow), (0, grow)))
        self.votes = np.append(self.votes, np.zeros(grow, dtype=np.int64))
        self.rep_wins = np.pad(self.rep_wins, ((0, 0), (0, grow), (0, grow)))
        self.rep_ties = np.pad(self.rep_ties, ((0, 0), (0, grow), (0, grow)))

    # -- votes -------------------------------------------------------------------
    def add(self, ranking: RankingLike, weight: float = 1.0, key: int | None = None) -> None:
        """Add one vote's pairwise outcomes, each counted ``weight`` times.

        ``key`` (the vote's id) draws its bootstrap weights; required with replicates.
        All players must be known; nothing is changed if one is not.
        """
        r = as_ranking(ranking)
        if not (isinstance(weight, int | float) and np.isfinite(weight) and weight > 0):
            raise ValueError(f"weight: must be a finite number > 0, got {weight!r}")
        rep = None
        if self.replicates:
            if not isinstance(key, int):
                raise ValueError(f"key: counts with replicates need an int vote key, got {key!r}")
            rep = weight * vote_weights([key], self.replicates)[0]
        idx = {p: self.index(p, "ranking") for p in r.players}
        for a, b, s in r.pairs():
            i, j = idx[a], idx[b]
            if s == 1.0:
                self.wins[i, j] += weight
                if rep is not None:
                    self.rep_wins[:, i, j] += rep
            else:
                self.ties[i, j] += weight
                self.ties[j, i] += weight
                if rep is not None:
                    self.rep_ties[:, i, j] += rep
                    self.rep_ties[:, j, i] += rep
        for i in idx.values():
            self.votes[i] += 1

    def add_many(
        self,
        rankings: Sequence[RankingLike],
        weights: Sequence[float] | NDArray[np.float64] | None = None,
        keys: Sequence[int] | None = None,
    ) -> None:
        """:meth:`add` for many votes at once (vectorised; the same sums, up to float order).

        All are checked before any is added.
        """
        rs = [as_ranking(r) for r in rankings]
        w = np.ones(len(rs)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(rs),) or not (np.isfinite(w).all() and (w > 0).all()):
            raise ValueError("weights: one finite weight > 0 per ranking")
        if self.replicates and (keys is None or len(keys) != len(rs)):
            raise ValueError("keys: counts with replicates need one int vote key per ranking")
        rows, cols, tie, vote = [], [], [], []
        seen: list[int] = []
        for v, r in enumerate(rs):
            idx = {p: self.index(p, "ranking") for p in r.players}
            seen.extend(idx.values())
            for a, b, score in r.pairs():
                rows.append(idx[a])
                cols.append(idx[b])
                tie.append(score != 1.0)
                vote.append(v)
        n = len(self)
        i, j = np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)
        t, vv = np.array(tie, dtype=bool), np.array(vote, dtype=np.intp)
        np.add.at(self.wins, (i[~t], j[~t]), w[vv[~t]])
        np.add.at(self.ties, (i[t], j[t]), w[vv[t]])
        np.add.at(self.ties, (j[t], i[t]), w[vv[t]])
        np.add.at(self.votes, np.array(seen, dtype=np.intp), 1)
        if self.replicates and len(rs):
            assert keys is not None
            rep = w[:, None] * vote_weights(keys, self.replicates)  # (votes, R)
            for target, (src, dst, sel) in (
                (self.rep_wins, (i, j, ~t)),
                (self.rep_ties, (i, j, t)),
                (self.rep_ties, (j, i, t)),
            ):
                cell = src[sel] * n + dst[sel]  # flat index of each pair outcome
                incidence = coo_matrix(
                    (np.ones(cell.size), (cell, vv[sel])), shape=(n * n, len(rs))
                ).tocsr()
                flat = np.asarray(incidence @ rep)  # (n*n, R): summed over the votes
                target += flat.T.reshape(self.replicates, n, n)

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
        out = PairCounts(self._players, replicates=self.replicates)
        out.wins = self.wins.copy()
        out.ties = self.ties.copy()
        out.votes = self.votes.copy()
        out.rep_wins = self.rep_wins.copy()
        out.rep_ties = self.rep_ties.copy()
        return out

    def subset(self, players: Sequence[str]) -> PairCounts:
        """The counts (and replicates) among ``players`` only, in that order."""
        at = np.array([self.index(p) for p in players], dtype=np.intp)
        out = PairCounts(players, replicates=self.replicates)
        out.wins, out.ties = self.wins[np.ix_(at, at)], self.ties[np.ix_(at, at)]
        out.votes = self.votes[at]
        out.rep_wins = self.rep_wins[:, at][:, :, at]
        out.rep_ties = self.rep_ties[:, at][:, :, at]
        return out

    def merge(self, other: PairCounts) -> PairCounts:
        """New counts summing ``self`` and ``other`` over the union of players.

        Players keep ``self``'s order; ``other``'s new players are appended.
        """
        if not isinstance(other, PairCounts):
            raise ValueError(f"other: must be a PairCounts, got {type(other).__name__}")
        if other.replicates != self.replicates:
            raise ValueError(
                f"other: has {other.replicates} replicates, these counts {self.replicates}"
            )
        out = self.copy()
        for p in other._players:
            if p not in out._index:
                out.add_player(p)
        m = np.array([out._index[p] for p in other._players], dtype=np.intp)
        out.wins[np.ix_(m, m)] += other.wins
        out.ties[np.ix_(m, m)] += other.ties
        out.votes[m] += other.votes
        for r in range(self.replicates):
            out.rep_wins[r][np.ix_(m, m)] += other.rep_wins[r]
            out.rep_ties[r][np.ix_(m, m)] += other.rep_ties[r]
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
            and np.array_equal(self.rep_wins, other.rep_wins)
            and np.array_equal(self.rep_ties, other.rep_ties)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"PairCounts({len(self._players)} players, {int(self.votes.sum())} appearances)"
