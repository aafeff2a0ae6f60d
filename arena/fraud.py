"""Fraud detection in the arena: scans, verdicts, reviews and the integrity reports.

The statistics live in ``ranking.fraud`` (pure, no Django); this module feeds it the vote log
and acts on its verdicts:

* ``fraud_scan`` (periodic Celery task, incremental): judges the voters of votes cast since the
  last scan (and the voters sharing a network prefix with them), stores each verdict with its
  evidence on ``VoterFlag``, excludes the votes of newly excluded voters, restores those of
  voters detection no longer excludes, replays the online ratings, and writes the audit log.
* ``voter_review``: a reviewer confirms (votes stay out whatever later scans say) or clears (votes
  count again; later scans judge only newer votes, so the same evidence never excludes twice).
* ``arena_integrity`` and ``fraud_impact``: the authenticity rate, exclusions per detector and the
  leaderboard with and without the excluded votes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

import ranking
from arena.leaderboards import (
    _chunks,
    _locked_tally,
    _standings,
    arena_pair_counts,
    leaderboard_rebuild,
    ratings_replay,
    trust_floor,
    voter_weights,
    voters_trust_set,
    votes_exclude,
    votes_restore,
)
from arena.models import (
    SLOT_LABELS,
    Arena,
    AuditAction,
    AuditEntry,
    Campaign,
    FraudScanState,
    GenerativeModel,
    Review,
    Verdict,
    Vote,
    VoteExclusion,
    Voter,
    VoterFlag,
)
from ranking import fraud

# Votes older than this are context only when they share a prefix with a voter being judged:
# coordination and rate look at recent traffic, and the baseline at the arena's normal week.
CONTEXT_DAYS = 7
# The most recent votes read as the arena's traffic baseline (bounds a scan's memory).
CONTEXT_MAX_VOTES = 200_000
# An incremental scan judging more voters than this reads the whole log instead of an IN list
# (SQLite caps a statement at 32,766 parameters).
MAX_IN_VOTERS = 20_000
# Votes created this long before the last scan are looked at again (late commits, seconds).
LATE_COMMIT_MARGIN_S = 120
# How long the traffic baseline is reused by incremental scans (seconds).
BASELINE_TTL_S = 3600
# How often a scan searches the arena's recent votes for campaigns (seconds).
CAMPAIGN_EVERY_S = 3600


# --- evidence ---------------------------------------------------------------------------------

_VOTE_FIELDS = (
    "pk",
    "voter_id",
    "created_at",
    "ranking",
    "slot_ranking",
    "is_partial",
    "time_to_vote_ms",
    "min_view_ms",
    "prefix_hash",
    "user_agent_hash",
    "voter__created_at",
)


def _evidence(row: tuple[Any, ...]) -> fraud.VoteEvidence:
    pk, voter_id, created_at, groups, slot_groups, is_partial, ttv, min_view, prefix, ua, seen = row
    model_by_label = {
        label: str(model_id)
        for model_group, label_group in zip(groups, slot_groups, strict=True)
        for model_id, label in zip(model_group, label_group, strict=True)
    }
    slots = tuple(model_by_label[label] for label in SLOT_LABELS if label in model_by_label)
    model_groups = tuple(tuple(str(m) for m in group) for group in groups)
    return fraud.VoteEvidence(
        vote_id=str(pk),
        voter=str(voter_id),
        time_s=created_at.timestamp(),
        slots=slots,
        ranking=ranking.Ranking(model_groups, partial=bool(is_partial) and len(groups) > 1),
        time_to_vote_ms=int(ttv),
        min_view_ms=max(1, int(min_view)),  # 0: recorded before viewing times were kept
        prefix=prefix,
        user_agent=ua,
        first_seen_s=seen.timestamp() if seen else None,
    )


def arena_consensus(*, arena: Arena) -> fraud.Consensus:
    """The crowd's model: the current Bradley-Terry leaderboard (counted votes only)."""
    snapshot = leaderboard_rebuild(arena=arena, methods=["bradley_terry"]).snapshots[0]
    return fraud.Consensus(
        scores={
            str(row["model_id"]): float(row["score"]) / ranking.LOGIT_TO_ELO
            for row in snapshot.standings
        }
    )


def _votes_of(queryset: Any) -> list[fraud.VoteEvidence]:
    return [_evidence(row) for row in queryset.values_list(*_VOTE_FIELDS)]


# --- scan -------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    arena: str
    voters_scanned: int = 0
    new_votes: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    votes_excluded: int = 0
    votes_restored: int = 0
    votes_reweighted: int = 0
    skipped: int = 0
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "arena": self.arena,
            "voters_scanned": self.voters_scanned,
            "new_votes": self.new_votes,
            "verdicts": dict(self.verdicts),
            "votes_excluded": self.votes_excluded,
            "votes_restored": self.votes_restored,
            "votes_reweighted": self.votes_reweighted,
            "skipped": self.skipped,
            "duration_ms": self.duration_ms,
        }


