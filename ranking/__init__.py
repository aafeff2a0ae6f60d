"""Leaderboards from human-preference votes: a pure, typed library (no Django).

Votes are rankings (see :class:`Ranking`); raters turn them into standings and
matchmakers choose the next battle.  The stable API shared by the web app and
the simulations::

    rater = make_rater("bayesian", ["a", "b", "c", "d"])
    mm = make_matchmaker("default", rater, seed=1)
    shown = mm.propose(4)                       # e.g. ["c", "a", "d", "b"]
    rater.record([["a"], ["c", "d"], ["b"]])     # full ranking, c and d tied
    rater.record(Ranking.best_of("a", ["b", "c", "d"]))   # best-of-K vote
    for row in rater.standings():               # best first
        print(row.rank, row.player, round(row.score), row.low, row.high)

Methods: ``"elo"`` (Elo 1978, online), ``"bradley_terry"`` (Zermelo 1929 /
Bradley & Terry 1952, batch ML with bootstrap intervals) and ``"bayesian"``
(Thurstone / TrueSkill-style Gaussian skills with the Weng-Lin Plackett-Luce
update, displayed by a MAP refit over all votes).  Strategies: ``"random"``,
``"ucb"`` (K-Sort Arena's) and ``"default"`` (overlap sampling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .bayesian import BayesianRater, weighted_step, weng_lin_update
from .beliefs import Beliefs
from .bradley_terry import (
    BradleyTerryRater,
    bootstrap_bradley_terry,
    fit_bradley_terry,
)
from .core import (
    ELO_INIT,
    LOGIT_TO_ELO,
    Matchmaker,
    Ranking,
    RankingLike,
    Rater,
    Standing,
    as_ranking,
    rank_by_differences,
    rank_by_intervals,
)
from .counts import PairCounts, vote_weights
from .elo import EloRater
from .matchmaking import OverlapMatchmaker, RandomMatchmaker, UCBMatchmaker, sampling_rates
from .settle import SettleEstimate, votes_to_settle

__all__ = [
    "ELO_INIT",
    "LOGIT_TO_ELO",
    "METHODS",
    "STRATEGIES",
    "BayesianRater",
    "Beliefs",
    "BradleyTerryRater",
    "EloRater",
    "Matchmaker",
    "OverlapMatchmaker",
    "PairCounts",
    "RandomMatchmaker",
    "Ranking",
    "RankingLike",
    "Rater",
    "SettleEstimate",
    "Standing",
    "UCBMatchmaker",
    "as_ranking",
    "bootstrap_bradley_terry",
    "fit_bradley_terry",
    "make_matchmaker",
    "make_rater",
    "rank_by_differences",
    "rank_by_intervals",
    "sampling_rates",
    "vote_weights",
    "votes_to_settle",
    "weighted_step",
    "weng_lin_update",
]

METHODS: dict[str, type[EloRater] | type[BradleyTerryRater] | type[BayesianRater]] = {
    "elo": EloRater,
    "bradley_terry": BradleyTerryRater,
    "bayesian": BayesianRater,
}

STRATEGIES: dict[str, type[RandomMatchmaker] | type[UCBMatchmaker] | type[OverlapMatchmaker]] = {
    "random": RandomMatchmaker,
    "ucb": UCBMatchmaker,
    "default": OverlapMatchmaker,
}


def make_rater(method: str, players: Sequence[str] = (), **params: Any) -> Rater:
    """A rater for ``method`` ("elo", "bradley_terry" or "bayesian").

    ``params`` go to the rater's constructor (see :class:`EloRater`,
    :class:`BradleyTerryRater`, :class:`BayesianRater` for names and defaults);
    unknown names or bad values raise ``ValueError`` naming the argument.
    """
    try:
        cls = METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"method: unknown method {method!r}; use one of {sorted(METHODS)}"
        ) from None
    try:
        return cls(players, **params)
    except TypeError as exc:  # unexpected keyword
        raise ValueError(f"params: {exc}") from None


def make_matchmaker(
    strategy: str, rater: Rater, seed: int | None = None, **params: Any
) -> Matchmaker:
    """A matchmaker ("random", "ucb" or "default") drawing on ``rater``'s beliefs."""
    try:
        cls = STRATEGIES[strategy]
    except (KeyError, TypeError):
        raise ValueError(
            f"strategy: unknown strategy {strategy!r}; use one of {sorted(STRATEGIES)}"
        ) from None
    try:
        return cls(rater, seed, **params)
    except TypeError as exc:
        raise ValueError(f"params: {exc}") from None
