"""The ``rate`` detector and the arena's normal traffic it is judged against.

:class:`TrafficBaseline` (busiest windows per voter and per network prefix,
as quantiles over the arena), the physically impossible pace, the busy-prefix
findings and the detector itself.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import check_positive
from .checks import _check_int
from .config import DEFAULT_CONFIG, FraudConfig, _check_config
from .evidence import DetectorResult, Level, VoteEvidence, _check_votes, _level_max, _time_key
from .stats import _r
from .windows import _covered, _group_times, _max_window, _new_identities, _window_counts


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
                self, name, check_positive(name, getattr(self, name), allow_zero=True)
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
    own_level = level
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
        # Suspicious only because of the network prefix: never a family of evidence alone.
        "prefix_only": level == "suspicious" and own_level == "ok",
    }
    return DetectorResult("rate", level, _r(max(ratios)), "; ".join(parts), evidence, vote_ids)
