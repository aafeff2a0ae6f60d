"""The ``model_targeting`` detector: one model's wins (or losses) against the consensus.

Exact Poisson-binomial tails for promotion and demotion, Bonferroni over the
tests, gated on the personal taste shift (:func:`taste_shift`) that would
explain the wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import FraudConfig
from .consensus import _Prep
from .evidence import _RANK, DetectorResult, Level, _graded
from .stats import _fmt_p, _neg_log10, _r, poisson_binomial_sf


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
    # Safeguarded Newton: the sum is increasing and convex-concave in t; keep a bracket.
    lo, hi, t = -40.0, 40.0, 0.0
    for _ in range(100):
        sig = 1.0 / (1.0 + np.exp(-(base + t)))
        f = float(sig.sum()) - wins
        if abs(f) < 1e-10:
            return t
        if f < 0:
            lo = t
        else:
            hi = t
        slope = float((sig * (1.0 - sig)).sum())
        step = t - f / slope if slope > 1e-12 else lo - 1.0
        t = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo < 1e-12:
            break
    return t


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
    level = _graded(
        n=n,
        effect=shift,
        p=p_adj,
        strong=(
            config.targeting_min_appearances,
            config.targeting_strong_shift,
            config.targeting_strong_p,
        ),
        suspicious=(config.min_votes, config.targeting_suspicious_shift, config.suspicious_p),
    )
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