def _traffic_baseline(
    *, arena: Arena, recent: Any, config: fraud.FraudConfig, refresh: bool
) -> fraud.TrafficBaseline:
    """The arena's normal traffic over the last CONTEXT_DAYS, cached for BASELINE_TTL_S.

    Computing it reads the recent vote log (at most CONTEXT_MAX_VOTES rows), so incremental
    scans reuse it; a full scan refreshes it.
    """
    key = f"arena:fraud-baseline:{arena.pk}"
    cached = None if refresh else cache.get(key)
    if cached is not None:
        return fraud.TrafficBaseline(**cached)
    sample = _votes_of(recent.order_by("-pk")[:CONTEXT_MAX_VOTES])
    baseline = fraud.TrafficBaseline.from_votes(sample, config=config)
    cache.set(key, baseline.to_dict(), BASELINE_TTL_S)
    return baseline


def _result_dicts(report: fraud.VoterReport) -> list[dict[str, Any]]:
    return [
        {
            "detector": r.detector,
            "level": r.level,
            "score": round(float(r.score), 4),
            "summary": r.summary,
            "evidence": r.evidence,
            "vote_ids": [int(v) for v in r.vote_ids][:500],
        }
        for r in report.results
    ]


def fraud_scan(
    *, arena: Arena, full: bool = False, config: fraud.FraudConfig | None = None
) -> ScanResult:
    """Judge the voters of the arena's new votes (all voters when ``full``) and act on it.

    Idempotent: a scan with no new votes changes nothing. Returns what it did.
    """
    started = time.monotonic()
    result = ScanResult(arena=arena.slug)
    state, _ = FraudScanState.objects.get_or_create(arena=arena)
    base = Vote.objects.filter(arena=arena, is_named=False)
    high = base.aggregate(high=Max("pk"))["high"] or 0
    result.new_votes = base.filter(pk__gt=state.last_vote_id).count()
    dirty = _voters_to_judge(state=state, base=base, full=full)
    if not dirty:
        FraudScanState.objects.filter(pk=state.pk).update(
            last_vote_id=max(high, state.last_vote_id), scanned_at=timezone.now()
        )
        return result

    config = replace(config or fraud.DEFAULT_CONFIG, trust_floor=trust_floor())
    recent = base.filter(created_at__gte=timezone.now() - timedelta(days=CONTEXT_DAYS))
    if not full and len(dirty) <= MAX_IN_VOTERS:
        # Voters sharing a network prefix with a voter being judged are judged again too: a
        # sybil group is only visible once its last member has voted.
        prefixes = recent.filter(voter_id__in=dirty).exclude(prefix_hash="").values("prefix_hash")
        dirty |= set(recent.filter(prefix_hash__in=prefixes).values_list("voter_id", flat=True))
    # (Past MAX_IN_VOTERS voters, reading the whole log beats a huge IN list.)
    whole_log = full or len(dirty) > MAX_IN_VOTERS
    flags = _flags_of(arena=arena, dirty=dirty, everyone=whole_log)
    # A cleared voter is judged on votes after the clearance only: never on the same evidence.
    watermark = dict(
        VoterFlag.objects.filter(arena=arena, cleared_through_vote_id__gt=0).values_list(
            "voter_id", "cleared_through_vote_id"
        )
    )

    def after_clearance(votes: list[fraud.VoteEvidence]) -> list[fraud.VoteEvidence]:
        return [v for v in votes if int(v.vote_id) > watermark.get(int(v.voter), 0)]

    # The voters being judged, with every vote of theirs (prefix-mates included, for the
    # coordination and per-prefix rate tests); a full scan reads the whole log.
    evidence = after_clearance(_votes_of(base if whole_log else base.filter(voter_id__in=dirty)))
    # Trust first: the voters' new votes may have earned it, and the counts they are judged
    # against carry every voter's votes at the weight the leaderboards give them.
    result.votes_reweighted = voters_trust_set(
        arena_id=arena.pk, trust=_trust_earned(arena_id=arena.pk, voter_ids=dirty, config=config)
    )
    search = _campaign_search_due(state=state, full=full)
    recent_votes = None
    if search:
        recent_votes = after_clearance(_campaign_window(base=base, config=config))
        seen = {v.vote_id for v in evidence}
        evidence += [v for v in recent_votes if v.vote_id not in seen]
    step = fraud.scan_step(
        evidence,
        arena_counted(arena=arena),
        trust=_weights_now(arena=arena, votes=evidence),
        uncounted=_uncounted(arena=arena),
        judge={str(v) for v in dirty},
        recent=recent_votes,
        campaigns=stored_campaigns(arena=arena),
        config=config,
        baseline=_traffic_baseline(arena=arena, recent=recent, config=config, refresh=full),
    )
    reports = step.reports
    if search:
        _campaigns_store(arena=arena, findings=step.campaigns)
    # Campaign members judged beyond the dirty voters: their flags as they are now.
    extra = {int(v) for v in reports} - set(flags)
    if extra:
        flags |= _flags_of(arena=arena, dirty=extra, everyone=False)
    result.voters_scanned = len(reports)
    changed = _scan_apply(
        arena=arena,
        state=state,
        high=high,
        reports=reports,
        flags=flags,
        everyone=whole_log,
        result=result,
        started=started,
        campaigns_searched=search,
        # Light votes change only with a search; between searches they are already out.
        light_votes=step.excluded_votes if search else (),
    )
    # A voter whose votes on one model went out (or came back) weighs the floor (or its
    # earned trust again) from now on.
    result.votes_reweighted += voters_trust_set(
        arena_id=arena.pk,
        trust=_trust_earned(arena_id=arena.pk, voter_ids=[int(v) for v in reports], config=config),
    )
    if changed or result.votes_reweighted:
        # After the commit: the replay runs mostly without the tally lock (see ratings_replay).
        ratings_replay(arena_id=arena.pk)
    return result


