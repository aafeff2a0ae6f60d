"""The ``crowd_disagreement`` detector: a test martingale of the voter's choices against the crowd.

The Chatbot Arena anomalous-user test (e-values ``1 / (N p)``), generalised to
K outcomes and with a betting fraction; see the package docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import FraudConfig
from .consensus import _Prep
from .evidence import DetectorResult, Level
from .stats import _fmt_e, _r


def _running_log10(preps: Sequence[_Prep], bet: float, lapse: float = 0.0) -> list[float]:
    """Running log10 of prod(1 - bet + bet * e_i) over the decided votes, in order.

    ``e_i`` is taken against the crowd with ``lapse`` random choices (:meth:`_Prep.e_noisy`).
    """
    out: list[float] = []
    acc = 0.0
    for p in preps:
        acc += math.log10(1.0 - bet + bet * p.e_noisy(lapse))
        out.append(acc)
    return out


def _disagreement_stats(decided: Sequence[_Prep], config: FraudConfig) -> dict[str, Any]:
    path = _running_log10(decided, config.bet, config.disagreement_lapse)
    n = len(decided)
    if n == 0:
        return {"n_decided": 0, "log10_max_e": 0.0, "log10_final_e": 0.0, "log10_odds": 0.0}
    j = int(np.argmax(path))
    fav = sum(1 for p in decided if p.probs[p.winner] == max(p.probs))
    return {
        "n_decided": n,
        "log10_max_e": max(0.0, path[j]),
        "log10_final_e": path[-1],
        # The plain likelihood ratio: the same product with the whole stake on every vote.
        "log10_odds": _running_log10(decided, 1.0, config.disagreement_lapse)[-1],
        "max_at_vote": j + 1 if path[j] > 0 else 0,
        "chose_favourite": fav,
        "expected_favourite": sum(max(p.probs) for p in decided),
        "mean_p_chosen": sum(p.probs[p.winner] for p in decided) / n,
        "mean_p_chance": sum(1.0 / len(p.probs) for p in decided) / n,
    }


def caps_by_odds(n_decided: int, log10_odds: float, config: FraudConfig) -> bool:
    """Whether a voter's decided votes, at least ``config.min_votes`` of them, are
    ``config.disagreement_cap_odds`` times likelier under coin flips than under the careless
    crowd (``log10_odds``: the sum of the votes' log10 ``e_noisy``)."""
    if not config.disagreement_caps or n_decided < config.min_votes:
        return False
    return log10_odds >= math.log10(config.disagreement_cap_odds)


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
    # Rounded once: the evidence the verdict's ``caps`` reads back and the summary agree.
    log10_odds = _r(st["log10_odds"])
    if n == 0:
        summary = "no decided votes to compare with the crowd"
    else:
        summary = (
            f"chose the crowd's favourite in {st['chose_favourite']} of {n} decided votes "
            f"(expected {st['expected_favourite']:.1f}); the e-process peaked at "
            f"{_fmt_e(st['log10_max_e'])} (suspicious at {config.disagreement_suspicious_e:g}, "
            f"strong at {config.disagreement_strong_e:g})"
        )
        if level == "ok" and caps_by_odds(n, log10_odds, config):
            summary += (
                f"; its choices are {_fmt_e(log10_odds)} times likelier under coin flips "
                "than under the careless crowd, so its trust is held at the floor"
            )
    evidence = {
        "n_decided": n,
        "log10_max_e": _r(st["log10_max_e"]),
        "log10_final_e": _r(st["log10_final_e"]),
        "log10_odds": log10_odds,
        "max_at_vote": st.get("max_at_vote", 0),
        "chose_favourite": st.get("chose_favourite", 0),
        "expected_favourite": _r(st.get("expected_favourite", 0.0), 2),
        "mean_p_chosen": _r(st.get("mean_p_chosen", 0.0)),
        "mean_p_chance": _r(st.get("mean_p_chance", 0.0)),
        "bet": config.bet,
        "lapse": config.disagreement_lapse,
        "suspicious_e": config.disagreement_suspicious_e,
        "strong_e": config.disagreement_strong_e,
        "cap_odds": config.disagreement_cap_odds,
    }
    return DetectorResult("crowd_disagreement", level, _r(st["log10_max_e"]), summary, evidence)
