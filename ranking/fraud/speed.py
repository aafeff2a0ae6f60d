"""The ``speed`` detector: votes cast faster than the outputs can be looked at."""

from __future__ import annotations

from collections.abc import Sequence

from scipy.stats import binom

from .config import FraudConfig
from .evidence import DetectorResult, Level, VoteEvidence
from .stats import _fmt_p, _neg_log10, _r


def _speed(votes: Sequence[VoteEvidence], config: FraudConfig) -> DetectorResult:
    n = len(votes)
    fast = [v for v in votes if v.time_to_vote_ms < v.min_view_ms]
    nf = len(fast)
    p = float(binom.sf(nf - 1, n, config.honest_fast_rate)) if n and nf else 1.0
    share = nf / n if n else 0.0
    # Speed alone never excludes: honest skimmers vote faster than the viewing minimum too, and
    # their choices still carry information.  "suspicious" needs significance and most of the
    # votes (``speed_suspicious_share``: a quick person skims some battles); a fast bot is
    # excluded once its choices (disagreement, position, targeting) or an impossible pace
    # (rate) add a second family of evidence.
    level: Level = "ok"
    if (
        nf >= config.speed_suspicious_min_fast
        and p <= config.suspicious_p
        and share >= config.speed_suspicious_share
    ):
        level = "suspicious"
    times = sorted(v.time_to_vote_ms for v in votes)
    median = times[len(times) // 2] if times else 0
    summary = (
        f"voted faster than the minimum viewing time in {nf} of {n} votes "
        f"(expected {config.honest_fast_rate * n:.1f}; p = {_fmt_p(p)}; suspicious from "
        f"{config.speed_suspicious_share:.0%} of the votes); "
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
