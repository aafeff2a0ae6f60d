"""Votes to settle: how many more votes until a model's rank is separated from its neighbours.

For two neighbours on the board (a above b) the displayed order is *settled* at level ``z``
when the score gap exceeds ``z`` standard deviations of the gap, ``gap > z * sd(a - b)``, with
the sd from the joint covariance (neighbours' estimates are correlated). The variance of the gap
falls in proportion to the evidence about a and b, which grows with how often battles show
them. Taking the current gap as the truth:

* ``A`` = votes that showed a or b so far (appearances), ``s_a + s_b`` = the share of the
  next battles' appearances they get (the matchmaker's sampling rates over ``k``), so ``m`` more
  votes of ``k`` models add ``m k (s_a + s_b)`` appearances, and
* ``var(m) = var_now * A / (A + m k (s_a + s_b))``; settled when ``gap^2 >= z^2 var(m)``:

    ``m = A / (k (s_a + s_b)) * (z^2 var_now / gap^2 - 1)``  (0 if already settled).

A model's own figure is the larger of the pairs with the model above and the one below; the
board's top-N figure is the largest over adjacent pairs within the top N. A gap of (almost)
zero never settles: ``None``. ``benchmarks/settle.py`` checks the estimate against simulated
arenas (predicted against actual votes until settled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["SettleEstimate", "votes_to_settle"]

#: Beyond this many votes an estimate is reported as None ("not in sight").
HORIZON = 10_000_000


@dataclass(frozen=True)
class SettleEstimate:
    """Per player (in the order given): votes until settled against the one above on the
    board, and against both neighbours; and the board's top-N figure."""

    above: list[int | None]
    own: list[int | None]
    top: int | None


def _pair(gap: float, var: float, appearances: float, per_vote: float, z: float) -> int | None:
    if var <= 0 or gap * gap >= z * z * var:
        return 0
    if gap <= 1e-9 or per_vote <= 0:
        return None
    m = appearances / per_vote * (z * z * var / (gap * gap) - 1.0)
    return math.ceil(m) if m <= HORIZON else None


def _worst(values: Sequence[int | None]) -> int | None:
    if any(v is None for v in values):
        return None
    return max((int(v) for v in values if v is not None), default=0)


def votes_to_settle(
    score: NDArray[np.float64],
    cov: NDArray[np.float64],
    appearances: NDArray[np.float64],
    share: NDArray[np.float64],
    k: int,
    *,
    z: float = 1.959964,
    top: int = 10,
) -> SettleEstimate:
    """Votes to settle per player and for the board's ``top`` places (see the module doc).

    ``score``/``cov``: the fit (any consistent scale); ``appearances``: votes each player was
    shown in so far; ``share``: its share of future appearances (sampling rate / k, sums to 1);
    ``k``: models per battle.
    """
    n = score.size
    if not (cov.shape == (n, n) and appearances.shape == (n,) and share.shape == (n,)):
        raise ValueError("score, cov, appearances and share must describe the same players")
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k: must be an int >= 2, got {k!r}")
    order = np.argsort(-score, kind="stable")
    above: list[int | None] = [0] * n
    for pos in range(1, n):
        a, b = int(order[pos - 1]), int(order[pos])
        var = float(cov[a, a] + cov[b, b] - 2.0 * cov[a, b])
        above[b] = _pair(
            float(score[a] - score[b]),
            var,
            float(appearances[a] + appearances[b]),
            k * float(share[a] + share[b]),
            z,
        )
    own: list[int | None] = [0] * n
    for pos in range(n):
        i = int(order[pos])
        pairs = [above[i]] if pos > 0 else []
        if pos + 1 < n:
            pairs.append(above[int(order[pos + 1])])
        own[i] = _worst(pairs)
    top_pairs = [above[int(order[pos])] for pos in range(1, min(top, n))]
    return SettleEstimate(above=above, own=own, top=_worst(top_pairs))
