"""Per-voter fraud detection on the vote log: six explainable detectors and a verdict.

The web app's periodic scan turns its vote rows into :class:`VoteEvidence`, the
current Bradley-Terry leaderboard into a :class:`Consensus`, and calls
:func:`scan`; each :class:`VoterReport` carries a verdict ("ok", "suspicious",
"excluded"), the detectors behind it and, per detector, one human sentence with
the numbers plus the JSON evidence behind it, so a moderator can check every
decision.  Excluded voters' votes leave the leaderboard; the next scan runs
against the cleaner consensus.

Detectors (each gives a level "ok", "suspicious" or "strong"):

``crowd_disagreement``
    A sequential test of the voter's choices against the consensus, after the
    Chatbot Arena anomalous-user test (Chiang et al. 2024, "Chatbot Arena: An
    Open Platform for Evaluating LLMs by Human Preference", ICML): every decided
    vote gives the e-value ``e = 1 / (N p)``, ``p`` the consensus probability of
    the chosen outcome (Plackett-Luce first choice, Luce 1959) and ``N`` the
    number of outcomes.  ``E[e] = 1`` when the voter chooses like the crowd, so
    the running product of ``1 - bet + bet * e`` is a test martingale and, by
    Ville's inequality (Ville 1939), exceeds ``1/alpha`` with probability at
    most ``alpha`` ever (Vovk & Wang 2021; Ramdas et al. 2023 on e-processes).
    ``e`` is also the likelihood ratio of a uniformly random clicker against
    the consensus, so ``bet = 1`` is the growth-optimal bet against it (Kelly
    1956); ``bet < 1`` caps what one honest upset can cost.
``position_bias``
    Which slot the single winner sat in, against the consensus-expected count
    (positions are shuffled, so an unbiased voter's slot choices follow the
    consensus): exact Poisson-binomial tail, Bonferroni over positions, gated on
    the excess share so a mild honest bias is never excluded.
``speed``
    Votes cast faster than the outputs can be looked at (``time_to_vote_ms <
    min_view_ms``), binomial test against an honest fast rate.
``rate``
    Most votes in a sliding window and per day against the arena's normal
    traffic (:class:`TrafficBaseline`), a physically impossible pace (more
    votes than their viewing time fits in), and busy network prefixes (votes and
    new identities per hour).
``model_targeting``
    Per model: wins against the consensus-expected wins, one-sided exact
    Poisson-binomial tails for promotion and for demotion, Bonferroni over the
    tests, gated on the effect size (the personal taste shift, in logits, that would
    explain the wins) and on appearances.
``coordination``
    Voters sharing a network prefix (and prefix + user agent) whose votes fall
    in one session (gaps under ``group_gap_s``): the pooled votes get the
    targeting and disagreement tests, and a group signal must survive leaving
    out its strongest member (one bot next to two students is not a group).

Verdict: "excluded" if any detector is strong, or if suspicious detectors come
from at least ``combine_families`` different :data:`FAMILIES`; "suspicious" if
any is suspicious; else "ok".  Choice statistics need ``min_votes`` decided votes
before they may flag anyone, so a voter with two votes is never excluded on
choice statistics alone (a sybil group, pooled, can be).

Pure functions of their arguments: the same votes, consensus and config give
the same reports.  Results and the tuning of the defaults:
benchmarks/fraud_notes.md (``python -m ranking.fraud_sim``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom, norm

from .bradley_terry import fit_bradley_terry
from .core import Ranking
from .counts import PairCounts

__all__ = [
    "DEFAULT_CONFIG",
    "DETECTORS",
    "FAMILIES",
    "Consensus",
    "DetectorResult",
    "FraudConfig",
    "Level",
    "TrafficBaseline",
    "Verdict",
    "VoteEvidence",
    "VoterReport",
    "choice_series",
    "decide",
    "poisson_binomial_sf",
    "scan",
    "taste_shift",
]

Level = Literal["ok", "suspicious", "strong"]
Verdict = Literal["ok", "suspicious", "excluded"]

DETECTORS: tuple[str, ...] = (
    "crowd_disagreement",
    "position_bias",
    "speed",
    "rate",
    "model_targeting",
    "coordination",
)

#: Detectors whose suspicions are (nearly) independent for an honest voter belong to different
#: families; two suspicions from one family (a strong taste shows in both disagreement and
#: targeting) are one piece of evidence, not two.
FAMILIES: Mapping[str, str] = {
    "crowd_disagreement": "choice",
    "model_targeting": "choice",
    "position_bias": "position",
    "speed": "pace",
    "rate": "pace",
    "coordination": "group",
}

_RANK: dict[str, int] = {"ok": 0, "suspicious": 1, "strong": 2}
#: Smallest probability used in e-values and reported p-values (keeps logs finite).
_P_FLOOR = 1e-300
#: Poisson-binomial tails are exact (dynamic programming) up to this many trials, then a
#: continuity-corrected normal approximation (the DP is O(n^2)).
_EXACT_MAX = 4000


# -- argument checks -------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_finite(name: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    v = _check_finite(name, value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be a finite number {bound}, got {value!r}")
    return v


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: must be an int >= {low}, got {value!r}")
    return value


def _check_open_unit(name: str, value: object, *, allow_one: bool = False) -> float:
    v = _check_finite(name, value)
    if not (0.0 < v < 1.0 or (allow_one and v == 1.0)):
        bound = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name}: must be in {bound}, got {value!r}")
    return v


def _check_str(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        what = "a str" if allow_empty else "a non-empty str"
        raise ValueError(f"{name}: must be {what}, got {value!r}")
    return value


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteEvidence:
    """One vote with what the detectors need to know about it.

    ``slots`` are the model ids in the order shown (``slots[0]`` is slot "A");
    ``ranking`` must rank exactly those models.  ``time_s`` is when the vote was
    cast (seconds on any monotone clock shared by all votes), ``time_to_vote_ms``
    how long after the battle was served, ``min_view_ms`` how long a person needs
    to look at these outputs (longer for video or 3D).  ``prefix`` and
    ``user_agent`` are hashes ("" = unknown); ``first_seen_s`` is when the voter
    identity was created (None = unknown).  Bad values raise ``ValueError``
    naming the field.
    """

    vote_id: str
    voter: str
    time_s: float
    slots: tuple[str, ...]
    ranking: Ranking
    time_to_vote_ms: int
    min_view_ms: int = 1500
    prefix: str = ""
    user_agent: str = ""
    first_seen_s: float | None = None

    def __post_init__(self) -> None:
        _check_str("vote_id", self.vote_id)
        _check_str("voter", self.voter)
        object.__setattr__(self, "time_s", _check_finite("time_s", self.time_s))
        slots = self.slots
        if isinstance(slots, str) or not isinstance(slots, Sequence):
            raise ValueError(f"slots: must be a sequence of model ids, got {slots!r}")
        slots = tuple(slots)
        if len(slots) < 2 or len(set(slots)) != len(slots):
            raise ValueError(f"slots: needs at least two distinct model ids, got {slots!r}")
        for s in slots:
            _check_str("slots", s)
        object.__setattr__(self, "slots", slots)
        if not isinstance(self.ranking, Ranking):
            raise ValueError(f"ranking: must be a ranking.Ranking, got {self.ranking!r}")
        if set(self.ranking.players) != set(slots):
            raise ValueError(
                f"ranking: must rank exactly the shown models {slots!r}, "
                f"got {self.ranking.players!r}"
            )
        _check_int("time_to_vote_ms", self.time_to_vote_ms, 0)
        _check_int("min_view_ms", self.min_view_ms, 1)
        _check_str("prefix", self.prefix, allow_empty=True)
        _check_str("user_agent", self.user_agent, allow_empty=True)
        if self.first_seen_s is not None:
            object.__setattr__(
                self, "first_seen_s", _check_finite("first_seen_s", self.first_seen_s)
            )

    @property
    def winner(self) -> str | None:
        """The single top choice, or None when the top group is tied (tie, both bad)."""
        top = self.ranking.groups[0]
        return top[0] if len(top) == 1 else None


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
    def from_votes(cls, votes: Sequence[VoteEvidence], *, l2: float = 0.1) -> Consensus:
        """Bradley-Terry fit (``fit_bradley_terry``) of the votes' pairwise decomposition.

        Each vote is broken into the pairs it implies (:meth:`Ranking.pairs`: a
        best-of-K vote into winner-vs-each, ties as half a win each way).
        ``l2`` is the fit's Gaussian prior precision (0.1, as the leaderboard).
        """
        _check_positive("l2", l2)
        players = sorted({p for v in _check_votes(votes) for p in v.slots})
        counts = PairCounts(players)
        for v in votes:
            counts.add(v.ranking)
        theta = fit_bradley_terry(counts, l2)
        return cls({p: float(t) for p, t in zip(players, theta, strict=True)})


def _softmax_scores(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    ex = [math.exp(s - top) for s in scores]
    total = sum(ex)
    return [e / total for e in ex]


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FraudConfig:
    """Every threshold of :func:`scan`, with its unit and the reason for its default.

    Defaults were tuned on the simulated arena of ``python -m ranking.fraud_sim``
    (benchmarks/fraud_notes.md) to exclude >= 95% of bot votes while wrongly
    excluding well under 1% of honest voters.  Bad values raise ``ValueError``
    naming the field.
    """

    #: Detectors to run; the others report "ok" with ``evidence["enabled"] = False``.
    detectors: tuple[str, ...] = DETECTORS

    # -- shared ------------------------------------------------------------------------------
    #: Bonferroni-adjusted p-value at which a binomial-type test is "suspicious".  An arena
    #: scans thousands of voters: 1e-3 keeps chance suspicions to ~1 per 1000 honest voters.
    suspicious_p: float = 1e-3
    #: Adjusted p-value for "strong" (exclusion on one test); effect-size gates come on top.
    strong_p: float = 1e-6
    #: Suspicious detectors from this many different FAMILIES exclude the voter.
    combine_families: int = 2
    #: Decided votes (or appearances of one model) before any choice statistic may flag a voter:
    #: two or three votes are anecdotes, whatever their p-value.
    min_votes: int = 5

    # -- crowd_disagreement ------------------------------------------------------------------
    #: Betting fraction lambda: each vote multiplies the e-process by 1 - lambda + lambda * e.
    #: 1 is growth-optimal against a random clicker but lets one honest upset (e ~ 10) weigh
    #: ten-fold; 0.75 keeps ~90% of that growth (0.5: ~75%) and caps an upset at 7.75.
    bet: float = 0.75
    #: e-process level for "suspicious": 1/alpha = 20, the Chatbot Arena threshold.
    disagreement_suspicious_e: float = 20.0
    #: e-process level for "strong": alpha = 1e-3 per voter by Ville's inequality.
    disagreement_strong_e: float = 300.0
    #: Decided votes before the disagreement test may exclude.
    disagreement_min_votes: int = 20

    # -- position_bias -----------------------------------------------------------------------
    #: Decided votes before the position test may exclude.
    position_min_votes: int = 10
    #: Share of wins in the favoured slot above its expected share, for "suspicious".
    position_suspicious_excess: float = 0.15
    #: Excess share for "strong"; pairwise: 0.5 + 0.3 = 80% in one slot.  Honest people show
    #: 55-60% slot A; over hundreds of votes that is "significant" but never this large.
    position_strong_excess: float = 0.3

    # -- speed -------------------------------------------------------------------------------
    #: Share of an honest voter's votes faster than ``min_view_ms`` (skims, double clicks,
    #: "both bad" at a glance); the binomial test's null.
    honest_fast_rate: float = 0.05
    #: Fast votes needed for "suspicious" (with p <= suspicious_p).
    speed_suspicious_min_fast: int = 3
    #: Fast votes needed for "strong" ...
    speed_strong_min_fast: int = 5
    #: ... when they are at least this share of the voter's votes.
    speed_strong_share: float = 0.5

    # -- rate --------------------------------------------------------------------------------
    #: Sliding window for the per-voter burst count, seconds.
    rate_window_s: float = 600.0
    #: Sliding window for the per-voter daily count, seconds.
    rate_day_s: float = 86_400.0
    #: Sliding window for per-prefix votes and new identities, seconds.
    prefix_window_s: float = 3600.0
    #: Quantile of the arena's per-voter / per-prefix maxima taken as "normal" traffic.
    baseline_quantile: float = 0.99
    #: A count is unusual above ``rate_multiplier`` x the baseline quantile (never below the
    #: floors): by construction 1% of honest voters sit above the 99th percentile itself.
    rate_multiplier: float = 2.0
    #: Floor of the per-voter window limit, votes per ``rate_window_s`` (one per 10 s).
    voter_window_floor: int = 60
    #: Floor of the per-voter daily limit, votes per ``rate_day_s``.
    voter_day_floor: int = 1000
    #: Floor of the per-prefix limit, votes per ``prefix_window_s`` (a busy campus NAT).
    prefix_votes_floor: int = 400
    #: Floor of the per-prefix limit on identities created per ``prefix_window_s``.
    prefix_new_floor: int = 10
    #: Consecutive votes that must be too fast to view for the pace to be "impossible"
    #: (strong): a person cannot look at N battles in less than N-1 viewing times.
    impossible_min_votes: int = 10

    # -- model_targeting ---------------------------------------------------------------------
    #: Appearances of the targeted model before the targeting test may exclude.
    targeting_min_appearances: int = 8
    #: Effect size for "suspicious": the personal taste shift (logits, see ``taste_shift``) that
    #: would explain the wins, ``P(chosen) = sigmoid(logit p + shift)``.  It reads the same for
    #: pairwise and best-of-K votes, unlike a difference of win rates.  1 logit ~ 174 Elo.
    targeting_suspicious_shift: float = 1.0
    #: Shift for "strong".  A strong genuine taste (70% where the crowd predicts 45%) is a shift
    #: of 1.05: it may look suspicious, never excluded.  Pairwise, 1.75 is a win-rate excess of
    #: ~0.4 at p = 0.45.  A promoter or demoter who always / never picks the model has an
    #: infinite shift.
    targeting_strong_shift: float = 1.75
    #: Adjusted p-value for a strong targeting verdict: the shift gate carries the weight (in
    #: the simulation 0 of 9000 honest voters pass both at 1e-3, 2 at 3e-3, 6 at 1e-2).
    targeting_strong_p: float = 1e-3

    # -- coordination ------------------------------------------------------------------------
    #: A group's time-sorted votes split into sessions where the gap exceeds this, seconds.
    group_gap_s: float = 1800.0
    #: Distinct voters in a session before it is tested as a group.
    group_min_voters: int = 3

    def __post_init__(self) -> None:
        det = self.detectors
        if isinstance(det, str) or not isinstance(det, Sequence):
            raise ValueError(f"detectors: must be a sequence of detector names, got {det!r}")
        for d in det:
            if d not in DETECTORS:
                raise ValueError(f"detectors: unknown detector {d!r}; use some of {DETECTORS}")
        object.__setattr__(self, "detectors", tuple(det))
        for name in ("suspicious_p", "strong_p", "targeting_strong_p", "baseline_quantile"):
            _check_open_unit(name, getattr(self, name))
        if self.strong_p > self.suspicious_p:
            raise ValueError(
                f"strong_p: must be <= suspicious_p ({self.suspicious_p}), got {self.strong_p}"
            )
        _check_int("combine_families", self.combine_families, 1)
        _check_int("min_votes", self.min_votes, 1)
        _check_open_unit("bet", self.bet, allow_one=True)
        if _check_finite("disagreement_suspicious_e", self.disagreement_suspicious_e) <= 1:
            raise ValueError(
                f"disagreement_suspicious_e: must be > 1, got {self.disagreement_suspicious_e!r}"
            )
        if _check_finite("disagreement_strong_e", self.disagreement_strong_e) < (
            self.disagreement_suspicious_e
        ):
            raise ValueError(
                "disagreement_strong_e: must be >= disagreement_suspicious_e, "
                f"got {self.disagreement_strong_e!r}"
            )
        for name in (
            "disagreement_min_votes",
            "position_min_votes",
            "speed_suspicious_min_fast",
            "speed_strong_min_fast",
            "voter_window_floor",
            "voter_day_floor",
            "prefix_votes_floor",
            "prefix_new_floor",
            "targeting_min_appearances",
        ):
            _check_int(name, getattr(self, name), 1)
        _check_int("impossible_min_votes", self.impossible_min_votes, 2)
        _check_int("group_min_voters", self.group_min_voters, 2)
        for name in (
            "position_suspicious_excess",
            "position_strong_excess",
            "honest_fast_rate",
            "speed_strong_share",
        ):
            _check_open_unit(name, getattr(self, name), allow_one=True)
        for name in ("targeting_suspicious_shift", "targeting_strong_shift"):
            _check_positive(name, getattr(self, name))
        for name in ("rate_window_s", "rate_day_s", "prefix_window_s", "group_gap_s"):
            _check_positive(name, getattr(self, name))
        if _check_finite("rate_multiplier", self.rate_multiplier) < 1:
            raise ValueError(f"rate_multiplier: must be >= 1, got {self.rate_multiplier!r}")


DEFAULT_CONFIG = FraudConfig()


@dataclass(frozen=True)
class TrafficBaseline:
    """The arena's normal traffic, against which rate and bursts are judged.

    Each field is the ``quantile`` (FraudConfig.baseline_quantile) over voters or
    prefixes of their busiest window: votes per voter in ``rate_window_s`` and
    in ``rate_day_s``; votes per network prefix in ``prefix_window_s`` and
    identities created (``first_seen_s``) per prefix in ``prefix_window_s``.
    A limit is ``max(floor, rate_multiplier * quantile)``.  All zero (the
    default) means "floors only".
    """

    voter_window_votes: float = 0.0
    voter_day_votes: float = 0.0
    prefix_window_votes: float = 0.0
    prefix_window_new: float = 0.0
    n_voters: int = 0
    n_prefixes: int = 0

    def __post_init__(self) -> None:
        for name in (
            "voter_window_votes",
            "voter_day_votes",
            "prefix_window_votes",
            "prefix_window_new",
        ):
            object.__setattr__(
                self, name, _check_positive(name, getattr(self, name), allow_zero=True)
            )
        _check_int("n_voters", self.n_voters, 0)
        _check_int("n_prefixes", self.n_prefixes, 0)

    @classmethod
    def from_votes(
        cls, votes: Sequence[VoteEvidence], *, config: FraudConfig = DEFAULT_CONFIG
    ) -> TrafficBaseline:
        """The baseline of ``votes`` (which may include the bots: a high quantile is robust)."""
        _check_config(config)
        votes = _check_votes(votes)
        by_voter = _group_times(votes, lambda v: v.voter)
        by_prefix = _group_times([v for v in votes if v.prefix], lambda v: v.prefix)
        new_by_prefix = _new_identities(votes)
        q = config.baseline_quantile

        def quant(values: list[int]) -> float:
            return float(np.quantile(np.asarray(values, dtype=np.float64), q)) if values else 0.0

        return cls(
            voter_window_votes=quant(
                [_max_window(t, config.rate_window_s)[0] for t in by_voter.values()]
            ),
            voter_day_votes=quant(
                [_max_window(t, config.rate_day_s)[0] for t in by_voter.values()]
            ),
            prefix_window_votes=quant(
                [_max_window(t, config.prefix_window_s)[0] for t in by_prefix.values()]
            ),
            prefix_window_new=quant(
                [
                    _max_window(np.sort(np.array([s for _, s in items])), config.prefix_window_s)[0]
                    for items in new_by_prefix.values()
                ]
            ),
            n_voters=len(by_voter),
            n_prefixes=len(by_prefix),
        )

    def limits(self, config: FraudConfig = DEFAULT_CONFIG) -> dict[str, int]:
        """Counts above which traffic is unusual: ``max(floor, multiplier * quantile)``."""
        m = config.rate_multiplier
        return {
            "voter_window": max(config.voter_window_floor, math.floor(m * self.voter_window_votes)),
            "voter_day": max(config.voter_day_floor, math.floor(m * self.voter_day_votes)),
            "prefix_votes": max(
                config.prefix_votes_floor, math.floor(m * self.prefix_window_votes)
            ),
            "prefix_new": max(config.prefix_new_floor, math.floor(m * self.prefix_window_new)),
        }

    def to_dict(self) -> dict[str, float | int]:
        """JSON-serialisable form (for storing next to a scan)."""
        return {
            "voter_window_votes": self.voter_window_votes,
            "voter_day_votes": self.voter_day_votes,
            "prefix_window_votes": self.prefix_window_votes,
            "prefix_window_new": self.prefix_window_new,
            "n_voters": self.n_voters,
            "n_prefixes": self.n_prefixes,
        }


# -- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorResult:
    """One detector's finding about one voter.

    ``score`` is the detector's statistic, bigger = more suspicious:
    crowd_disagreement: log10 of the e-process maximum; position_bias, speed,
    model_targeting, coordination: -log10 of the adjusted p-value; rate: the
    largest ratio of a count to its limit (or of the viewing time needed to the
    time taken).  ``evidence`` holds JSON-serialisable numbers behind
    ``summary``; ``vote_ids`` the votes the detector singles out.
    """

    detector: str
    level: Level
    score: float
    summary: str
    evidence: dict[str, Any]
    vote_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "level": self.level,
            "score": self.score,
            "summary": self.summary,
            "evidence": self.evidence,
            "vote_ids": list(self.vote_ids),
        }


@dataclass(frozen=True)
class VoterReport:
    """The verdict on one voter: ``results`` has one entry per detector, in DETECTORS order."""

    voter: str
    verdict: Verdict
    reasons: tuple[str, ...]
    results: tuple[DetectorResult, ...]
    n_votes: int

    def result(self, detector: str) -> DetectorResult:
        """The result of ``detector``."""
        for r in self.results:
            if r.detector == detector:
                return r
        raise ValueError(f"detector: unknown detector {detector!r}; use one of {DETECTORS}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "voter": self.voter,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "n_votes": self.n_votes,
            "results": [r.to_dict() for r in self.results],
        }


# -- small statistics ------------------------------------------------------------------------


def poisson_binomial_sf(probs: Sequence[float] | NDArray[np.float64], k: int) -> float:
    """``P(X >= k)`` for ``X`` a sum of independent Bernoulli(``probs[i]``) (Poisson-binomial).

    Exact by dynamic programming up to 4000 trials, beyond that the normal
    approximation with continuity correction (the tail there is decided by the
    effect-size gates anyway).
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    n = p.size
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n > _EXACT_MAX:
        mu = float(p.sum())
        sd = math.sqrt(max(float((p * (1 - p)).sum()), 1e-12))
        return float(norm.sf((k - 0.5 - mu) / sd))
    dist = np.zeros(n + 1)
    dist[0] = 1.0
    for i, pi in enumerate(p.tolist()):
        dist[1 : i + 2] = dist[1 : i + 2] * (1.0 - pi) + dist[0 : i + 1] * pi
        dist[0] *= 1.0 - pi
    return float(min(1.0, dist[k:].sum()))