def _uncounted(*, arena: Arena) -> frozenset[str]:
    """The arena's votes its counts do not hold (excluded or kept out), so that the clean
    consensus does not take them out twice."""
    return frozenset(
        str(pk)
        for pk in Vote.objects.filter(arena=arena, exclusion__isnull=False).values_list(
            "pk", flat=True
        )
    )


def _weights_now(*, arena: Arena, votes: Sequence[fraud.VoteEvidence]) -> dict[str, float]:
    """The weight each voter of ``votes`` has in the arena's counts now."""
    weights = voter_weights(arena_id=arena.pk, voter_ids={int(v.voter) for v in votes})
    return {str(v): w for v, w in weights.items()}


def _trust_earned(
    *,
    arena_id: int,
    voter_ids: Iterable[int],
    config: fraud.FraudConfig,
) -> dict[int, float]:
    """Each voter's earned trust (``ranking.fraud.trust_of``) from all its counted-or-not
    votes in the arena: how many, and how far apart the first and the last; at most the floor
    while some of its votes are kept out for targeting one model (``FraudConfig.
    targeting_scoped``) or its latest report caps its trust (a lone strong ``crowd_echo``
    finding that no reviewer cleared), as ``replay_scans`` does."""
    base = Vote.objects.filter(arena_id=arena_id, is_named=False)
    out: dict[int, float] = {}
    for chunk in _chunks(sorted(set(voter_ids))):
        rows = (
            base.filter(voter_id__in=chunk)
            .values("voter_id")
            .annotate(n=Count("pk"), first=Min("created_at"), last=Max("created_at"))
        )
        capped = set(
            base.filter(voter_id__in=chunk, exclusion__reason=TARGETING_REASON)
            .values_list("voter_id", flat=True)
            .distinct()
        )
        capped |= _report_capped(arena_id=arena_id, voter_ids=chunk, config=config)
        for row in rows:
            span = (row["last"] - row["first"]).total_seconds()
            trust = fraud.trust_of(row["n"], span, config)
            if row["voter_id"] in capped:
                trust = min(trust, config.trust_floor)
            out[row["voter_id"]] = trust
    return out


def _report_capped(
    *, arena_id: int, voter_ids: Sequence[int], config: fraud.FraudConfig
) -> set[int]:
    """The voters whose latest report caps their trust (:func:`caps_trust`)."""
    flags = VoterFlag.objects.filter(arena_id=arena_id, voter_id__in=voter_ids).only(
        "voter_id", "verdict", "review", "results"
    )
    return {f.voter_id for f in flags if caps_trust(f, config)}


def caps_trust(flag: VoterFlag, config: fraud.FraudConfig = fraud.DEFAULT_CONFIG) -> str | None:
    """The detector whose capping finding (``ranking.fraud.caps``: a strong crowd echo,
    scoped targeting or campaign membership, a suspicious crowd disagreement, or choices
    likelier under coin flips than under the careless crowd) holds the
    voter's trust at the floor, or None: only while the voter is not excluded, and a reviewer's
    clearance lifts it."""
    if flag.review == Review.CLEARED or flag.verdict == Verdict.EXCLUDED:
        return None
    for r in flag.results or []:
        found = fraud.DetectorResult(
            str(r.get("detector")), r.get("level", "ok"), 0.0, "", dict(r.get("evidence") or {})
        )
        if fraud.caps(found, config):
            return found.detector
    return None


