"""Small statistics and formatting shared by the detectors.

Poisson-binomial tails, p-value and e-value display, rounding, and the clean-up
that makes evidence JSON-serialisable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

#: Smallest probability used in e-values and reported p-values (keeps logs finite).
_P_FLOOR = 1e-300


#: Poisson-binomial tails are exact (dynamic programming) up to this many trials, then a
#: continuity-corrected normal approximation (the DP is O(n^2)).
_EXACT_MAX = 4000


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
