"""Votes, standings and the protocols every rater and matchmaker shares.

A vote is a :class:`Ranking`: ordered groups of player ids, best first, the
members of one group tied.  A best-of-K vote ("A is the best of A, B, C, D") is a
*partial* ranking ``Ranking((("A",), ("B", "C", "D")), partial=True)``: A beat
each of B, C and D, but B, C and D were never compared with each other, which
is different from a three-way tie.

Every public entry point also accepts a plain ``Sequence[Sequence[str]]``,
read as a full ranking with ties, e.g. ``[["A"], ["B", "C"]]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ELO_BASE",
    "ELO_INIT",
    "ELO_SCALE",
    "LOGIT_TO_ELO",
    "Matchmaker",
    "Ranking",
    "RankingLike",
    "Rater",
    "Standing",
    "as_ranking",
    "rank_by_differences",
    "rank_by_intervals",
]

#: Elo (1978): a rating difference of ``ELO_SCALE`` points means odds of ``ELO_BASE``:1.
ELO_SCALE = 400.0
ELO_BASE = 10.0
ELO_INIT = 1000.0
#: One unit of Bradley-Terry log-strength (natural log-odds) in Elo points, 400/ln 10.
LOGIT_TO_ELO = ELO_SCALE / math.log(ELO_BASE)


@dataclass(frozen=True, slots=True)
class Ranking:
    """One vote: ordered groups of player ids, best first.

    ``groups[0]`` holds the winner(s).  Members of one group are tied, except
    that when ``partial`` is true the members of the *last* group are unordered
    among themselves (not compared), as in a best-of-K vote.

    The constructor validates and normalises lists to tuples; it raises
    ``ValueError`` naming the argument for an empty ranking, an empty group, a
    non-string or empty id, a player that appears twice, or a ranking of fewer
    than two players (which carries no comparison).
    """

    groups: tuple[tuple[str, ...], ...]
    partial: bool = False

    def __post_init__(self) -> None:
        groups = _normalise_groups(self.groups, "ranking")
        object.__setattr__(self, "groups", groups)
        if not isinstance(self.partial, bool):
            raise ValueError(f"partial: must be a bool, got {self.partial!r}")
        if self.partial and len(groups) < 2:
            raise ValueError("ranking: a partial ranking needs at least two groups")

    @classmethod
    def best_of(cls, winner: str, others: Sequence[str]) -> Ranking:
        """Best-of-K vote: ``winner`` beat each of ``others``; others not compared."""
        if isinstance(others, str):
            raise ValueError("others: must be a sequence of player ids, not a str")
        return cls(((winner,), tuple(others)), partial=True)

    @classmethod
    def tie(cls, players: Sequence[str]) -> Ranking:
        """All ``players`` tied (a pairwise tie or a "both bad" vote)."""
        if isinstance(players, str):
            raise ValueError("players: must be a sequence of player ids, not a str")
        return cls((tuple(players),))

    @property
    def players(self) -> tuple[str, ...]:
        """All players of the vote, best group first."""
        return tuple(p for g in self.groups for p in g)

    def pairs(self) -> Iterator[tuple[str, str, float]]:
        """The pairwise outcomes this vote implies, ``(a, b, score of a)``.

        Score 1.0 means a beat b, 0.5 a tie.  For a partial ranking the pairs
        inside the last group are skipped: they were not compared.  This is the
        standard "full rank-breaking" of a K-wise ranking into pairs.
        """
        last = len(self.groups) - 1
        for gi, group in enumerate(self.groups):
            if not (self.partial and gi == last):
                for i, a in enumerate(group):
                    for b in group[i + 1 :]:
                        yield a, b, 0.5
            for lower in self.groups[gi + 1 :]:
                for a in group:
                    for b in lower:
                        yield a, b, 1.0

    def relabel(self, mapping: dict[str, str]) -> Ranking:
        """The same vote with every id replaced by ``mapping[id]``."""
        return Ranking(tuple(tuple(mapping[p] for p in g) for g in self.groups), self.partial)


#: What every API accepts as a vote.
RankingLike: TypeAlias = Ranking | Sequence[Sequence[str]]


def _normalise_groups(groups: object, arg: str) -> tuple[tuple[str, ...], ...]:
    if isinstance(groups, str) or not isinstance(groups, Sequence):
        raise ValueError(f"{arg}: must be a sequence of groups of player ids, got {groups!r}")
    if len(groups) == 0:
        raise ValueError(f"{arg}: is empty")
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for gi, group in enumerate(groups):
        if isinstance(group, str) or not isinstance(group, Sequence):
            raise ValueError(f"{arg}: group {gi} must be a sequence of player ids, got {group!r}")
        if len(group) == 0:
            raise ValueError(f"{arg}: group {gi} is empty")
        for p in group:
            if not isinstance(p, str) or not p:
                raise ValueError(f"{arg}: player ids must be non-empty str, got {p!r}")
            if p in seen:
                raise ValueError(f"{arg}: player {p!r} appears twice")
            seen.add(p)
        out.append(tuple(group))
    if len(seen) < 2:
        raise ValueError(f"{arg}: needs at least two players")
    return tuple(out)


def as_ranking(ranking: RankingLike, arg: str = "ranking") -> Ranking:
    """Validate ``ranking`` and return it as a :class:`Ranking`.

    A plain sequence of groups is a full ranking with ties.
    """
    if isinstance(ranking, Ranking):
        return ranking
    return Ranking(_normalise_groups(ranking, arg))


@dataclass(frozen=True, slots=True)
class Standing:
    """One leaderboard row.

    ``score``, ``low``, ``high``, ``mu``, ``sigma`` and ``conservative`` are on
    the Elo-like display scale (1000 = average, 400 points = 10:1 odds).
    ``rank`` is 1 + the number of players that are *significantly* better
    (their interval lies entirely above this one), so players whose intervals
    overlap share a rank.  ``votes`` counts the votes the player took part in;
    ``wins``/``losses``/``ties`` count implied pairwise outcomes.
    """

    player: str
    score: float
    rank: int
    low: float
    high: float
    votes: int
    mu: float
    sigma: float
    conservative: float
    provisional: bool
    wins: int
    losses: int
    ties: int
    win_rate: float


def rank_by_intervals(low: NDArray[np.float64], high: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rank = 1 + number of players whose lower bound exceeds this one's upper bound.

    This is the LMSYS Chatbot Arena rule: it never claims an order the
    intervals do not support, so overlapping players share a rank.
    """
    if low.size == 0:
        return np.zeros(0, dtype=np.int64)
    better = low[None, :] > high[:, None]
    rank: NDArray[np.int64] = (1 + better.sum(axis=1)).astype(np.int64)
    return rank


