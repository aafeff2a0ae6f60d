"""The scan pipeline: every detector on every voter and a verdict each; a voter's choice series."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .campaign import CampaignFinding, _campaign_result, campaign_membership
from .checks import _check_str
from .config import DEFAULT_CONFIG, FraudConfig, _check_config
from .consensus import Consensus, _check_consensus, _Prep, _prepare
from .coordination import _coordination, _coordination_result, _GroupFinding
from .disagreement import _crowd_disagreement, _running_log10
from .echo import _crowd_echo
from .evidence import (
    DETECTORS,
    DetectorResult,
    Level,
    VoteEvidence,
    VoterReport,
    _check_sequence,
    _check_votes,
    _time_key,
)
from .position import _position_bias
from .rate import TrafficBaseline, _prefix_flags, _rate
from .speed import _speed
from .stats import _json
from .targeting import _model_targeting
from .trust import trust_of
from .verdict import caps, decide


def _disabled(detector: str) -> DetectorResult:
    return DetectorResult(detector, "ok", 0.0, "detector disabled", {"enabled": False})


@dataclass(frozen=True)
class _Context:
    """What the detectors of every voter in one scan share."""

    config: FraudConfig
    enabled: frozenset[str]
    limits: dict[str, int]
    prefix_flags: dict[str, list[dict[str, Any]]]
    groups: dict[str, tuple[Level, _GroupFinding]]
    campaigns: dict[str, CampaignFinding]
    ranks: dict[str, int]  # the consensus order, 0 the best (rank rigging)


def _resolve_baseline(
    votes: Sequence[VoteEvidence], config: FraudConfig, baseline: object
) -> TrafficBaseline:
    if baseline is None:
        return TrafficBaseline.from_votes(votes, config=config)
    if not isinstance(baseline, TrafficBaseline):
        raise ValueError(f"baseline: must be a TrafficBaseline or None, got {baseline!r}")
    return baseline


def _check_voters(voters: object) -> None:
    if voters is None:
        return
    if isinstance(voters, str) or not isinstance(voters, Collection):
        raise ValueError(f"voters: must be a collection of voter ids, got {voters!r}")
    for v in voters:
        _check_str("voters", v)


def _context(
    votes: Sequence[VoteEvidence],
    preps: Sequence[_Prep],
    baseline: TrafficBaseline,
    config: FraudConfig,
    campaigns: Sequence[CampaignFinding],
    consensus: Consensus,
) -> _Context:
    """The arena-wide findings: rate limits, busy prefixes and flagged groups (when enabled)."""
    enabled = frozenset(config.detectors)
    limits = baseline.limits(config)
    scores = consensus.scores
    order = sorted(scores, key=lambda m: (-scores[m], m))
    return _Context(
        config,
        enabled,
        limits,
        _prefix_flags(votes, limits, config) if "rate" in enabled else {},
        _coordination(preps, config) if "coordination" in enabled else {},
        campaign_membership(campaigns) if "campaign" in enabled else {},
        {m: i for i, m in enumerate(order)},
    )


def _check_campaigns(campaigns: object) -> Sequence[CampaignFinding]:
    return _check_sequence("campaigns", campaigns, CampaignFinding)


def _detect(
    detector: str,
    voter: str,
    votes: Sequence[VoteEvidence],
    decided: Sequence[_Prep],
    ctx: _Context,
    targeting: DetectorResult | None = None,
) -> DetectorResult:
    """One detector's finding about ``voter`` (``votes`` in time order, ``decided`` among them;
    ``targeting`` the voter's model_targeting finding, which crowd_echo reads)."""
    config = ctx.config
    if detector not in ctx.enabled:
        return _disabled(detector)
    if detector == "crowd_disagreement":
        return _crowd_disagreement(decided, config)
    if detector == "crowd_echo":
        flagged = None
        if targeting is not None and targeting.level != "ok":
            flagged = targeting.evidence.get("model")
        return _crowd_echo(decided, config, flagged)
    if detector == "position_bias":
        return _position_bias(decided, config)
    if detector == "speed":
        return _speed(votes, config)
    if detector == "rate":
        return _rate(votes, ctx.limits, ctx.prefix_flags.get(voter, []), config)
    if detector == "model_targeting":
        return _model_targeting(decided, config, ctx.ranks)
    if detector == "campaign":
        finding = ctx.campaigns.get(voter)
        # A member with a history of its own loses its say on the model, not its identity.
        span = votes[-1].time_s - votes[0].time_s if votes else 0.0
        returning = bool(votes) and trust_of(len(votes), span, config) >= 1.0
        # A unanimous group's members each carry little evidence: never excluded for it.
        unanimous = finding is not None and finding.kind == "unanimous"
        return _campaign_result(
            voter, finding, scoped=finding is not None and (returning or unanimous)
        )
    return _coordination_result(voter, ctx.groups.get(voter))