def _neg_log10(p: float) -> float:
    return max(0.0, -math.log10(max(p, _P_FLOOR)))


def _fmt_p(p: float) -> str:
    if p >= 0.01:
        return f"{p:.2f}"
    return f"{max(p, _P_FLOOR):.0e}"


def _fmt_e(log10_e: float) -> str:
    return f"{10**log10_e:.3g}" if log10_e < 6 else f"1e{log10_e:.0f}"


def _slot(k: int) -> str:
    return chr(ord("A") + k) if k < 26 else str(k + 1)


def _level_max(*levels: Level) -> Level:
    return max(levels, key=lambda lv: _RANK[lv])


def _level_min(*levels: Level) -> Level:
    return min(levels, key=lambda lv: _RANK[lv])


def _json(value: Any) -> Any:
    """``value`` with numpy scalars made Python and non-finite floats made None."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


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


def _prepare(vote: VoteEvidence, consensus: Consensus) -> _Prep:
    w = vote.winner
    return _Prep(vote, -1 if w is None else vote.slots.index(w), consensus.probs(vote.slots))


def _check_votes(votes: object) -> Sequence[VoteEvidence]:
    if isinstance(votes, str) or not isinstance(votes, Sequence):
        raise ValueError(f"votes: must be a sequence of VoteEvidence, got {type(votes).__name__}")
    for v in votes:
        if not isinstance(v, VoteEvidence):
            raise ValueError(f"votes: must hold VoteEvidence, got {type(v).__name__}")
    return votes


def _check_config(config: object) -> FraudConfig:
    if not isinstance(config, FraudConfig):
        raise ValueError(f"config: must be a FraudConfig, got {type(config).__name__}")
    return config


def _time_key(v: VoteEvidence) -> tuple[float, str]:
    return (v.time_s, v.vote_id)


# -- sliding windows -------------------------------------------------------------------------


def _group_times(votes: Iterable[VoteEvidence], key: Any) -> dict[str, NDArray[np.float64]]:
    acc: dict[str, list[float]] = defaultdict(list)
    for v in votes:
        acc[key(v)].append(v.time_s)
    return {k: np.sort(np.asarray(t, dtype=np.float64)) for k, t in sorted(acc.items())}


def _window_counts(times: NDArray[np.float64], window: float) -> NDArray[np.int64]:
    """For each event j (times sorted), how many events lie in ``(t_j - window, t_j]``."""
    start = np.searchsorted(times, times - window, side="right")
    counts: NDArray[np.int64] = (np.arange(times.size) - start + 1).astype(np.int64)
    return counts


def _max_window(times: NDArray[np.float64], window: float) -> tuple[int, float]:
    """(most events in any window of ``window`` seconds, end time of the first such window)."""
    if times.size == 0:
        return 0, 0.0
    counts = _window_counts(times, window)
    j = int(np.argmax(counts))
    return int(counts[j]), float(times[j])


def _new_identities(votes: Iterable[VoteEvidence]) -> dict[str, list[tuple[str, float]]]:
    """Per prefix: (voter, first_seen_s) of each identity seen there with a known creation time."""
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    for v in votes:
        if v.prefix and v.first_seen_s is not None:
            seen[v.prefix].setdefault(v.voter, v.first_seen_s)
    return {
        p: sorted(d.items(), key=lambda item: (item[1], item[0])) for p, d in sorted(seen.items())
    }


def _covered(counts: NDArray[np.int64], limit: int) -> NDArray[np.bool_]:
    """Events inside any window (ending at an event) whose count exceeds ``limit``."""
    n = counts.size
    cover = np.zeros(n + 1, dtype=np.int64)
    for j in np.flatnonzero(counts > limit).tolist():
        cover[j - int(counts[j]) + 1] += 1
        cover[j + 1] -= 1
    out: NDArray[np.bool_] = np.cumsum(cover[:n]) > 0
    return out


# -- detectors -------------------------------------------------------------------------------


def _disabled(detector: str) -> DetectorResult:
    return DetectorResult(detector, "ok", 0.0, "detector disabled", {"enabled": False})


def _running_log10(preps: Sequence[_Prep], bet: float) -> list[float]:
    """Running log10 of prod(1 - bet + bet * e_i) over the decided votes, in order."""
    out: list[float] = []
    acc = 0.0
    for p in preps:
        acc += math.log10(1.0 - bet + bet * p.e)
        out.append(acc)
    return out


def _disagreement_stats(decided: Sequence[_Prep], config: FraudConfig) -> dict[str, Any]:
    path = _running_log10(decided, config.bet)
    n = len(decided)
    if n == 0:
        return {"n_decided": 0, "log10_max_e": 0.0, "log10_final_e": 0.0}
    j = int(np.argmax(path))
    fav = sum(1 for p in decided if p.probs[p.winner] == max(p.probs))
    return {
        "n_decided": n,
        "log10_max_e": max(0.0, path[j]),
        "log10_final_e": path[-1],
        "max_at_vote": j + 1 if path[j] > 0 else 0,
        "chose_favourite": fav,
        "expected_favourite": sum(max(p.probs) for p in decided),
        "mean_p_chosen": sum(p.probs[p.winner] for p in decided) / n,
        "mean_p_chance": sum(1.0 / len(p.probs) for p in decided) / n,
    }


def _disagreement_level(stats: dict[str, Any], config: FraudConfig, tests: int = 1) -> Level:
    """Level of an e-process peak; ``tests`` e-processes share the thresholds (Bonferroni)."""
    n, lg = stats["n_decided"], stats["log10_max_e"] - math.log10(tests)
    if n >= config.disagreement_min_votes and lg >= math.log10(config.disagreement_strong_e):
        return "strong"
    if n >= config.min_votes and lg >= math.log10(config.disagreement_suspicious_e):
        return "suspicious"
    return "ok"


def _crowd_disagreement(decided: Sequence[_Prep], config: FraudConfig) -> DetectorResult:
    st = _disagreement_stats(decided, config)
    level = _disagreement_level(st, config)
    n = st["n_decided"]
    if n == 0:
        summary = "no decided votes to compare with the crowd"
    else:
        summary = (
            f"chose the crowd's favourite in {st['chose_favourite']} of {n} decided votes "
            f"(expected {st['expected_favourite']:.1f}); the e-process peaked at "
            f"{_fmt_e(st['log10_max_e'])} (suspicious at {config.disagreement_suspicious_e:g}, "
            f"strong at {config.disagreement_strong_e:g})"
        )
    evidence = {
        "n_decided": n,
        "log10_max_e": _r(st["log10_max_e"]),
        "log10_final_e": _r(st["log10_final_e"]),
        "max_at_vote": st.get("max_at_vote", 0),
        "chose_favourite": st.get("chose_favourite", 0),
        "expected_favourite": _r(st.get("expected_favourite", 0.0), 2),
        "mean_p_chosen": _r(st.get("mean_p_chosen", 0.0)),
        "mean_p_chance": _r(st.get("mean_p_chance", 0.0)),
        "bet": config.bet,
        "suspicious_e": config.disagreement_suspicious_e,
        "strong_e": config.disagreement_strong_e,
    }
    return DetectorResult("crowd_disagreement", level, _r(st["log10_max_e"]), summary, evidence)


def _position_bias(decided: Sequence[_Prep], config: FraudConfig) -> DetectorResult:
    n = len(decided)
    if n == 0:
        return DetectorResult(
            "position_bias", "ok", 0.0, "no decided votes", {"n_decided": 0, "positions": []}
        )
    width = max(len(p.probs) for p in decided)
    rows: list[dict[str, Any]] = []
    best: tuple[float, int] | None = None
    for k in range(width):
        ps = [p.probs[k] for p in decided if len(p.probs) > k]
        obs = sum(1 for p in decided if p.winner == k)
        exp = sum(ps)
        var = sum(x * (1 - x) for x in ps)
        z = (obs - exp) / math.sqrt(max(var, 1e-12))
        rows.append({"slot": _slot(k), "votes": len(ps), "chosen": obs, "expected": _r(exp, 2)})
        if best is None or z > best[0]:
            best = (z, k)
    assert best is not None
    k = best[1]
    ps = [p.probs[k] for p in decided if len(p.probs) > k]
    obs = rows[k]["chosen"]
    exp = sum(ps)
    p_raw = poisson_binomial_sf(ps, obs)
    p_adj = min(1.0, p_raw * width)
    share = obs / len(ps)
    excess = (obs - exp) / len(ps)
    level: Level = "ok"
    if (
        n >= config.position_min_votes
        and excess >= config.position_strong_excess
        and p_adj <= config.strong_p
    ):
        level = "strong"
    elif (
        n >= config.min_votes
        and excess >= config.position_suspicious_excess
        and p_adj <= config.suspicious_p
    ):
        level = "suspicious"
    summary = (
        f"chose slot {_slot(k)} in {obs} of {len(ps)} decided votes "
        f"(expected {exp:.1f}; p = {_fmt_p(p_adj)})"
    )
    evidence = {
        "n_decided": n,
        "slot": _slot(k),
        "chosen": obs,
        "votes": len(ps),
        "expected": _r(exp, 2),
        "share": _r(share),
        "expected_share": _r(exp / len(ps)),
        "excess": _r(excess),
        "p_value": p_raw,
        "p_adjusted": p_adj,
        "tests": width,
        "positions": rows,
    }
    return DetectorResult("position_bias", level, _r(_neg_log10(p_adj)), summary, evidence)


def _speed(votes: Sequence[VoteEvidence], config: FraudConfig) -> DetectorResult:
    n = len(votes)
    fast = [v for v in votes if v.time_to_vote_ms < v.min_view_ms]
    nf = len(fast)
    p = float(binom.sf(nf - 1, n, config.honest_fast_rate)) if n and nf else 1.0
    share = nf / n if n else 0.0
    level: Level = "ok"
    if nf >= config.speed_strong_min_fast and share >= config.speed_strong_share:
        level = "strong"
    elif nf >= config.speed_suspicious_min_fast and p <= config.suspicious_p:
        level = "suspicious"
    times = sorted(v.time_to_vote_ms for v in votes)
    median = times[len(times) // 2] if times else 0
    summary = (
        f"voted faster than the minimum viewing time in {nf} of {n} votes "
        f"(expected {config.honest_fast_rate * n:.1f}; p = {_fmt_p(p)}); "
        f"median time to vote {median / 1000:.1f} s"
    )
    evidence = {
        "n_votes": n,
        "fast": nf,
        "share": _r(share),
        "expected": _r(config.honest_fast_rate * n, 2),
        "honest_fast_rate": config.honest_fast_rate,
        "p_value": p,
        "median_time_to_vote_ms": median,
        "fastest_ms": times[:5],
    }
    return DetectorResult(
        "speed", level, _r(_neg_log10(p)), summary, evidence, tuple(v.vote_id for v in fast)
    )


def _impossible_run(votes: Sequence[VoteEvidence], m: int) -> dict[str, Any] | None:
    """The worst run of >= m consecutive votes cast faster than their outputs can be viewed.

    Voting on battle k needs at least ``min_view_k`` after the previous vote, so
    votes i..j need ``t_j - t_i >= sum_{k=i+1..j} min_view_k``.  With
    ``a_k = t_k - C_k`` (C the cumulative viewing time) that reads
    ``a_j >= a_i``; a violation over >= m votes is impossible for one person.
    """
    n = len(votes)
    if n < m:
        return None
    t = np.array([v.time_s for v in votes])
    c = np.cumsum(np.array([v.min_view_ms / 1000.0 for v in votes]))
    a = t - c
    runmax = np.maximum.accumulate(a)
    deficit = runmax[: n - m + 1] - a[m - 1 :]
    jj = int(np.argmax(deficit))
    if deficit[jj] <= 0:
        return None
    j = jj + m - 1
    i = int(np.argmax(a[: jj + 1]))
    span = float(t[j] - t[i])
    need = float(c[j] - c[i])
    return {
        "votes": j - i + 1,
        "span_s": _r(span, 2),
        "viewing_needed_s": _r(need, 2),
        "start_s": float(t[i]),
        "vote_ids": [v.vote_id for v in votes[i : j + 1]],
    }


def _rate(
    votes: Sequence[VoteEvidence],
    limits: dict[str, int],
    prefix_flags: Sequence[dict[str, Any]],
    config: FraudConfig,
) -> DetectorResult:
    times = np.array([v.time_s for v in votes], dtype=np.float64)
    win, win_end = _max_window(times, config.rate_window_s)
    day, _ = _max_window(times, config.rate_day_s)
    run = _impossible_run(votes, config.impossible_min_votes)
    ratios = [win / limits["voter_window"], day / limits["voter_day"]]
    parts = [
        f"at most {win} votes in any {config.rate_window_s / 60:g} min "
        f"(limit {limits['voter_window']}) and {day} in any "
        f"{config.rate_day_s / 3600:g} h (limit {limits['voter_day']})"
    ]
    level: Level = "ok"
    if win > limits["voter_window"] or day > limits["voter_day"]:
        level = "suspicious"
    for flag in prefix_flags:
        ratios.append(flag["count"] / flag["limit"])
        level = _level_max(level, "suspicious")
        what = "new identities" if flag["kind"] == "new_identities" else "votes"
        parts.append(
            f"its network prefix had {flag['count']} {what} in {flag['window_s'] / 60:g} min "
            f"(limit {flag['limit']})"
        )
    vote_ids: tuple[str, ...] = ()
    if run is not None:
        level = "strong"
        ratios.append(run["viewing_needed_s"] / max(run["span_s"], 1e-3))
        parts.append(
            f"{run['votes']} consecutive votes in {run['span_s']:.0f} s need at least "
            f"{run['viewing_needed_s']:.0f} s of viewing (impossible pace)"
        )
        vote_ids = tuple(run.pop("vote_ids"))
    evidence = {
        "max_window_votes": win,
        "window_s": config.rate_window_s,
        "window_end_s": win_end,
        "window_limit": limits["voter_window"],
        "max_day_votes": day,
        "day_s": config.rate_day_s,
        "day_limit": limits["voter_day"],
        "impossible_run": run,
        "prefix_flags": list(prefix_flags),
    }
    return DetectorResult("rate", level, _r(max(ratios)), "; ".join(parts), evidence, vote_ids)


@dataclass(frozen=True)
class _Target:
    """One targeting test: a model and a direction ("promote" or "demote")."""

    model: str
    direction: str
    n: int
    observed: int
    expected: float
    p_value: float
    p_adjusted: float
    shift: float  # taste shift (logits) in the test's direction; inf when all-or-nothing
    level: Level

    @property
    def excess(self) -> float:
        """Win-rate excess in the test's direction, share of appearances."""
        d = (self.observed - self.expected) / self.n
        return d if self.direction == "promote" else -d


