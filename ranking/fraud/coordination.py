"""The ``coordination`` detector: voters who share a network prefix and a session, tested as a group.

The pooled votes get the targeting and disagreement tests; a group signal must
survive leaving out its strongest member.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .config import FraudConfig
from .consensus import _Prep
from .disagreement import _disagreement_level, _disagreement_stats
from .evidence import _RANK, DetectorResult, Level, _level_max, _level_min, _time_key
from .stats import _fmt_e, _fmt_p, _neg_log10, _r
from .targeting import _Target, _target_evidence, _target_test, _targeting


@dataclass(frozen=True)
class _GroupFinding:
    level: Level
    score: float
    evidence: dict[str, Any]
    members: dict[str, Level]  # member -> level it gets
    member_votes: dict[str, tuple[str, ...]]
    summary: str


def _group_sessions(
    preps: Sequence[_Prep], key: Any, config: FraudConfig
) -> list[tuple[str, list[_Prep]]]:
    """Sessions of votes sharing ``key`` (skipped when empty), split at gaps > group_gap_s."""
    acc: dict[str, list[_Prep]] = defaultdict(list)
    for p in preps:
        k = key(p.vote)
        if k:
            acc[k].append(p)
    out: list[tuple[str, list[_Prep]]] = []
    for k in sorted(acc):
        group = sorted(acc[k], key=lambda p: _time_key(p.vote))
        if len({p.vote.voter for p in group}) < config.group_min_voters:
            continue
        cur: list[_Prep] = [group[0]]
        for prev, p in pairwise(group):
            if p.vote.time_s - prev.vote.time_s > config.group_gap_s:
                out.append((k, cur))
                cur = []
            cur.append(p)
        out.append((k, cur))
    return [(k, s) for k, s in out if len({p.vote.voter for p in s}) >= config.group_min_voters]


def _pooled_targeting(
    decided: Sequence[_Prep], config: FraudConfig, groups: int
) -> tuple[_Target | None, int, Level, dict[str, float]]:
    """Targeting on the pool, then without the member who pushed the flagged model hardest.

    Returns the pooled test, the number of tests, the level that survives leaving
    that member out ("ok" when the pool is not flagged) and each member's push in
    the flagged direction.
    """
    t, tests, _ = _targeting(decided, config, groups)
    contrib: dict[str, float] = {}
    if t is None or t.level == "ok":
        return t, tests, "ok", contrib
    sign = 1.0 if t.direction == "promote" else -1.0
    for p in decided:
        if t.model in p.vote.slots:
            k = p.vote.slots.index(t.model)
            r = sign * ((p.winner == k) - p.probs[k])
            contrib[p.vote.voter] = contrib.get(p.vote.voter, 0.0) + r
    top = max(sorted(contrib), key=lambda v: contrib[v])
    rest = [p for p in decided if p.vote.voter != top and t.model in p.vote.slots]
    ps = [p.probs[p.vote.slots.index(t.model)] for p in rest]
    wins = sum(1 for p in rest if p.vote.slots[p.winner] == t.model)
    loo = _target_test(t.model, t.direction, ps, wins, tests, config) if ps else None
    return t, tests, _level_min(t.level, loo.level if loo is not None else "ok"), contrib


def _pooled_disagreement(
    decided: Sequence[_Prep], config: FraudConfig, groups: int
) -> tuple[dict[str, Any], Level, dict[str, float]]:
    """Disagreement on the pool (time order), likewise without its strongest member.

    Returns the pooled e-process statistics, the level that survives leaving that
    member out and each member's share of the log e-process.
    """
    st = _disagreement_stats(decided, config)
    level = _disagreement_level(st, config, groups)
    contrib: dict[str, float] = {}
    if level == "ok":
        return st, level, contrib
    for p in decided:
        contrib[p.vote.voter] = contrib.get(p.vote.voter, 0.0) + math.log10(
            1.0 - config.bet + config.bet * p.e_noisy(config.disagreement_lapse)
        )
    top = max(sorted(contrib), key=lambda v: contrib[v])
    st_loo = _disagreement_stats([p for p in decided if p.vote.voter != top], config)
    return st, _level_min(level, _disagreement_level(st_loo, config, groups)), contrib


def _member_levels(members: Sequence[str], level: Level, own: dict[str, float]) -> dict[str, Level]:
    """A member whose own votes did not push in the flagged direction gets one level less."""
    lower: dict[Level, Level] = {"strong": "suspicious", "suspicious": "ok", "ok": "ok"}
    return {m: level if own.get(m, 0.0) > 0 else lower[level] for m in members}


def _member_votes(session: Sequence[_Prep]) -> dict[str, tuple[str, ...]]:
    """Per member, the ids of its votes in the session."""
    member_votes: dict[str, list[str]] = defaultdict(list)
    for p in session:
        member_votes[p.vote.voter].append(p.vote.vote_id)
    return {m: tuple(ids) for m, ids in member_votes.items()}


def _group_summary(
    where: str, n_decided: int, target: _Target | None, st: dict[str, Any]
) -> tuple[str, float]:
    """The summary and score of a flagged session: its targeting signal, else its disagreement."""
    if target is not None:
        t = target
        summary = (
            f"{where} whose pooled votes chose {t.model} in {t.observed} of "
            f"{t.n} (expected {t.expected:.1f}; p = {_fmt_p(t.p_adjusted)})"
        )
        return summary, _neg_log10(t.p_adjusted)
    summary = (
        f"{where} whose pooled {n_decided} decided votes disagree with "
        f"the crowd (e-process peak {_fmt_e(st['log10_max_e'])})"
    )
    return summary, st["log10_max_e"]


def _test_group(
    kind: str, key: str, session: list[_Prep], config: FraudConfig, groups: int
) -> _GroupFinding | None:
    """Pooled targeting and disagreement tests of one session, ``groups`` sessions in all.

    Every group gets the individual thresholds divided among all groups tested
    (Bonferroni for the p-values, ``groups`` x the e-value thresholds), so an
    arena with many campuses does not flag one of them by chance.
    """
    decided = [p for p in session if p.decided]
    members = sorted({p.vote.voter for p in session})
    if not decided:
        return None
    t, tests, t_level, contrib = _pooled_targeting(decided, config, groups)
    st, d_level, dcontrib = _pooled_disagreement(decided, config, groups)
    level = _level_max(t_level, d_level)
    if level == "ok":
        return None
    use_target = _RANK[t_level] >= _RANK[d_level]
    t0, t1 = session[0].vote.time_s, session[-1].vote.time_s
    evidence: dict[str, Any] = {
        "group_kind": kind,
        "group_key": key,
        "members": len(members),
        "pooled_votes": len(session),
        "pooled_decided": len(decided),
        "start_s": t0,
        "end_s": t1,
        "signal": "targeting" if use_target else "disagreement",
        "log10_max_e": _r(st["log10_max_e"]),
        "groups_tested": groups,
    }
    target = t if use_target else None
    if target is not None:
        evidence.update(_target_evidence(target, tests))
    where = f"one of {len(members)} voters on {kind} {key[:12]} within {(t1 - t0) / 60:.0f} min"
    summary, score = _group_summary(where, len(decided), target, st)
    return _GroupFinding(
        level,
        _r(score),
        evidence,
        _member_levels(members, level, contrib if use_target else dcontrib),
        _member_votes(session),
        summary,
    )


def _coordination(
    preps: Sequence[_Prep], config: FraudConfig
) -> dict[str, tuple[Level, _GroupFinding]]:
    """Per voter, the most serious group finding it is part of."""
    out: dict[str, tuple[Level, _GroupFinding]] = {}
    keys: list[tuple[str, Any]] = [
        ("prefix", lambda v: v.prefix),
        ("prefix+ua", lambda v: f"{v.prefix}|{v.user_agent}" if v.prefix and v.user_agent else ""),
    ]
    sessions = [(kind, k, s) for kind, key in keys for k, s in _group_sessions(preps, key, config)]
    for kind, k, session in sessions:
        found = _test_group(kind, k, session, config, len(sessions))
        if found is None:
            continue
        for m, lv in found.members.items():
            prev = out.get(m)
            if prev is None or (_RANK[lv], found.score) > (_RANK[prev[0]], prev[1].score):
                out[m] = (lv, found)
    return out


def _coordination_result(voter: str, found: tuple[Level, _GroupFinding] | None) -> DetectorResult:
    if found is None:
        return DetectorResult(
            "coordination", "ok", 0.0, "not part of a flagged group of voters", {}
        )
    level, g = found
    evidence = dict(g.evidence)
    evidence["member_level"] = level
    return DetectorResult(
        "coordination", level, g.score, g.summary, evidence, g.member_votes.get(voter, ())
    )
