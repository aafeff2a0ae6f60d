"""The ``model_targeting`` detector: one model's wins (or losses) against the consensus.

Exact Poisson-binomial tails for promotion and demotion, Bonferroni over the
tests, gated on the personal taste shift (:func:`taste_shift`) that would
explain the wins.

Rank rigging (Min et al., ICML 2025: "omnipresent" rigging) is tested here too: a target
always chosen while the models ranked just above it are never chosen in the voter's other
battles lifts the target's rank through battles it is not in. Each model alone may be too
rarely shown for significance; the target's test (all its votes) and its neighbours' (the votes
without the target) are combined by Fisher's method, Bonferroni-corrected over the targets,
the directions and the subsets of neighbours tried (the empty subset is the single-model test:
the two are corrected separately, so together they flag at most twice the nominal rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


def _targeting_level(n: int, shift: float, p_adjusted: float, config: FraudConfig) -> Level:
    """A targeting test's level from its appearances, taste shift and corrected p-value."""
    return _graded(
        n=n,
        effect=shift,
        p=p_adjusted,
        strong=(
            config.targeting_min_appearances,
            config.targeting_strong_shift,
            config.targeting_strong_p,
        ),
        suspicious=(config.min_votes, config.targeting_suspicious_shift, config.suspicious_p),
    )


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
    level = _targeting_level(n, shift, p_adj, config)
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


@dataclass(frozen=True)
class _Rig:
    """A rank-rigging finding: the target's test and its neighbours' (the opposite way)."""

    target: _Target
    neighbours: tuple[_Target, ...]
    p_value: float  # Fisher's combination of the tests' tails
    p_adjusted: float
    level: Level
    tests: int  # the Bonferroni count: 2 x targets x neighbour subsets

    @property
    def models(self) -> tuple[str, ...]:
        return (self.target.model, *(n.model for n in self.neighbours))


#: Appearances a neighbour needs (in the votes without the target) to join a rigging test.
RIG_NEIGHBOUR_MIN = 3


def _side(order: Sequence[str], model: str, direction: str, window: int) -> Sequence[str]:
    """The ``window`` models ranked next to ``model`` (``order``: best first) above it
    (promote) or below it (demote)."""
    i = order.index(model)
    return (
        order[max(0, i - window) : i] if direction == "promote" else order[i + 1 : i + 1 + window]
    )


def _rig_candidates(
    decided: Sequence[_Prep], t: _Target, order: Sequence[str], config: FraudConfig
) -> list[_Target]:
    """The neighbours' tests (opposite way, on the votes without the target) shown at least
    ``RIG_NEIGHBOUR_MIN`` times that clear the suspicious shift, most extreme first."""
    side = _side(order, t.model, t.direction, config.rigging_window)
    if not side:
        return []
    app = _appearances([p for p in decided if t.model not in p.vote.slots])
    opposite = "demote" if t.direction == "promote" else "promote"
    tests = [_target_test(n, opposite, *app[n], 1, config) for n in side if n in app]
    good = [
        n
        for n in tests
        if n.n >= RIG_NEIGHBOUR_MIN and n.shift >= config.targeting_suspicious_shift
    ]
    return sorted(good, key=lambda n: (n.p_value, n.model))


def _rigging(
    decided: Sequence[_Prep], ranks: Mapping[str, int] | None, config: FraudConfig
) -> _Rig | None:
    """The most incriminating rank-rigging test, or None (no ranks, or nothing to test)."""
    if not ranks or config.rigging_window == 0:
        return None
    app = _appearances(decided)
    testable = [m for m, (ps, _) in app.items() if len(ps) >= config.min_votes and m in ranks]
    tests = 2 * len(testable) * (2**config.rigging_window - 1)
    order = sorted(ranks, key=lambda m: (ranks[m], m))
    best: _Rig | None = None
    for m in testable:
        for direction in ("promote", "demote"):
            t = _target_test(m, direction, *app[m], 1, config)
            if t.shift < config.targeting_suspicious_shift:
                continue
            neighbours = _rig_candidates(decided, t, order, config)
            for j in range(1, len(neighbours) + 1):
                rig = _rig(t, tuple(neighbours[:j]), tests, config)
                if best is None or (_RANK[rig.level], -rig.p_adjusted) > (
                    _RANK[best.level],
                    -best.p_adjusted,
                ):
                    best = rig
    return best


def fisher_combined(p_values: Sequence[float]) -> float:
    """Fisher's combination of independent p-values: ``P(prod U_i <= prod p_i)`` for uniform
    ``U_i``, ``x * sum_{i<k} (-ln x)^i / i!`` with ``x`` the product (conservative for the
    discrete, super-uniform tails of exact tests)."""
    x = math.prod(p_values)
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    minus_log = -math.log(x)
    term, total = 1.0, 1.0
    for i in range(1, len(p_values)):
        term *= minus_log / i
        total += term
    return min(1.0, x * total)


def _rig(t: _Target, neighbours: tuple[_Target, ...], tests: int, config: FraudConfig) -> _Rig:
    joint = fisher_combined([t.p_value, *(n.p_value for n in neighbours)])
    p_adj = min(1.0, joint * tests)
    n = t.n + sum(nb.n for nb in neighbours)
    level = _targeting_level(n, min(t.shift, *(nb.shift for nb in neighbours)), p_adj, config)
    return _Rig(t, neighbours, joint, p_adj, level, tests)


def _rig_summary(rig: _Rig) -> str:
    t = rig.target
    held = "held back" if t.direction == "promote" else "pushed"
    others = ", ".join(
        f"{n.model} chosen {n.observed} of {n.n}, expected {n.expected:.1f}" for n in rig.neighbours
    )
    side = "above" if t.direction == "promote" else "below"
    return (
        f"rank rigging: chose {t.model} in {t.observed} of {t.n} decided votes where it was "
        f"shown (expected {t.expected:.1f}) and {held} the models ranked just {side} it in its "
        f"other votes ({others}; p = {_fmt_p(rig.p_adjusted)})"
    )


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


def _model_targeting(
    decided: Sequence[_Prep], config: FraudConfig, ranks: Mapping[str, int] | None = None
) -> DetectorResult:
    """The voter's most incriminating targeting finding: one model pushed, or (with the
    consensus ``ranks``, 0 the best) a model pushed while its rank neighbours are held back."""
    t, tests, table = _targeting(decided, config)
    rig = _rigging(decided, ranks, config)
    if (
        rig is not None
        and rig.level != "ok"
        and (t is None or (_RANK[rig.level], -rig.p_adjusted) > (_RANK[t.level], -t.p_adjusted))
    ):
        evidence = _target_evidence(rig.target, tests)
        evidence.update(
            p_value=rig.p_value,
            p_adjusted=rig.p_adjusted,
            rigging={
                "neighbours": [
                    {
                        "model": n.model,
                        "direction": n.direction,
                        "shown": n.n,
                        "chosen": n.observed,
                        "expected": _r(n.expected, 2),
                    }
                    for n in rig.neighbours
                ],
                "window": config.rigging_window,
                "tests": rig.tests,
            },
            models=table,
        )
        rigged = set(rig.models)
        return DetectorResult(
            "model_targeting",
            rig.level,
            _r(_neg_log10(rig.p_adjusted)),
            _rig_summary(rig),
            evidence,
            tuple(p.vote.vote_id for p in decided if rigged & set(p.vote.slots)),
        )
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