def _appearances(decided: Sequence[_Prep]) -> dict[str, tuple[list[float], int]]:
    """Per model: (consensus chance of being chosen in each decided vote it was in, wins)."""
    acc: dict[str, tuple[list[float], int]] = {}
    for p in decided:
        for k, m in enumerate(p.vote.slots):
            ps, w = acc.get(m, ([], 0))
            ps.append(p.probs[k])
            acc[m] = (ps, w + (p.winner == k))
    return dict(sorted(acc.items()))


def taste_shift(probs: Sequence[float], wins: int) -> float:
    """The personal taste shift ``t`` (logits) with ``sum_i sigmoid(logit p_i + t) = wins``.

    In Bradley-Terry / Plackett-Luce terms: how much stronger (t > 0) or weaker
    the voter must find the model than the crowd does to choose it ``wins``
    times out of ``len(probs)`` appearances (a maximum-likelihood estimate for a
    voter-specific offset).  ``+inf`` when it always won, ``-inf`` when it never did.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    if p.size == 0:
        return 0.0
    if wins >= p.size:
        return math.inf
    if wins <= 0:
        return -math.inf
    base = np.log(p) - np.log1p(-p)
    lo, hi = -40.0, 40.0
    for _ in range(60):  # bisection: the sum is increasing in t
        mid = 0.5 * (lo + hi)
        if float(np.sum(1.0 / (1.0 + np.exp(-(base + mid))))) < wins:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _target_test(
    model: str, direction: str, ps: list[float], wins: int, tests: int, config: FraudConfig
) -> _Target:
    n = len(ps)
    exp = sum(ps)
    shift = taste_shift(ps, wins)
    if direction == "promote":
        p_raw = poisson_binomial_sf(ps, wins)
    else:
        p_raw = poisson_binomial_sf([1.0 - x for x in ps], n - wins)
        shift = -shift
    p_adj = min(1.0, p_raw * tests)
    level: Level = "ok"
    if (
        n >= config.targeting_min_appearances
        and shift >= config.targeting_strong_shift
        and p_adj <= config.targeting_strong_p
    ):
        level = "strong"
    elif (
        n >= config.min_votes
        and shift >= config.targeting_suspicious_shift
        and p_adj <= config.suspicious_p
    ):
        level = "suspicious"
    return _Target(model, direction, n, wins, exp, p_raw, p_adj, shift, level)


def _targeting(
    decided: Sequence[_Prep], config: FraudConfig, groups: int = 1
) -> tuple[_Target | None, int, list[dict[str, Any]]]:
    """The most incriminating targeting test, the number of tests, and a per-model table.

    Bonferroni over 2 directions x the models shown >= min_votes times x ``groups``.
    """
    app = _appearances(decided)
    testable = {m: v for m, v in app.items() if len(v[0]) >= config.min_votes}
    tests = 2 * len(testable) * groups
    table: list[tuple[float, dict[str, Any]]] = []
    candidates: list[tuple[float, str, str]] = []
    for m, (ps, w) in app.items():
        exp = sum(ps)
        sd = math.sqrt(max(sum(x * (1 - x) for x in ps), 1e-12))
        z = (w - exp) / sd
        table.append((-abs(z), {"model": m, "shown": len(ps), "chosen": w, "expected": _r(exp, 2)}))
        if m in testable:
            candidates.append((z, m, "promote"))
            candidates.append((-z, m, "demote"))
    # Exact tails only for the two most extreme candidates and any with z >= 2: after
    # Bonferroni over tests, "suspicious" needs a tail far beyond z = 2 even at small n.
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    best: _Target | None = None
    for rank, (z, m, d) in enumerate(candidates):
        if rank >= 2 and z < 2.0:
            break
        ps, w = testable[m]
        t = _target_test(m, d, ps, w, tests, config)
        if best is None or (_RANK[t.level], -t.p_adjusted) > (_RANK[best.level], -best.p_adjusted):
            best = t
    table.sort(key=lambda r: (r[0], r[1]["model"]))
    return best, tests, [r[1] for r in table[:8]]


def _target_summary(t: _Target) -> str:
    return (
        f"chose {t.model} in {t.observed} of {t.n} decided votes where it was shown "
        f"(expected {t.expected:.1f}; {'promotion' if t.direction == 'promote' else 'demotion'}, "
        f"p = {_fmt_p(t.p_adjusted)})"
    )


def _target_evidence(t: _Target | None, tests: int) -> dict[str, Any]:
    if t is None:
        return {"tests": tests}
    return {
        "model": t.model,
        "direction": t.direction,
        "shown": t.n,
        "chosen": t.observed,
        "expected": _r(t.expected, 2),
        "taste_shift": _r(t.shift) if math.isfinite(t.shift) else None,
        "all_or_nothing": not math.isfinite(t.shift),
        "excess": _r(t.excess),
        "p_value": t.p_value,
        "p_adjusted": t.p_adjusted,
        "tests": tests,
    }


def _model_targeting(decided: Sequence[_Prep], config: FraudConfig) -> DetectorResult:
    t, tests, table = _targeting(decided, config)
    evidence = _target_evidence(t, tests)
    evidence["models"] = table
    if t is None:
        return DetectorResult(
            "model_targeting",
            "ok",
            0.0,
            f"no model shown in {config.min_votes} or more decided votes",
            evidence,
        )
    ids = tuple(p.vote.vote_id for p in decided if t.model in p.vote.slots)
    return DetectorResult(
        "model_targeting",
        t.level,
        _r(_neg_log10(t.p_adjusted)),
        _target_summary(t),
        evidence,
        ids if t.level != "ok" else (),
    )


# -- coordination ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _GroupFinding:
    level: Level
    score: float
    evidence: dict[str, Any]
    members: dict[str, Level]  # member -> level it gets
    member_votes: dict[str, tuple[str, ...]]
    summary: str


def _group_sessions(
    preps: Sequence[_Prep], key: Any, config: FraudConfig
) -> list[tuple[str, list[_Prep]]]:
    """Sessions of votes sharing ``key`` (skipped when empty), split at gaps > group_gap_s."""
    acc: dict[str, list[_Prep]] = defaultdict(list)
    for p in preps:
        k = key(p.vote)
        if k:
            acc[k].append(p)
    out: list[tuple[str, list[_Prep]]] = []
    for k in sorted(acc):
        group = sorted(acc[k], key=lambda p: _time_key(p.vote))
        if len({p.vote.voter for p in group}) < config.group_min_voters:
            continue
        cur: list[_Prep] = [group[0]]
        for prev, p in pairwise(group):
            if p.vote.time_s - prev.vote.time_s > config.group_gap_s:
                out.append((k, cur))
                cur = []
            cur.append(p)
        out.append((k, cur))
    return [(k, s) for k, s in out if len({p.vote.voter for p in s}) >= config.group_min_voters]


def _test_group(
    kind: str, key: str, session: list[_Prep], config: FraudConfig, groups: int
) -> _GroupFinding | None:
    """Pooled targeting and disagreement tests of one session, ``groups`` sessions in all.

    Every group gets the individual thresholds divided among all groups tested
    (Bonferroni for the p-values, ``groups`` x the e-value thresholds), so an
    arena with many campuses does not flag one of them by chance.
    """
    decided = [p for p in session if p.decided]
    members = sorted({p.vote.voter for p in session})
    if not decided:
        return None
    # Targeting on the pool, then without the member who pushed the flagged model hardest.
    t, tests, _ = _targeting(decided, config, groups)
    t_level: Level = "ok"
    contrib: dict[str, float] = {}
    if t is not None and t.level != "ok":
        sign = 1.0 if t.direction == "promote" else -1.0
        for p in decided:
            if t.model in p.vote.slots:
                k = p.vote.slots.index(t.model)
                r = sign * ((p.winner == k) - p.probs[k])
                contrib[p.vote.voter] = contrib.get(p.vote.voter, 0.0) + r
        top = max(sorted(contrib), key=lambda v: contrib[v])
        rest = [p for p in decided if p.vote.voter != top and t.model in p.vote.slots]
        ps = [p.probs[p.vote.slots.index(t.model)] for p in rest]
        wins = sum(1 for p in rest if p.vote.slots[p.winner] == t.model)
        loo = _target_test(t.model, t.direction, ps, wins, tests, config) if ps else None
        t_level = _level_min(t.level, loo.level if loo is not None else "ok")
    # Disagreement on the pool (time order), likewise without its strongest member.
    st = _disagreement_stats(decided, config)
    d_level = _disagreement_level(st, config, groups)
    dcontrib: dict[str, float] = {}
    if d_level != "ok":
        for p in decided:
            dcontrib[p.vote.voter] = dcontrib.get(p.vote.voter, 0.0) + math.log10(
                1.0 - config.bet + config.bet * p.e
            )
        top = max(sorted(dcontrib), key=lambda v: dcontrib[v])
        st_loo = _disagreement_stats([p for p in decided if p.vote.voter != top], config)
        d_level = _level_min(d_level, _disagreement_level(st_loo, config, groups))
    level = _level_max(t_level, d_level)
    if level == "ok":
        return None
    use_target = _RANK[t_level] >= _RANK[d_level]
    own = contrib if use_target else dcontrib
    # A member whose own votes did not push in the flagged direction gets one level less.
    lower: dict[Level, Level] = {"strong": "suspicious", "suspicious": "ok", "ok": "ok"}
    member_levels = {m: level if own.get(m, 0.0) > 0 else lower[level] for m in members}
    member_votes: dict[str, list[str]] = defaultdict(list)
    for p in session:
        member_votes[p.vote.voter].append(p.vote.vote_id)
    t0, t1 = session[0].vote.time_s, session[-1].vote.time_s
    evidence: dict[str, Any] = {
        "group_kind": kind,
        "group_key": key,
        "members": len(members),
        "pooled_votes": len(session),
        "pooled_decided": len(decided),
        "start_s": t0,
        "end_s": t1,
        "signal": "targeting" if use_target else "disagreement",
        "log10_max_e": _r(st["log10_max_e"]),
        "groups_tested": groups,
    }
    if use_target and t is not None:
        evidence.update(_target_evidence(t, tests))
        summary = (
            f"one of {len(members)} voters on {kind} {key[:12]} within "
            f"{(t1 - t0) / 60:.0f} min whose pooled votes chose {t.model} in {t.observed} of "
            f"{t.n} (expected {t.expected:.1f}; p = {_fmt_p(t.p_adjusted)})"
        )
        score = _neg_log10(t.p_adjusted)
    else:
        summary = (
            f"one of {len(members)} voters on {kind} {key[:12]} within "
            f"{(t1 - t0) / 60:.0f} min whose pooled {len(decided)} decided votes disagree with "
            f"the crowd (e-process peak {_fmt_e(st['log10_max_e'])})"
        )
        score = st["log10_max_e"]
    return _GroupFinding(
        level,
        _r(score),
        evidence,
        member_levels,
        {m: tuple(ids) for m, ids in member_votes.items()},
        summary,
    )


def _coordination(
    preps: Sequence[_Prep], config: FraudConfig
) -> dict[str, tuple[Level, _GroupFinding]]:
    """Per voter, the most serious group finding it is part of."""
    out: dict[str, tuple[Level, _GroupFinding]] = {}
    keys: list[tuple[str, Any]] = [
        ("prefix", lambda v: v.prefix),
        ("prefix+ua", lambda v: f"{v.prefix}|{v.user_agent}" if v.prefix and v.user_agent else ""),
    ]
    sessions = [(kind, k, s) for kind, key in keys for k, s in _group_sessions(preps, key, config)]
    for kind, k, session in sessions:
        found = _test_group(kind, k, session, config, len(sessions))
        if found is None:
            continue
        for m, lv in found.members.items():
            prev = out.get(m)
            if prev is None or (_RANK[lv], found.score) > (_RANK[prev[0]], prev[1].score):
                out[m] = (lv, found)
    return out


def _coordination_result(voter: str, found: tuple[Level, _GroupFinding] | None) -> DetectorResult:
    if found is None:
        return DetectorResult(
            "coordination", "ok", 0.0, "not part of a flagged group of voters", {}
        )
    level, g = found
    evidence = dict(g.evidence)
    evidence["member_level"] = level
    return DetectorResult(
        "coordination", level, g.score, g.summary, evidence, g.member_votes.get(voter, ())
    )


# -- rate context ----------------------------------------------------------------------------


def _prefix_flags(
    votes: Sequence[VoteEvidence], limits: dict[str, int], config: FraudConfig
) -> dict[str, list[dict[str, Any]]]:
    """Per voter, the busy-prefix findings that concern it."""
    flags: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_prefix: dict[str, list[VoteEvidence]] = defaultdict(list)
    for v in votes:
        if v.prefix:
            by_prefix[v.prefix].append(v)
    w = config.prefix_window_s
    for prefix in sorted(by_prefix):
        pv = sorted(by_prefix[prefix], key=_time_key)
        t = np.array([v.time_s for v in pv])
        counts = _window_counts(t, w)
        if counts.size and int(counts.max()) > limits["prefix_votes"]:
            cov = _covered(counts, limits["prefix_votes"])
            hit = sorted({pv[i].voter for i in np.flatnonzero(cov).tolist()})
            for voter in hit:
                flags[voter].append(
                    {
                        "kind": "votes",
                        "prefix": prefix,
                        "count": int(counts.max()),
                        "limit": limits["prefix_votes"],
                        "window_s": w,
                        "voters_in_window": len(hit),
                    }
                )
    for prefix, items in _new_identities(votes).items():
        t = np.array([s for _, s in items])
        counts = _window_counts(t, w)
        if counts.size and int(counts.max()) > limits["prefix_new"]:
            cov = _covered(counts, limits["prefix_new"])
            hit = sorted({items[i][0] for i in np.flatnonzero(cov).tolist()})
            for voter in hit:
                flags[voter].append(
                    {
                        "kind": "new_identities",
                        "prefix": prefix,
                        "count": int(counts.max()),
                        "limit": limits["prefix_new"],
                        "window_s": w,
                        "voters_in_window": len(hit),
                    }
                )
    return flags


# -- verdict and scan ------------------------------------------------------------------------


def decide(
    results: Sequence[DetectorResult], *, config: FraudConfig = DEFAULT_CONFIG
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict on a voter from its detector results, and the detectors behind it.

    "excluded" when any detector is strong (reasons: the strong ones) or when
    the suspicious ones come from at least ``config.combine_families`` of
    :data:`FAMILIES`; "suspicious" when any is suspicious; else "ok".
    """
    _check_config(config)
    for r in results:
        if not isinstance(r, DetectorResult) or r.detector not in FAMILIES:
            raise ValueError(f"results: must be DetectorResults of known detectors, got {r!r}")
    strong = tuple(r.detector for r in results if r.level == "strong")
    if strong:
        return "excluded", strong
    suspicious = tuple(r.detector for r in results if r.level == "suspicious")
    if len({FAMILIES[d] for d in suspicious}) >= config.combine_families:
        return "excluded", suspicious
    if suspicious:
        return "suspicious", suspicious
    return "ok", ()