def _jsonable(r: DetectorResult) -> DetectorResult:
    return DetectorResult(r.detector, r.level, r.score, r.summary, _json(r.evidence), r.vote_ids)


def _report(voter: str, preps: Sequence[_Prep], ctx: _Context) -> VoterReport:
    """Every detector on one voter's votes, and the verdict."""
    mine = sorted(preps, key=lambda p: _time_key(p.vote))
    mine_votes = [p.vote for p in mine]
    decided = [p for p in mine if p.decided]
    targeting = _detect("model_targeting", voter, mine_votes, decided, ctx)
    results = tuple(
        _jsonable(
            targeting
            if d == "model_targeting"
            else _detect(d, voter, mine_votes, decided, ctx, targeting)
        )
        for d in DETECTORS
    )
    verdict, reasons = decide(results, config=ctx.config)
    kept_out: set[str] = set()
    capped = False
    if verdict != "excluded":  # the capping cases of ``decide``
        capped = any(caps(r, ctx.config) for r in results)
        if targeting.level == "strong":
            kept_out |= set(targeting.vote_ids)
        campaign = results[DETECTORS.index("campaign")]
        if caps(campaign, ctx.config):
            model = campaign.evidence["model"]
            kept_out |= {v.vote_id for v in mine_votes if model in v.slots}
    ordered = tuple(v.vote_id for v in mine_votes if v.vote_id in kept_out)
    return VoterReport(voter, verdict, reasons, results, len(mine), ordered, capped)


def scan(
    votes: Sequence[VoteEvidence],
    consensus: Consensus,
    *,
    config: FraudConfig = DEFAULT_CONFIG,
    baseline: TrafficBaseline | None = None,
    voters: Collection[str] | None = None,
    campaigns: Sequence[CampaignFinding] = (),
) -> dict[str, VoterReport]:
    """Run every detector on every voter (or only ``voters``) and give a verdict each.

    ``campaigns`` are the campaign findings in force (``find_campaigns`` over the
    arena's recent votes, see :func:`scan_step`): their members get a strong
    ``campaign`` result.
    ``votes`` is the whole recent log: other voters' votes are context for the
    coordination and prefix-rate checks even when ``voters`` limits the report.
    ``baseline`` None computes it from ``votes``.  Returns reports keyed by
    voter id, sorted; a requested voter without votes gets an "ok" report with
    ``n_votes = 0``.  Deterministic: ties are broken by time, then vote id.
    """
    votes = _check_votes(votes)
    _check_consensus(consensus)
    config = _check_config(config)
    baseline = _resolve_baseline(votes, config, baseline)
    _check_voters(voters)
    campaigns = _check_campaigns(campaigns)
    preps = [_prepare(v, consensus) for v in votes]
    by_voter: dict[str, list[_Prep]] = defaultdict(list)
    for p in preps:
        by_voter[p.vote.voter].append(p)
    wanted = sorted(by_voter if voters is None else set(voters))
    ctx = _context(votes, preps, baseline, config, campaigns, consensus)
    return {voter: _report(voter, by_voter.get(voter, []), ctx) for voter in wanted}


def choice_series(
    votes: Sequence[VoteEvidence],
    consensus: Consensus,
    *,
    config: FraudConfig = DEFAULT_CONFIG,
) -> list[dict[str, Any]]:
    """Per decided vote of ONE voter, in time order, the voter's choice against the crowd.

    Each row: ``vote_id``, ``time_s``, ``p_chosen`` (consensus probability of
    what they chose), ``p_chance`` (1 / number of outcomes) and ``log_e`` (the
    running log10 of the crowd_disagreement e-process with ``config.bet``; the
    detector's thresholds are ``log10(20) = 1.3`` and, by default, ``log10(300) = 2.48``).
    For the admin plot of a voter's choices against the crowd.
    """
    votes = _check_votes(votes)
    _check_consensus(consensus)
    config = _check_config(config)
    if len({v.voter for v in votes}) > 1:
        raise ValueError("votes: must all belong to one voter")
    decided = [p for p in (_prepare(v, consensus) for v in sorted(votes, key=_time_key))]
    decided = [p for p in decided if p.decided]
    path = _running_log10(decided, config.bet, config.disagreement_lapse)
    return [
        {
            "vote_id": p.vote.vote_id,
            "time_s": p.vote.time_s,
            "p_chosen": p.probs[p.winner],
            "p_chance": 1.0 / len(p.probs),
            "log_e": lg,
        }
        for p, lg in zip(decided, path, strict=True)
    ]
