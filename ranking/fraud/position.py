"""The ``position_bias`` detector: the single winner's slot against the consensus-expected count."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .config import FraudConfig
from .consensus import _Prep
from .evidence import DetectorResult, _graded
from .stats import _fmt_p, _neg_log10, _r, _slot, poisson_binomial_sf


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
    level = _graded(
        n=n,
        effect=excess,
        p=p_adj,
        strong=(config.position_min_votes, config.position_strong_excess, config.strong_p),
        suspicious=(config.min_votes, config.position_suspicious_excess, config.suspicious_p),
    )
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