def _campaign_window(
    *, base: QuerySet[Vote], config: fraud.FraudConfig
) -> list[fraud.VoteEvidence]:
    """The votes a campaign search looks at: the last ``campaign_window_s`` (the most recent
    CONTEXT_MAX_VOTES of them)."""
    since = timezone.now() - timedelta(seconds=config.campaign_window_s)
    return _votes_of(base.filter(created_at__gte=since).order_by("-pk")[:CONTEXT_MAX_VOTES])


def _campaign_search_due(*, state: FraudScanState, full: bool) -> bool:
    """Whether this scan searches the recent votes for campaigns (hourly, and on full scans)."""
    last = state.campaigns_scanned_at
    return full or last is None or timezone.now() - last >= timedelta(seconds=CAMPAIGN_EVERY_S)


def arena_counted(*, arena: Arena) -> ranking.PairCounts:
    """The pair counts of the votes the arena's leaderboard counts now."""
    model_ids = list(
        GenerativeModel.objects.filter(arenas=arena).order_by("pk").values_list("pk", flat=True)
    )
    return arena_pair_counts(arena=arena, model_ids=model_ids)


def stored_campaigns(*, arena: Arena) -> list[fraud.CampaignFinding]:
    """The arena's campaigns in force, without the members a reviewer cleared."""
    cleared = {
        str(v)
        for v in VoterFlag.objects.filter(arena=arena, review=Review.CLEARED).values_list(
            "voter_id", flat=True
        )
    }
    out = []
    for row in Campaign.objects.filter(arena=arena).order_by("pk"):
        try:
            out.append(fraud.CampaignFinding.from_dict(row.finding).without(cleared))
        except ValueError:
            continue  # a row written by an incompatible version: found again by the next search
    return out


def _campaigns_store(*, arena: Arena, findings: Sequence[fraud.CampaignFinding]) -> None:
    known = set(GenerativeModel.objects.filter(arenas=arena).values_list("pk", flat=True))
    # A finding with nobody and nothing left (everyone judged afresh and cleared) is gone.
    Campaign.objects.filter(arena=arena).exclude(key__in=[f.key for f in findings]).delete()
    for f in findings:
        model_id = int(f.model) if f.model.isdigit() and int(f.model) in known else None
        Campaign.objects.update_or_create(
            arena=arena,
            key=f.key,
            defaults={
                "model_id": model_id,
                "direction": f.direction,
                "members": len(f.members),
                "start_at": datetime.fromtimestamp(f.start_s, tz=UTC),
                "end_at": datetime.fromtimestamp(f.end_s, tz=UTC),
                "finding": f.to_dict(),
            },
        )


def _voters_to_judge(*, state: FraudScanState, base: QuerySet[Vote], full: bool) -> set[int]:
    """The voters with votes since the last scan (every voter of ``base`` when ``full``)."""
    if full:
        return set(base.values_list("voter_id", flat=True).distinct())
    new_votes = base.filter(pk__gt=state.last_vote_id)
    if state.scanned_at is not None:
        # On PostgreSQL a vote can commit after a scan with a lower id than one the scan saw:
        # the voters of votes from shortly before the last scan are judged again too.
        new_votes = base.filter(
            Q(pk__gt=state.last_vote_id)
            | Q(created_at__gte=state.scanned_at - timedelta(seconds=LATE_COMMIT_MARGIN_S))
        )
    return set(new_votes.values_list("voter_id", flat=True).distinct())


def _flags_of(*, arena: Arena, dirty: set[int], everyone: bool) -> dict[int, VoterFlag]:
    """The arena's flags of the voters in ``dirty`` (read unfiltered when ``everyone``)."""
    if everyone:
        return {f.voter_id: f for f in VoterFlag.objects.filter(arena=arena) if f.voter_id in dirty}
    return {f.voter_id: f for f in VoterFlag.objects.filter(arena=arena, voter_id__in=dirty)}