def rank_by_differences(
    mu: NDArray[np.float64], cov: NDArray[np.float64], z: float
) -> NDArray[np.int64]:
    """Rank = 1 + number of players significantly better, judged pair by pair.

    j is significantly better than i when ``mu_j - mu_i > z * sd(mu_j - mu_i)``,
    with the sd of the *difference* from the joint covariance.  Marginal
    intervals overlap far more than differences are uncertain (neighbours'
    estimates are strongly correlated), so this separates models that the
    data do separate while still giving tied ranks where they do not.
    """
    if mu.size == 0:
        return np.zeros(0, dtype=np.int64)
    d = np.diag(cov)
    sd = np.sqrt(np.clip(d[:, None] + d[None, :] - 2.0 * cov, 0.0, None))
    better = (mu[None, :] - mu[:, None]) > z * sd
    np.fill_diagonal(better, False)
    rank: NDArray[np.int64] = (1 + better.sum(axis=1)).astype(np.int64)
    return rank


@runtime_checkable
class Rater(Protocol):
    """What simulations and the web app use; built by :func:`ranking.make_rater`."""

    method: str

    @property
    def players(self) -> list[str]:
        """Players in insertion order."""
        ...

    def record(self, ranking: RankingLike) -> None:
        """Account for one vote."""
        ...

    def add_player(self, player: str) -> None:
        """Add a player with the prior (initial) rating; error if present."""
        ...

    def standings(self) -> list[Standing]:
        """Leaderboard, best first."""
        ...

    def skills(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Current (mean, standard deviation) per player on the display scale.

        Aligned with :attr:`players`; used by matchmakers.
        """
        ...

    def covariance(self) -> NDArray[np.float64]:
        """Covariance of the skill estimates (display scale; diagonal if unknown)."""
        ...

    def comparisons(self) -> NDArray[np.float64]:
        """Symmetric matrix of how many times each pair was compared."""
        ...


class Matchmaker(Protocol):
    """Chooses which players appear in the next battle."""

    strategy: str

    def propose(self, k: int = 2) -> list[str]:
        """``k`` distinct player ids for the next battle."""
        ...

    def record(self, ranking: RankingLike) -> None:
        """Tell the matchmaker a battle finished (releases its reservation)."""
        ...

    def add_player(self, player: str) -> None:
        """Add a new player (also to the rater if it is missing there)."""
        ...

    def exclude(self, players: Sequence[str]) -> None:
        """Never propose these players (until :meth:`include`)."""
        ...

    def include(self, players: Sequence[str]) -> None:
        """Undo :meth:`exclude`."""
        ...

    def boost(self, player: str, weight: float) -> None:
        """Multiply the player's chance to be shown by ``weight`` (> 0)."""
        ...

    def reserve(self, players: Sequence[str]) -> None:
        """Mark a proposed battle as pending (shown, vote not in yet)."""
        ...

    def release(self, players: Sequence[str]) -> None:
        """Drop a pending battle that will never be voted on."""
        ...

    def reseeded(self, seed: int | None) -> Matchmaker:
        """A copy (same rater, boosts, exclusions, reservations) with its own random stream."""
        ...
