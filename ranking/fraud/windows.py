"""Sliding-window counts over vote times, for the rate detector and the traffic baseline."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .evidence import VoteEvidence


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