def scan(
    votes: Sequence[VoteEvidence],
    consensus: Consensus,
    *,
    config: FraudConfig = DEFAULT_CONFIG,
    baseline: TrafficBaseline | None = None,
    voters: Collection[str] | None = None,
) -> dict[str, VoterReport]:
    """Run every detector on every voter (or only ``voters``) and give a verdict each.

    ``votes`` is the whole recent log: other voters' votes are context for the
    coordination and prefix-rate checks even when ``voters`` limits the report.
    ``baseline`` None computes it from ``votes``.  Returns reports keyed by
    voter id, sorted; a requested voter without votes gets an "ok" report with
    ``n_votes = 0``.  Deterministic: ties are broken by time, then vote id.
    """
    votes = _check_votes(votes)
    if not isinstance(consensus, Consensus):
        raise ValueError(f"consensus: must be a Consensus, got {type(consensus).__name__}")
    config = _check_config(config)
    if baseline is None:
        baseline = TrafficBaseline.from_votes(votes, config=config)
    elif not isinstance(baseline, TrafficBaseline):
        raise ValueError(f"baseline: must be a TrafficBaseline or None, got {baseline!r}")
    if voters is not None:
        if isinstance(voters, str) or not isinstance(voters, Collection):
            raise ValueError(f"voters: must be a collection of voter ids, got {voters!r}")
        for v in voters:
            _check_str("voters", v)
    enabled = set(config.detectors)
    preps = [_prepare(v, consensus) for v in votes]
    by_voter: dict[str, list[_Prep]] = defaultdict(list)
    for p in preps:
        by_voter[p.vote.voter].append(p)
    wanted = sorted(by_voter if voters is None else set(voters))
    limits = baseline.limits(config)
    prefix_flags = _prefix_flags(votes, limits, config) if "rate" in enabled else {}
    groups = _coordination(preps, config) if "coordination" in enabled else {}

    reports: dict[str, VoterReport] = {}
    for voter in wanted:
        mine = sorted(by_voter.get(voter, []), key=lambda p: _time_key(p.vote))
        mine_votes = [p.vote for p in mine]
        decided = [p for p in mine if p.decided]
        results: list[DetectorResult] = []
        for d in DETECTORS:
            if d not in enabled:
                results.append(_disabled(d))
            elif d == "crowd_disagreement":
                results.append(_crowd_disagreement(decided, config))
            elif d == "position_bias":
                results.append(_position_bias(decided, config))
            elif d == "speed":
                results.append(_speed(mine_votes, config))
            elif d == "rate":
                results.append(_rate(mine_votes, limits, prefix_flags.get(voter, []), config))
            elif d == "model_targeting":
                results.append(_model_targeting(decided, config))
            else:
                results.append(_coordination_result(voter, groups.get(voter)))
        results = [
            DetectorResult(r.detector, r.level, r.score, r.summary, _json(r.evidence), r.vote_ids)
            for r in results
        ]
        verdict, reasons = decide(results, config=config)
        reports[voter] = VoterReport(voter, verdict, reasons, tuple(results), len(mine))
    return reports


