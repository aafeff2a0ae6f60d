"""The consensus maths: the crowd's model and each vote's probabilities under it.

:class:`Consensus` holds Bradley-Terry log-strengths (Plackett-Luce first-choice
probabilities for K-way battles); :class:`_Prep` is one vote with the consensus
probability of each slot being chosen best and the vote's e-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..base import check_positive
from ..bradley_terry import fit_bradley_terry
from ..counts import PairCounts
from .checks import _check_finite, _check_str
from .evidence import VoteEvidence, _check_votes
from .stats import _P_FLOOR


@dataclass(frozen=True)
class Consensus:
    """The crowd's model: Bradley-Terry log-strengths on the natural-log scale.

    ``P(i beats j) = sigmoid(s_i - s_j)`` (Bradley & Terry 1952) and the chance
    that ``i`` is chosen best of a set is ``exp(s_i) / sum_j exp(s_j)``
    (Plackett-Luce first choice; Luce 1959).  Unknown model ids get score 0,
    the mean of a fitted leaderboard (the L2 prior centres it).
    """

    scores: Mapping[str, float]

    def __post_init__(self) -> None:
        if not isinstance(self.scores, Mapping):
            raise ValueError(f"scores: must be a mapping of model id to score, got {self.scores!r}")
        clean: dict[str, float] = {}
        for k, v in self.scores.items():
            _check_str("scores", k)
            clean[k] = _check_finite(f"scores[{k!r}]", v)
        object.__setattr__(self, "scores", clean)

    def score(self, model: str) -> float:
        """Log-strength of ``model`` (0 when unknown)."""
        return self.scores.get(model, 0.0)

    def p_beats(self, a: str, b: str) -> float:
        """``P(a beats b) = sigmoid(s_a - s_b)``."""
        d = self.score(a) - self.score(b)
        if d >= 0:
            return 1.0 / (1.0 + math.exp(-d))
        z = math.exp(d)
        return z / (1.0 + z)

    def p_best(self, winner: str, others: Sequence[str]) -> float:
        """Plackett-Luce chance that ``winner`` is chosen best of ``winner`` + ``others``."""
        if isinstance(others, str) or not isinstance(others, Sequence):
            raise ValueError(f"others: must be a sequence of model ids, got {others!r}")
        if winner in others:
            raise ValueError(f"others: must not contain the winner {winner!r}")
        return self.probs([winner, *others])[0] if others else 1.0

    def probs(self, models: Sequence[str]) -> tuple[float, ...]:
        """Plackett-Luce first-choice probability of each of ``models`` (sums to 1)."""
        return tuple(_softmax_scores([self.score(m) for m in models]))

    @classmethod
    def from_votes(
        cls,
        votes: Sequence[VoteEvidence],
        *,
        l2: float = 0.1,
        weights: Mapping[str, float] | None = None,
    ) -> Consensus:
        """Bradley-Terry fit (``fit_bradley_terry``) of the votes' pairwise decomposition.

        Each vote is broken into the pairs it implies (:meth:`Ranking.pairs`: a
        best-of-K vote into winner-vs-each, ties as half a win each way).
        ``l2`` is the fit's Gaussian prior precision (0.1, as the leaderboard).
        ``weights``: per vote id a weight (``ReplayResult.weights``; votes not in it: 1).
        """
        check_positive("l2", l2)
        players = sorted({p for v in _check_votes(votes) for p in v.slots})
        counts = PairCounts(players)
        weights = weights or {}
        for v in votes:
            counts.add(v.ranking, weights.get(v.vote_id, 1.0))
        theta = fit_bradley_terry(counts, l2)
        return cls({p: float(t) for p, t in zip(players, theta, strict=True)})


def _softmax_scores(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    ex = [math.exp(s - top) for s in scores]
    total = sum(ex)
    return [e / total for e in ex]


def _check_consensus(consensus: object) -> Consensus:
    if not isinstance(consensus, Consensus):
        raise ValueError(f"consensus: must be a Consensus, got {type(consensus).__name__}")
    return consensus


# -- per-vote preparation --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prep:
    """A vote with the consensus probabilities of each slot being chosen best."""

    vote: VoteEvidence
    winner: int  # slot index of the single top choice; -1 when the top is tied
    probs: tuple[float, ...]

    @property
    def decided(self) -> bool:
        return self.winner >= 0

    @property
    def p_chosen(self) -> float:
        return max(self.probs[self.winner], _P_FLOOR)

    @property
    def e(self) -> float:
        """The vote's e-value ``1 / (N p_chosen)``; E = 1 when choices follow the consensus."""
        return 1.0 / (len(self.probs) * self.p_chosen)

    def e_noisy(self, lapse: float) -> float:
        """The e-value against the crowd with ``lapse`` random choices: ``1 / (N q)``.

        ``q = (1 - lapse) p_chosen + lapse / N``.  Its mean is at most 1 for any voter who
        follows the consensus except for up to ``lapse`` random choices (the mean is linear
        in the voter's lapse rate, 1 at ``lapse`` and at most 1 at none, by concavity of
        ``p / ((1 - lapse) p + lapse / N)``), so honest noise never makes it grow.
        """
        n = len(self.probs)
        return 1.0 / (n * ((1.0 - lapse) * self.p_chosen + lapse / n))


def _prepare(vote: VoteEvidence, consensus: Consensus) -> _Prep:
    w = vote.winner
    return _Prep(vote, -1 if w is None else vote.slots.index(w), consensus.probs(vote.slots))