def _scan_apply(
    *,
    arena: Arena,
    state: FraudScanState,
    high: int,
    reports: dict[str, fraud.VoterReport],
    flags: dict[int, VoterFlag],
    everyone: bool,
    result: ScanResult,
    started: float,
    campaigns_searched: bool = False,
    light_votes: Iterable[str] = (),
) -> bool:
    """Act on the scan's verdicts under the arena's locks; true when any vote changed side."""
    with transaction.atomic():
        # Lock order everywhere: the arena's tally, then flags (reviews and votes do the same).
        # Scans of one arena are serialised here; each re-reads the flags under the lock.
        _locked_tally(arena.pk)
        locked = FraudScanState.objects.select_for_update().get(pk=state.pk)
        fresh = _flags_locked(arena=arena, voter_ids=[int(v) for v in reports], everyone=everyone)
        changed = False
        for voter_key in sorted(reports):
            report, voter_id = reports[voter_key], int(voter_key)
            before, now_flag = flags.get(voter_id), fresh.get(voter_id)
            if _review_key(before) != _review_key(now_flag):
                # A reviewer decided (or another scan judged) while this scan computed: its
                # evidence is stale for this voter, whom the next scan judges afresh.
                result.skipped += 1
                continue
            excluded, restored = _apply_report(
                arena=arena, voter_id=voter_id, report=report, flag=now_flag
            )
            result.verdicts[report.verdict] += 1
            result.votes_excluded += excluded
            result.votes_restored += restored
            changed = changed or bool(excluded or restored)
        light = _light_votes_exclude(arena=arena, vote_ids=light_votes)
        result.votes_excluded += light
        changed = changed or bool(light)
        locked.last_vote_id = max(high, locked.last_vote_id)
        locked.scanned_at = timezone.now()
        if campaigns_searched:
            locked.campaigns_scanned_at = locked.scanned_at
        locked.voters_scanned = result.voters_scanned
        result.duration_ms = int((time.monotonic() - started) * 1000)
        locked.duration_ms = result.duration_ms
        locked.save()
    return changed


#: Reason of the exclusions of light identities' votes on a model pushed as a whole.
LIGHT_REASON = "campaign: light identities' votes on a model pushed as a whole"


def _light_votes_exclude(*, arena: Arena, vote_ids: Iterable[str]) -> int:
    """Keep out the light identities' votes that campaign findings name (no voter is flagged)."""
    ids = sorted({int(v) for v in vote_ids})
    votes: list[Vote] = []
    for start in range(0, len(ids), MAX_IN_VOTERS):
        chunk = ids[start : start + MAX_IN_VOTERS]
        votes += Vote.objects.filter(
            arena=arena, pk__in=chunk, exclusion__isnull=True, is_named=False
        ).order_by("pk")
    return votes_exclude(arena_id=arena.pk, votes=votes, reason=LIGHT_REASON, reasons=["campaign"])


def _review_key(flag: VoterFlag | None) -> tuple[Any, ...]:
    """What a scan's judgement depends on besides the votes: the flag's review state."""
    if flag is None:
        return (None,)
    return (flag.pk, flag.review, flag.reviewed_at, flag.cleared_through_vote_id, flag.verdict)


def _flags_locked(
    *, arena: Arena, voter_ids: Sequence[int], everyone: bool
) -> dict[int, VoterFlag]:
    """The arena's flags of ``voter_ids``, re-read and row-locked in pk order."""
    flags = VoterFlag.objects.select_for_update().filter(arena=arena).order_by("pk")
    if everyone:
        wanted = set(voter_ids)
        return {f.voter_id: f for f in flags if f.voter_id in wanted}
    out: dict[int, VoterFlag] = {}
    for start in range(0, len(voter_ids), MAX_IN_VOTERS):
        chunk = voter_ids[start : start + MAX_IN_VOTERS]
        out |= {f.voter_id: f for f in flags.filter(voter_id__in=chunk)}
    return out


def _apply_report(
    *, arena: Arena, voter_id: int, report: fraud.VoterReport, flag: VoterFlag | None
) -> tuple[int, int]:
    """Store one verdict and move the voter's votes in or out of the leaderboards."""
    now = timezone.now()
    was_excluding = flag is not None and flag.is_excluding
    previous_verdict = flag.verdict if flag is not None else Verdict.OK
    if flag is None:
        flag = VoterFlag(arena=arena, voter_id=voter_id, scanned_at=now)
    if flag.review == Review.CLEARED and report.verdict == Verdict.EXCLUDED:
        # New evidence (only votes after the clearance are judged): back to the review queue.
        # The clearance still covers the older votes, through cleared_through_vote_id.
        flag.review = Review.UNREVIEWED
    flag.verdict = report.verdict
    flag.reasons = list(report.reasons)
    flag.results = _result_dicts(report)
    flag.n_votes = report.n_votes
    flag.scanned_at = now
    flag.save()
    excluded = restored = 0
    if flag.is_excluding and not was_excluding:
        votes = list(
            Vote.objects.filter(
                arena=arena,
                voter_id=voter_id,
                is_named=False,
                pk__gt=flag.cleared_through_vote_id,
            ).order_by("pk")
        )
        excluded = votes_exclude(
            arena_id=arena.pk,
            votes=votes,
            reason=f"fraud detection: {', '.join(report.reasons)}",
            reasons=list(report.reasons),
        )
        _audit(arena, voter_id, AuditAction.AUTO_EXCLUDED, report, excluded=excluded)
    elif was_excluding and not flag.is_excluding:
        # The voter's own exclusion ends; votes kept out with the light identities' as a whole
        # stay out.
        votes = list(
            Vote.objects.filter(arena=arena, voter_id=voter_id, exclusion__isnull=False)
            .exclude(exclusion__reason=LIGHT_REASON)
            .order_by("pk")
        )
        restored = votes_restore(arena_id=arena.pk, votes=votes)
        _audit(arena, voter_id, AuditAction.AUTO_CLEARED, report, restored=restored)
    elif report.verdict == Verdict.SUSPICIOUS and previous_verdict != Verdict.SUSPICIOUS:
        _audit(arena, voter_id, AuditAction.AUTO_SUSPECTED, report)
    out, back = _kept_out_sync(arena=arena, voter_id=voter_id, report=report, flag=flag)
    if out or back:
        _audit(arena, voter_id, AuditAction.AUTO_SUSPECTED, report, excluded=out, restored=back)
    return excluded + out, restored + back