def choice_series(
    votes: Sequence[VoteEvidence],
    consensus: Consensus,
    *,
    config: FraudConfig = DEFAULT_CONFIG,
) -> list[dict[str, Any]]:
    """Per decided vote of ONE voter, in time order, the voter's choice against the crowd.

    Each row: ``vote_id``, ``time_s``, ``p_chosen`` (consensus probability of
    what they chose), ``p_chance`` (1 / number of outcomes) and ``log_e`` (the
    running log10 of the crowd_disagreement e-process with ``config.bet``; the
    detector's thresholds are ``log10(20) = 1.3`` and, by default, ``log10(300) = 2.48``).
    For the admin plot of a voter's choices against the crowd.
    """
    votes = _check_votes(votes)
    if not isinstance(consensus, Consensus):
        raise ValueError(f"consensus: must be a Consensus, got {type(consensus).__name__}")
    config = _check_config(config)
    if len({v.voter for v in votes}) > 1:
        raise ValueError("votes: must all belong to one voter")
    decided = [p for p in (_prepare(v, consensus) for v in sorted(votes, key=_time_key))]
    decided = [p for p in decided if p.decided]
    path = _running_log10(decided, config.bet)
    return [
        {
            "vote_id": p.vote.vote_id,
            "time_s": p.vote.time_s,
            "p_chosen": p.probs[p.winner],
            "p_chance": 1.0 / len(p.probs),
            "log_e": lg,
        }
        for p, lg in zip(decided, path, strict=True)
    ]
