"""What the detectors read and what they give back.

Levels and verdicts, the detector names, :class:`VoteEvidence` (one vote with
its timing and network context), :class:`DetectorResult` (one detector's
finding) and :class:`VoterReport` (the verdict on one voter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ..core import Ranking
from .checks import _check_finite, _check_int, _check_str

Level = Literal["ok", "suspicious", "strong"]


Verdict = Literal["ok", "suspicious", "excluded"]


DETECTORS: tuple[str, ...] = (
    "crowd_disagreement",
    "crowd_echo",
    "position_bias",
    "speed",
    "rate",
    "model_targeting",
    "coordination",
    "campaign",
)


_RANK: dict[str, int] = {"ok": 0, "suspicious": 1, "strong": 2}


def _level_max(*levels: Level) -> Level:
    return max(levels, key=lambda lv: _RANK[lv])


def _graded(
    *,
    n: int,
    effect: float,
    p: float,
    strong: tuple[int, float, float],
    suspicious: tuple[int, float, float],
) -> Level:
    """A detector's level from its sample size, effect size and (corrected) p-value.

    ``strong`` and ``suspicious`` are each ``(least n, least effect, largest p)``: a level needs
    enough evidence, a large enough effect *and* significance.
    """
    grades: tuple[tuple[Level, tuple[int, float, float]], ...] = (
        ("strong", strong),
        ("suspicious", suspicious),
    )
    for level, (min_n, min_effect, max_p) in grades:
        if n >= min_n and effect >= min_effect and p <= max_p:
            return level
    return "ok"


def _level_min(*levels: Level) -> Level:
    return min(levels, key=lambda lv: _RANK[lv])


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


_T = TypeVar("_T")


def _check_sequence(name: str, value: object, kind: type[_T]) -> Sequence[_T]:
    """``value`` as a sequence of ``kind``; a ValueError naming ``name`` otherwise."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(
            f"{name}: must be a sequence of {kind.__name__}, got {type(value).__name__}"
        )
    for item in value:
        if not isinstance(item, kind):
            raise ValueError(f"{name}: must hold {kind.__name__}, got {type(item).__name__}")
    return value


def _check_votes(votes: object) -> Sequence[VoteEvidence]:
    return _check_sequence("votes", votes, VoteEvidence)


def _time_key(v: VoteEvidence) -> tuple[float, str]:
    return (v.time_s, v.vote_id)


# -- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorResult:
    """One detector's finding about one voter.

    ``score`` is the detector's statistic, bigger = more suspicious:
    crowd_disagreement: log10 of the e-process maximum; crowd_echo: the sharpness
    test's z; position_bias, speed,
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
    #: Vote ids kept out though the voter is not excluded: with a lone strong model-targeting
    #: finding (``FraudConfig.targeting_scoped``) or a returning identity's membership of a
    #: campaign, the votes where that model was shown (for rank rigging: any of its models).
    kept_out: tuple[str, ...] = ()
    #: The voter's trust is held at the floor while this report stands, though the voter is
    #: not excluded: a capping finding (a strong ``crowd_echo``; a strong scoped
    #: ``model_targeting`` or a returning identity's campaign membership, which also keep out
    #: ``kept_out``; a suspicious ``crowd_disagreement``, or choices likelier under coin flips
    #: than under the careless crowd, ``FraudConfig.disagreement_caps`` and ``cap_odds``).
    trust_capped: bool = False

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
            "kept_out": list(self.kept_out),
            "trust_capped": self.trust_capped,
        }
