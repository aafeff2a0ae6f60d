"""Which models to show in the next battle.

Three strategies, all *stateless randomised proposals* over the rater's
current beliefs, so concurrent requests naturally get different battles and
nothing has to be locked:

``random``
    k distinct models, uniformly (times the admin boost).
``ucb``
    K-Sort Arena's exploration-exploitation matchmaking (Li et al. 2024,
    arXiv:2408.14468, Sec. 3.4) as we read it: the *pivot* is the least
    compared model; its k-1 opponents maximise an upper confidence bound
    ``quality_ij + c * sqrt(ln(N + 1) / (n_ij + 1))``, where ``quality_ij`` is
    TrueSkill's match quality (the draw probability, i.e. skill closeness) and
    ``n_ij`` the pair's comparison count.  K-Sort breaks ties by index and,
    under its pivot lock, masks columns and then returns model 0; we break
    every tie at random instead.
``default`` (ours, "overlap sampling")
    Spend votes where the displayed order is still in doubt.  For every pair
    ``A_ij = Phi(-|mu_i - mu_j| / sd(mu_i - mu_j))`` is the posterior
    probability that the current order of i and j is wrong (0.5 for unknown
    models, ~0 for pairs that are clearly apart).  The sd is that of the
    *difference*, from the rater's posterior covariance: neighbours on the
    board are strongly correlated, and using the marginal sds (as K-Sort's
    ``mu +- sigma`` does) makes settled neighbours look uncertain.  The pivot
    is drawn with probability proportional to ``(sum_j A_ij)^2`` and the
    opponents one at a time proportional to ``(sum of A with the models
    already chosen)^2``; ``explore`` (2%) of every draw is uniform.  Early on
    every A is 0.5, so this is random exploration; later it shows near
    neighbours whose order is uncertain, which is what an exact order needs.
    A newly added model (prior sigma) overlaps with everyone, so it is drawn
    into most battles until it is placed.  (Tried and measured worse: K
    consecutive models of the current order; a one-step expected reduction of
    the adjacent-pair variances; a sharper exponent 3.)

All strategies honour ``exclude`` (never shown), ``boost`` (probability /
priority multiplier) and ``reserve``/``release``: a pending battle (shown, vote
not in yet) divides a model's weight by ``1 + pending`` (for ``ucb`` it counts
as an extra comparison), so bursts of simultaneous requests spread out.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Self

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from .beliefs import Beliefs
from .core import Matchmaker, RankingLike, Rater, as_ranking
from .counts import check_player_id

__all__ = [
    "TRUESKILL_BETA_ELO",
    "OverlapMatchmaker",
    "RandomMatchmaker",
    "UCBMatchmaker",
    "sampling_rates",
]

#: TrueSkill's performance noise beta expressed in Elo points (~196): the
#: Thurstone curve Phi(d / (sqrt(2) beta)) and the Elo curve have equal slope at
#: d = 0 when beta = (400 / ln 10) * 2 / sqrt(pi) Elo points, whatever beta's
#: value in TrueSkill's own units (25/6 by default).
TRUESKILL_BETA_ELO = (400.0 / math.log(10.0)) * 2.0 / math.sqrt(math.pi)


class _Base:
    strategy = "base"

    def __init__(self, rater: Rater, seed: int | None = None) -> None:
        if not isinstance(rater, Rater):
            raise ValueError(f"rater: must be a ranking Rater, got {type(rater).__name__}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed: must be an int or None, got {seed!r}")
        self.rater = rater
        self.rng = np.random.default_rng(seed)
        self._excluded: set[str] = set()
        self._boost: dict[str, float] = {}
        self._pending: dict[str, int] = {}

    # -- admin -----------------------------------------------------------------------
    def _known(self, player: str, arg: str) -> str:
        check_player_id(player, arg)
        if player not in self.rater.players:
            raise ValueError(f"{arg}: unknown player {player!r}")
        return player

    def _many(self, players: Sequence[str], arg: str) -> list[str]:
        if isinstance(players, str):
            raise ValueError(f"{arg}: must be a sequence of player ids, not a str")
        return [self._known(p, arg) for p in players]

    def add_player(self, player: str) -> None:
        """Add a new model; also to the rater unless it is already there."""
        check_player_id(player)
        if player not in self.rater.players:
            self.rater.add_player(player)

    def exclude(self, players: Sequence[str]) -> None:
        self._excluded.update(self._many(players, "players"))

    def include(self, players: Sequence[str]) -> None:
        self._excluded.difference_update(self._many(players, "players"))

    def boost(self, player: str, weight: float) -> None:
        """Weight multiplier (default 1); e.g. 3 shows a new model ~3x as often."""
        self._known(player, "player")
        ok = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not (ok and math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight: must be a finite number > 0, got {weight!r}")
        self._boost[player] = float(weight)

    def reserve(self, players: Sequence[str]) -> None:
        for p in self._many(players, "players"):
            self._pending[p] = self._pending.get(p, 0) + 1

    def release(self, players: Sequence[str]) -> None:
        for p in self._many(players, "players"):
            left = self._pending.get(p, 0) - 1
            if left > 0:
                self._pending[p] = left
            else:
                self._pending.pop(p, None)

    def record(self, ranking: RankingLike) -> None:
        """A battle finished: release its reservation (the rater records the vote)."""
        r = as_ranking(ranking)
        self.release([p for p in r.players if p in self._pending])

    def reseeded(self, seed: int | None) -> Self:
        """A copy of this matchmaker (same rater, boosts, exclusions and reservations) that
        draws from a random stream of its own: what a web process makes per battle from one
        it keeps, instead of building a matchmaker each time."""
        twin = copy.copy(self)
        twin.rng = np.random.default_rng(seed)
        twin._excluded, twin._boost = set(self._excluded), dict(self._boost)
        twin._pending = dict(self._pending)
        return twin

    # -- proposal ----------------------------------------------------------------------
    def _pool(self, k: object) -> tuple[list[str], NDArray[np.intp], NDArray[np.float64]]:
        if not isinstance(k, int) or isinstance(k, bool) or k < 2:
            raise ValueError(f"k: must be an int >= 2, got {k!r}")
        players = self.rater.players
        idx = np.array([i for i, p in enumerate(players) if p not in self._excluded], dtype=np.intp)
        if k > idx.size:
            raise ValueError(f"k: {k} is larger than the pool of {idx.size} available models")
        boost = np.array([self._boost.get(players[i], 1.0) for i in idx])
        return players, idx, boost

    def _pending_of(self, players: list[str], idx: NDArray[np.intp]) -> NDArray[np.float64]:
        return np.array([float(self._pending.get(players[i], 0)) for i in idx])

    def propose(self, k: int = 2) -> list[str]:
        """``k`` distinct models for the next battle, in random display order."""
        players, idx, boost = self._pool(k)
        chosen = self._choose(k, players, idx, boost)
        self.rng.shuffle(chosen)  # left/right position must not reveal anything
        return [players[int(i)] for i in chosen]

    def _choose(
        self, k: int, players: list[str], idx: NDArray[np.intp], boost: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        raise NotImplementedError

    def _draw(self, weights: NDArray[np.float64]) -> int:
        """Index drawn with probability proportional to ``weights`` (uniform if all 0)."""
        total = float(weights.sum())
        if not math.isfinite(total) or total <= 0:
            return int(self.rng.integers(weights.size))
        return int(self.rng.choice(weights.size, p=weights / total))


class RandomMatchmaker(_Base):
    """Uniformly random distinct models (weighted by boost / pending)."""

    strategy = "random"

    def _choose(
        self, k: int, players: list[str], idx: NDArray[np.intp], boost: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        w = boost / (1.0 + self._pending_of(players, idx))
        pick = self.rng.choice(idx.size, size=k, replace=False, p=w / w.sum())
        return idx[pick]


class UCBMatchmaker(_Base):
    """K-Sort Arena's pivot + UCB matchmaking, with random tie-breaking."""

    strategy = "ucb"

    def __init__(
        self,
        rater: Rater,
        seed: int | None = None,
        *,
        c: float = 1.0,
        beta: float = TRUESKILL_BETA_ELO,
    ) -> None:
        super().__init__(rater, seed)
        for name, v in (("c", c), ("beta", beta)):
            ok = isinstance(v, int | float) and not isinstance(v, bool)
            if not (ok and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a finite number > 0, got {v!r}")
        self.c = float(c)
        self.beta = float(beta)

    def _choose(
        self, k: int, players: list[str], idx: NDArray[np.intp], boost: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        mu, sd = self.rater.skills()
        comps = self.rater.comparisons()
        pending = self._pending_of(players, idx)
        n_i = (comps[np.ix_(idx, idx)].sum(axis=1) + pending) / boost
        jitter = self.rng.random(idx.size)  # random tie-breaking, never "model 0"
        pivot = int(np.lexsort((jitter, n_i))[0])
        m, s = mu[idx], sd[idx]
        var = 2.0 * self.beta**2 + s[pivot] ** 2 + s**2
        quality = np.sqrt(2.0 * self.beta**2 / var) * np.exp(-((m - m[pivot]) ** 2) / (2.0 * var))
        n_pair = comps[idx[pivot], idx] + pending
        total = comps.sum() / 2.0
        ucb = quality + self.c * np.sqrt(math.log(total + 1.0) / (n_pair + 1.0))
        ucb = ucb * boost
        ucb[pivot] = -np.inf
        order = np.lexsort((self.rng.random(idx.size), -ucb))
        return np.concatenate([[idx[pivot]], idx[order[: k - 1]]]).astype(np.intp)


class OverlapMatchmaker(_Base):
    """Ours: sample models whose posterior order is still ambiguous (see module doc).

    ``explore`` mixes a uniform share into every draw so no model starves
    (for instance if the rater's intervals are overconfident).
    """

    strategy = "default"

    def __init__(
        self,
        rater: Rater,
        seed: int | None = None,
        *,
        explore: float = 0.02,
        sharpness: float = 2.0,
    ) -> None:
        super().__init__(rater, seed)
        ok = isinstance(explore, int | float) and not isinstance(explore, bool)
        if not (ok and 0.0 <= explore < 1.0):
            raise ValueError(f"explore: must be in [0, 1), got {explore!r}")
        self.explore = float(explore)
        ok = isinstance(sharpness, int | float) and not isinstance(sharpness, bool)
        if not (ok and math.isfinite(sharpness) and sharpness > 0):
            raise ValueError(f"sharpness: must be a finite number > 0, got {sharpness!r}")
        self.sharpness = float(sharpness)
        self._frozen: dict[str, NDArray[np.float64]] = {}  # derived from frozen beliefs

    def ambiguity(self) -> NDArray[np.float64]:
        """``A_ij``: posterior probability that the shown order of i and j is wrong (computed
        once over frozen beliefs, which never change, and then read-only)."""
        frozen = self._frozen.get("ambiguity")
        if frozen is not None:
            return frozen
        a = self._ambiguity()
        if isinstance(self.rater, Beliefs):
            a.setflags(write=False)
            self._frozen["ambiguity"] = a  # (shared with the copies: ``reseeded``)
        return a

    def _ambiguity(self) -> NDArray[np.float64]:
        mu, _ = self.rater.skills()
        cov = self.rater.covariance()
        d = np.diag(cov)
        # Variance of the *difference*: neighbours are strongly correlated.
        var = np.clip(d[:, None] + d[None, :] - 2.0 * cov, 0.0, None)
        gap = np.abs(mu[:, None] - mu[None, :])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(var > 0, gap / np.sqrt(var), np.where(gap > 0, np.inf, 0.0))
        a: NDArray[np.float64] = ndtr(-z)
        np.fill_diagonal(a, 0.0)
        return a

    def _choose(
        self, k: int, players: list[str], idx: NDArray[np.intp], boost: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        a = self.ambiguity()[np.ix_(idx, idx)]
        w = boost / (1.0 + self._pending_of(players, idx))
        n = idx.size
        mix = self.explore / n

        def weights(score: NDArray[np.float64], taken: list[int]) -> NDArray[np.float64]:
            score = score**self.sharpness
            p = score / score.sum() if score.sum() > 0 else np.full(n, 1.0 / n)
            out = w * ((1.0 - self.explore) * p + mix)
            out[taken] = 0.0
            return out

        chosen = [self._draw(weights(a.sum(axis=1), []))]
        while len(chosen) < k:
            chosen.append(self._draw(weights(a[chosen].sum(axis=0), chosen)))
        return idx[np.array(chosen, dtype=np.intp)]


def sampling_rates(
    matchmaker: Matchmaker, players: Sequence[str], k: int, draws: int = 4000
) -> dict[str, float]:
    """How likely each of ``players`` is to be among the ``k`` a battle shows: the share of
    ``draws`` proposals of ``matchmaker`` that include it (Monte Carlo; the rates sum to ``k``).

    What the critiques of public arenas ask to see: which models the arena shows more, and
    how much more. Proposals do not reserve anything, so drawing them changes no state but the
    matchmaker's random stream; its standard error is at most ``0.5 / sqrt(draws)``.
    """
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ValueError(f"draws: must be an int >= 1, got {draws!r}")
    shown: dict[str, int] = {}
    for _ in range(draws):
        for player in matchmaker.propose(k):
            shown[player] = shown.get(player, 0) + 1
    return {player: shown.get(player, 0) / draws for player in players}