#: Reason of the exclusions of a voter's votes where one model was shown (a strong
#: model-targeting finding with no other evidence: the voter itself is not excluded).
TARGETING_REASON = "model targeting: this voter's votes where the model was shown"


def _kept_out_sync(
    *, arena: Arena, voter_id: int, report: fraud.VoterReport, flag: VoterFlag
) -> tuple[int, int]:
    """Keep out exactly the report's ``kept_out`` votes of a voter who is not excluded:
    returns (newly kept out, counted again). Nothing moves for an excluded or confirmed
    voter (all their votes are out already)."""
    if flag.is_excluding or flag.review == Review.CONFIRMED:
        return 0, 0
    wanted = {int(v) for v in report.kept_out}
    mine = Vote.objects.filter(arena=arena, voter_id=voter_id)
    current = set(mine.filter(exclusion__reason=TARGETING_REASON).values_list("pk", flat=True))
    add: list[Vote] = []
    for start in range(0, len(wanted - current), MAX_IN_VOTERS):
        chunk = sorted(wanted - current)[start : start + MAX_IN_VOTERS]
        add += mine.filter(pk__in=chunk, is_named=False, pk__gt=flag.cleared_through_vote_id)
    back: list[Vote] = []
    for start in range(0, len(current - wanted), MAX_IN_VOTERS):
        back += mine.filter(pk__in=sorted(current - wanted)[start : start + MAX_IN_VOTERS])
    reasons = [r.detector for r in report.results if r.level == "strong"] or ["model_targeting"]
    out = votes_exclude(arena_id=arena.pk, votes=add, reason=TARGETING_REASON, reasons=reasons)
    return out, votes_restore(arena_id=arena.pk, votes=back)


def _audit(
    arena: Arena,
    voter_id: int,
    action: str,
    report: fraud.VoterReport,
    *,
    excluded: int = 0,
    restored: int = 0,
) -> None:
    summaries = [r.summary for r in report.results if r.detector in report.reasons]
    AuditEntry.objects.create(
        arena=arena,
        voter_id=voter_id,
        action=action,
        reasons=list(report.reasons),
        note="; ".join(summaries)[:2000],
        votes_excluded=excluded,
        votes_restored=restored,
    )


def fraud_scan_all(*, full: bool = False) -> list[ScanResult]:
    """Scan every active arena (the periodic task)."""
    return [
        fraud_scan(arena=arena, full=full)
        for arena in Arena.objects.filter(is_active=True).order_by("pk")
    ]


# --- review -----------------------------------------------------------------------------------


class ReviewError(ValueError):
    """A review action that cannot be taken (unknown action, empty note where one is needed)."""


REVIEW_ACTIONS = ("confirm", "clear")


def voter_review(*, flag: VoterFlag, action: str, actor: Any, note: str = "") -> AuditEntry:
    """A reviewer's decision on a flagged voter, applied to their votes and written to the log.

    ``confirm``: every vote of the voter in the arena stays out of the leaderboards, whatever
    later scans say. ``clear``: their excluded votes count again, and later scans judge only
    votes cast after this decision.
    """
    if action not in REVIEW_ACTIONS:
        raise ReviewError(f"Unknown review action {action!r}; use confirm or clear.")
    note = note.strip()[:2000]
    with transaction.atomic():
        _locked_tally(flag.arena_id)  # the lock order of scans and votes: tally, then flag
        flag = VoterFlag.objects.select_for_update().get(pk=flag.pk)
        votes = list(
            Vote.objects.filter(arena_id=flag.arena_id, voter_id=flag.voter_id, is_named=False)
            .select_related(None)
            .order_by("pk")
        )
        excluded = restored = reweighted = 0
        if action == "confirm":
            flag.review = Review.CONFIRMED
            reasons = list(flag.reasons) or ["admin"]
            excluded = votes_exclude(
                arena_id=flag.arena_id,
                votes=votes,
                reason=f"confirmed by a reviewer: {', '.join(reasons)}",
                reasons=reasons,
            )
            audit_action = AuditAction.CONFIRMED
        else:
            flag.review = Review.CLEARED
            flag.cleared_through_vote_id = votes[-1].pk if votes else 0
            restored = votes_restore(arena_id=flag.arena_id, votes=votes)
            flag.save(update_fields=["review", "cleared_through_vote_id"])
            # Votes kept out for targeting one model are back, and the report no longer caps
            # the voter's trust: its earned trust counts again.
            reweighted = voters_trust_set(
                arena_id=flag.arena_id,
                trust=_trust_earned(
                    arena_id=flag.arena_id,
                    voter_ids=[flag.voter_id],
                    config=replace(fraud.DEFAULT_CONFIG, trust_floor=trust_floor()),
                ),
            )
            audit_action = AuditAction.CLEARED
        flag.reviewed_by = actor if getattr(actor, "is_authenticated", False) else None
        flag.reviewed_at = timezone.now()
        flag.save()
        entry = AuditEntry.objects.create(
            arena_id=flag.arena_id,
            voter_id=flag.voter_id,
            action=audit_action,
            actor=flag.reviewed_by,
            note=note,
            reasons=list(flag.reasons),
            votes_excluded=excluded,
            votes_restored=restored,
        )
    if excluded or restored or reweighted:
        ratings_replay(arena_id=flag.arena_id)
    return entry


# --- reports (selectors) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Integrity:
    voters: int
    voters_kept: int
    votes: int
    votes_kept: int
    by_detector: list[tuple[str, int]]
    awaiting_review: int
    last_scan_at: Any

    @property
    def voter_authenticity(self) -> float | None:
        return self.voters_kept / self.voters if self.voters else None

    @property
    def vote_authenticity(self) -> float | None:
        return self.votes_kept / self.votes if self.votes else None


def arena_integrity(*, arena: Arena) -> Integrity:
    """Authenticity (share of voters and votes kept), exclusions per detector, review backlog."""
    votes = Vote.objects.filter(arena=arena, is_named=False)
    totals = votes.aggregate(
        votes=Count("pk"),
        excluded=Count("pk", filter=Q(exclusion__isnull=False)),
        voters=Count("voter_id", distinct=True),
    )
    excluded_voters = votes.filter(exclusion__isnull=False).values("voter_id").distinct().count()
    per_detector: Counter[str] = Counter()
    for reasons in VoteExclusion.objects.filter(vote__arena=arena).values_list(
        "reasons", flat=True
    ):
        for reason in reasons or ["admin"]:
            per_detector[reason] += 1
    state = FraudScanState.objects.filter(arena=arena).first()
    return Integrity(
        voters=totals["voters"],
        voters_kept=totals["voters"] - excluded_voters,
        votes=totals["votes"],
        votes_kept=totals["votes"] - totals["excluded"],
        by_detector=sorted(per_detector.items(), key=lambda kv: (-kv[1], kv[0])),
        awaiting_review=review_queue(arena=arena).count(),
        last_scan_at=state.scanned_at if state else None,
    )


def review_queue(*, arena: Arena) -> Any:
    """Flagged voters not yet reviewed: excluded first, then suspicious, most votes first."""
    return (
        VoterFlag.objects.filter(
            arena=arena,
            review=Review.UNREVIEWED,
            verdict__in=[Verdict.EXCLUDED, Verdict.SUSPICIOUS],
        )
        .select_related("voter")
        .order_by("verdict", "-n_votes", "pk")
    )


@dataclass(frozen=True)
class ImpactRow:
    model: str
    slug: str
    rank_all: int
    rank_kept: int
    score_all: float
    score_kept: float

    @property
    def rank_change(self) -> int:
        """Positive: the model climbs once the excluded votes are dropped."""
        return self.rank_all - self.rank_kept

    @property
    def score_change(self) -> float:
        return round(self.score_kept - self.score_all, 1)


def fraud_impact(*, arena: Arena) -> list[ImpactRow]:
    """Bradley-Terry leaderboard with all votes vs with the excluded votes dropped.

    Reads the aggregated pair counts (the kept votes) plus the excluded votes only, so it is
    cheap while few votes are excluded.
    """
    models = {m.pk: m for m in GenerativeModel.objects.filter(arenas=arena).order_by("pk")}
    model_ids = sorted(models)
    if not model_ids:
        return []
    kept = arena_pair_counts(arena=arena, model_ids=model_ids)
    everything = arena_pair_counts(arena=arena, model_ids=model_ids)
    known = {str(pk) for pk in model_ids}
    excluded = list(
        Vote.objects.filter(arena=arena, exclusion__isnull=False, is_named=False).values_list(
            "ranking", "is_partial", "voter_id"
        )
    )
    # Each excluded vote as it would count: at its voter's weight.
    weights = voter_weights(arena_id=arena.pk, voter_ids={row[2] for row in excluded})
    for groups, is_partial, voter_id in excluded:
        vote = ranking.Ranking(
            tuple(tuple(str(m) for m in g) for g in groups),
            partial=bool(is_partial) and len(groups) > 1,
        )
        if known.issuperset(vote.players):  # a model since removed from the arena: skipped
            everything.add(vote, weights[voter_id])
    rows_all = {r.player: r for r in _standings("bradley_terry", everything, {})}
    rows_kept = {r.player: r for r in _standings("bradley_terry", kept, {})}
    out = [
        ImpactRow(
            model=models[int(p)].name,
            slug=models[int(p)].slug,
            rank_all=rows_all[p].rank,
            rank_kept=rows_kept[p].rank,
            score_all=round(rows_all[p].score, 1),
            score_kept=round(rows_kept[p].score, 1),
        )
        for p in rows_kept
    ]
    return sorted(out, key=lambda r: (r.rank_kept, -r.score_kept, r.slug))


@dataclass(frozen=True)
class CampaignRow:
    """A campaign as the review page shows it."""

    model: str
    direction: str
    start_at: Any
    end_at: Any
    members: list[Any]  # Voter rows, at most CAMPAIGN_MEMBERS_SHOWN
    n_members: int
    expected_members: float
    eligible: int
    p_adjusted: float
    influence: list[tuple[str, int]]  # (model name, Elo moved by the members' votes)
    summary: str


CAMPAIGN_MEMBERS_SHOWN = 50


def arena_campaigns(*, arena: Arena) -> list[CampaignRow]:
    """The arena's campaigns with their evidence: the model, the window, the identities and
    how far their votes moved each model (most recent first)."""
    names = {str(m.pk): m.name for m in GenerativeModel.objects.filter(arenas=arena)}
    rows = list(Campaign.objects.filter(arena=arena).order_by("-updated_at", "-pk"))
    wanted = {
        int(v)
        for row in rows
        for v in row.finding.get("members", [])[:CAMPAIGN_MEMBERS_SHOWN]
        if str(v).isdigit()
    }
    voters = {v.pk: v for v in Voter.objects.filter(pk__in=wanted)}
    out = []
    for row in rows:
        f = row.finding
        members = [
            voters[int(v)]
            for v in f.get("members", [])[:CAMPAIGN_MEMBERS_SHOWN]
            if str(v).isdigit() and int(v) in voters
        ]
        influence = [
            (names.get(m, f"model {m}"), round(float(x) * ranking.LOGIT_TO_ELO))
            for m, x in f.get("influence", {}).items()
        ]
        out.append(
            CampaignRow(
                model=names.get(str(f.get("model")), f"model {f.get('model')}"),
                direction=row.direction,
                start_at=row.start_at,
                end_at=row.end_at,
                members=members,
                n_members=row.members,
                expected_members=float(f.get("expected_members", 0.0)),
                eligible=int(f.get("eligible", 0)),
                p_adjusted=float(f.get("p_adjusted", 1.0)),
                influence=influence,
                summary=str(f.get("summary", "")),
            )
        )
    return out


def voter_choice_series(*, flag: VoterFlag) -> list[dict[str, Any]]:
    """The reviewer's plot data: each of the voter's decided votes against the crowd."""
    arena = flag.arena
    votes = _votes_of(
        Vote.objects.filter(arena=arena, voter_id=flag.voter_id, is_named=False).order_by("pk")
    )
    return fraud.choice_series(votes, arena_consensus(arena=arena))


def voters_flag_summary(*, flags: Iterable[VoterFlag]) -> dict[int, list[dict[str, Any]]]:
    """Per flag id, the detectors that fired (level above ok), strongest first."""
    order = {"strong": 0, "suspicious": 1, "ok": 2}
    return {
        flag.pk: sorted(
            (r for r in flag.results if r.get("level") != "ok"),
            key=lambda r: order.get(r.get("level", "ok"), 3),
        )
        for flag in flags
    }


__all__: Sequence[str] = [
    "REVIEW_ACTIONS",
    "CampaignRow",
    "ImpactRow",
    "Integrity",
    "ReviewError",
    "ScanResult",
    "arena_campaigns",
    "arena_consensus",
    "arena_counted",
    "arena_integrity",
    "fraud_impact",
    "fraud_scan",
    "fraud_scan_all",
    "review_queue",
    "stored_campaigns",
    "voter_choice_series",
    "voter_review",
    "voters_flag_summary",
]
