"""One periodic scan (:func:`scan_step`) and the whole log replayed scan by scan (:func:`replay_scans`).

The web app's periodic scan and the simulators call the same :func:`scan_step`:

1. **a clean consensus**: the counted votes minus those of the voters under
   judgement, so a burst is never judged against a consensus it dominates;
2. **campaigns** over the arena's recent votes (``find_campaigns``), merged with
   the ones in force: the identities the search saw are judged afresh, those
   whose votes have left its window stay members (a campaign that stops voting
   is still a campaign);
3. **every detector** on the voters to judge and on the campaigns' members.

:func:`replay_scans` runs the log through :func:`scan_step` every
``scan_every_s`` seconds of vote time, as production would have, and judges
every voter once more at the end against the mature arena (bursts on a young
arena are re-judged).  It is a deterministic function of the votes.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from ..bradley_terry import fit_bradley_terry
from ..counts import PairCounts
from .campaign import CampaignFinding, _pair_arrays, find_campaigns, model_shares
from .config import DEFAULT_CONFIG, FraudConfig, _check_config
from .consensus import Consensus, _prepare
from .evidence import Verdict, VoteEvidence, VoterReport, _check_votes, _time_key
from .pipeline import _check_campaigns, scan
from .rate import TrafficBaseline
from .trust import trust_of, vote_weights


@dataclass(frozen=True)
class StepResult:
    """What one scan found: a report per judged voter, the campaigns in force, the consensus."""

    reports: dict[str, VoterReport]
    campaigns: tuple[CampaignFinding, ...]
    consensus: Consensus

    @property
    def excluded_votes(self) -> frozenset[str]:
        """Votes kept out as a whole (light identities' votes on a pushed model), whoever cast
        them; the votes of excluded voters come on top (their reports)."""
        return frozenset(v for f in self.campaigns for v in f.vote_ids)


def _with_arrays(
    counted: PairCounts, wins: NDArray[np.float64], ties: NDArray[np.float64]
) -> PairCounts:
    out = copy.copy(counted)
    out.wins, out.ties = wins, ties
    return out


def clean_consensus(
    counted: PairCounts,
    judged_votes: Sequence[VoteEvidence],
    *,
    l2: float = 0.1,
    trust: Mapping[str, float] | None = None,
    uncounted: Collection[str] = frozenset(),
) -> Consensus:
    """The Bradley-Terry consensus of ``counted`` without ``judged_votes`` (those among them).

    ``trust``: the weight each voter's votes carry in ``counted`` (voters not in it: 1).
    ``uncounted``: ids of votes ``counted`` does not hold (kept out): they are not taken out
    twice.

    When the judged votes are most of the counted ones (a young arena, a full scan), leaving
    them out would leave too little to judge against, so they stay in.
    """
    players = counted.players
    index = {p: i for i, p in enumerate(players)}
    mine_w, mine_t = _pair_arrays(
        (
            v
            for v in judged_votes
            if v.vote_id not in uncounted and all(m in index for m in v.slots)
        ),
        index,
        trust,
    )
    wins, ties = counted.wins - mine_w, counted.ties - mine_t
    if wins.sum() + ties.sum() >= 0.5 * (counted.wins.sum() + counted.ties.sum()):
        clean = _with_arrays(counted, wins.clip(min=0.0), ties.clip(min=0.0))
    else:
        clean = counted
    theta = fit_bradley_terry(clean, l2)
    return Consensus({p: float(t) for p, t in zip(players, theta, strict=True)})


def merge_campaigns(
    old: Sequence[CampaignFinding],
    new: Sequence[CampaignFinding],
    searched: Sequence[VoteEvidence] = (),
) -> tuple[CampaignFinding, ...]:
    """The campaigns in force after a search of the votes ``searched``.

    The search judged again every identity and vote it saw: for them the new findings
    decide.  Members (and votes) of earlier findings that it did not see any more (their
    votes have left the window) stay, so a campaign cannot wait its way back in.  A
    finding left with neither members nor votes is dropped.
    """
    seen_voters = {v.voter for v in searched}
    seen_votes = {v.vote_id for v in searched}
    merged: dict[str, CampaignFinding] = {}
    for f in old:
        kept = f.without(seen_voters)
        kept = replace(kept, vote_ids=tuple(v for v in f.vote_ids if v not in seen_votes))
        if kept.members or kept.vote_ids:
            merged[f.key] = kept
    for f in new:
        prev = merged.get(f.key)
        if prev is not None:
            f = replace(
                f,
                members=tuple(sorted(set(prev.members) | set(f.members))),
                start_s=min(prev.start_s, f.start_s),
                member_evidence={**prev.member_evidence, **f.member_evidence},
                member_votes={**prev.member_votes, **f.member_votes},
                vote_ids=tuple(sorted(set(prev.vote_ids) | set(f.vote_ids))),
            )
        merged[f.key] = f
    return tuple(sorted(merged.values(), key=lambda f: (f.p_adjusted, f.key)))


def scan_step(
    votes: Sequence[VoteEvidence],
    counted: PairCounts,
    *,
    judge: Collection[str] | None = None,
    recent: Sequence[VoteEvidence] | None = None,
    campaigns: Sequence[CampaignFinding] = (),
    config: FraudConfig = DEFAULT_CONFIG,
    baseline: TrafficBaseline | None = None,
    trust: Mapping[str, float] | None = None,
    uncounted: Collection[str] = frozenset(),
) -> StepResult:
    """One periodic scan of an arena.

    ``votes``: every vote of the voters to judge plus context (their prefix-mates).
    ``counted``: the pair counts of the votes the leaderboard counts now.
    ``judge``: the voters to judge (None: every voter of ``votes``).
    ``recent``: the arena's recent votes to look for campaigns in (None: no campaign
    search this time, the ``campaigns`` in force still apply).
    ``trust``: the weight each voter's votes carry in ``counted`` (voters not in it: 1).
    ``uncounted``: ids of the votes among ``votes`` and ``recent`` that ``counted`` does not
    hold (excluded or kept out), so the clean consensus does not take them out twice.
    Campaign members are judged too, so their verdicts follow the finding.
    """
    votes = _check_votes(votes)
    config = _check_config(config)
    campaigns = _check_campaigns(campaigns)
    before = {m for f in campaigns for m in f.members}
    if not isinstance(counted, PairCounts):
        raise ValueError(f"counted: must be a PairCounts, got {type(counted).__name__}")
    wanted = set(judge) if judge is not None else {v.voter for v in votes}
    judged = [v for v in votes if v.voter in wanted]
    uncounted = frozenset(uncounted)
    consensus = clean_consensus(counted, judged, trust=trust, uncounted=uncounted)
    if recent is not None:
        recent = _check_votes(recent)
        # Campaigns are judged against what established identities show and choose: a
        # campaign of fresh identities inflates neither its model's exposure rate nor its score.
        per_voter = Counter(v.voter for v in recent)
        light = [v for v in recent if per_voter[v.voter] < config.campaign_established_votes]
        established = [v for v in recent if per_voter[v.voter] >= config.campaign_established_votes]
        base = established if len(established) >= 0.3 * len(recent) else recent
        shares = model_shares(base) if base else {}
        suspects_out = clean_consensus(counted, light, trust=trust, uncounted=uncounted)
        preps = [_prepare(v, suspects_out) for v in recent]
        campaigns = merge_campaigns(campaigns, find_campaigns(preps, shares, config), recent)
    # Members old and new are judged, so a verdict follows its identity in or out of a campaign.
    members = before | {m for f in campaigns for m in f.members}
    present = {v.voter for v in votes}
    reports = scan(
        votes,
        consensus,
        config=config,
        baseline=baseline,
        voters=wanted | (members & present),
        campaigns=campaigns,
    )
    return StepResult(reports, tuple(campaigns), consensus)


# -- replay ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of the last scan of a replayed log.

    ``excluded``: vote ids kept out of the leaderboard (excluded voters' votes, the votes a
    report keeps out on its own (``VoterReport.kept_out``) and the light identities' votes on
    models they were found pushing as a whole); ``weights``: per counted
    vote id a weight below 1, its voter's earned trust (``trust`` module; votes not listed count
    fully); ``trust``: each voter's trust; ``verdicts``: each voter's last verdict;
    ``reports``: the reports behind them; ``campaigns``: the campaigns found; ``scans``: how
    many scans ran.
    """

    excluded: frozenset[str]
    weights: dict[str, float]
    verdicts: dict[str, Verdict]
    reports: dict[str, VoterReport]
    campaigns: tuple[CampaignFinding, ...]
    scans: int
    stats: dict[str, float] = field(default_factory=dict)
    trust: dict[str, float] = field(default_factory=dict)


@dataclass
class _ReplayState:
    """The replay's view of the arena: votes by voter, verdicts, trust and the counts the
    leaderboard counts now (each voter's votes weighted by its trust; ``out`` holds each
    voter's votes kept out: all of an excluded voter's, or a report's ``kept_out``)."""

    players: list[str]
    counted: PairCounts
    config: FraudConfig = DEFAULT_CONFIG
    by_voter: dict[str, list[VoteEvidence]] = field(default_factory=lambda: defaultdict(list))
    by_prefix: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    reports: dict[str, VoterReport] = field(default_factory=dict)
    excluded_voters: set[str] = field(default_factory=set)
    out: dict[str, frozenset[str]] = field(default_factory=dict)
    judged_at_size: dict[str, int] = field(default_factory=dict)
    campaigns: tuple[CampaignFinding, ...] = ()
    baseline: TrafficBaseline | None = None
    seen: int = 0
    trust: dict[str, float] = field(default_factory=dict)

    def add(self, v: VoteEvidence) -> None:
        self.by_voter[v.voter].append(v)
        if v.prefix:
            self.by_prefix[v.prefix].add(v.voter)
        weight = self.trust.setdefault(v.voter, self.config.trust_floor)
        if v.voter in self.excluded_voters:
            self.out[v.voter] = self.out.get(v.voter, frozenset()) | {v.vote_id}
        else:
            self.counted.add(v.ranking, weight)
        self.seen += 1

    def earn(self, voters: Collection[str]) -> None:
        """Update the trust of ``voters`` (after new votes) and their votes' weight."""
        for voter in sorted(voters):
            self._retrust(voter)

    def _retrust(self, voter: str) -> None:
        """Set the voter's trust from its history (at most the floor while a report keeps some
        of its votes out or caps its trust) and move its counted votes to the new weight."""
        votes = self.by_voter[voter]
        now = trust_of(len(votes), votes[-1].time_s - votes[0].time_s, self.config)
        rep = self.reports.get(voter)
        if rep is not None and (rep.kept_out or rep.trust_capped) and rep.verdict != "excluded":
            now = min(now, self.config.trust_floor)
        was = self.trust[voter]
        if now != was:
            self.trust[voter] = now
            out = self.out.get(voter, frozenset())
            self._move(voter, now - was, [v for v in votes if v.vote_id not in out])

    def apply(self, reports: dict[str, VoterReport]) -> None:
        """Store verdicts; move the votes that went out or came back in."""
        for voter, rep in reports.items():
            self.reports[voter] = rep
            self.judged_at_size[voter] = self.seen
            votes = self.by_voter[voter]
            if rep.verdict == "excluded":
                self.excluded_voters.add(voter)
                now = frozenset(v.vote_id for v in votes)
            else:
                self.excluded_voters.discard(voter)
                now = frozenset(rep.kept_out)
            was = self.out.get(voter, frozenset())
            if now != was:
                self.out[voter] = now
                self._move(voter, -self.trust[voter], [v for v in votes if v.vote_id in now - was])
                self._move(voter, +self.trust[voter], [v for v in votes if v.vote_id in was - now])
            self._retrust(voter)

    def uncounted(self) -> frozenset[str]:
        """The votes the counts do not hold: excluded voters' and reports' kept-out votes.
        (The light identities' votes that campaigns cut stay in the counts the replay judges
        against; they leave the leaderboard it returns.)"""
        return frozenset(v for out in self.out.values() for v in out)

    def _move(self, voter: str, weight: float, votes: Sequence[VoteEvidence]) -> None:
        """Add ``weight`` times ``votes`` to the counts (a negative one takes them out)."""
        if not votes or not weight:
            return
        index = {p: i for i, p in enumerate(self.players)}
        wins, ties = _pair_arrays(votes, index)
        self.counted.wins = (self.counted.wins + weight * wins).clip(min=0.0)
        self.counted.ties = (self.counted.ties + weight * ties).clip(min=0.0)

    def context(self, judge: set[str]) -> list[VoteEvidence]:
        """The judged voters' votes and their prefix-mates' (coordination, prefix rate)."""
        voters = set(judge)
        for voter in judge:
            for v in self.by_voter[voter][-1:]:
                if v.prefix:
                    voters |= self.by_prefix[v.prefix]
        return [v for voter in sorted(voters) for v in self.by_voter[voter]]


def _window(votes: Sequence[VoteEvidence], end: int, span_s: float) -> list[VoteEvidence]:
    """The votes among ``votes[:end]`` (time-sorted) cast within ``span_s`` of the last."""
    if end == 0:
        return []
    t_end = votes[end - 1].time_s
    start = end
    while start > 0 and votes[start - 1].time_s > t_end - span_s:
        start -= 1
    return list(votes[start:end])


def replay_scans(
    votes: Sequence[VoteEvidence],
    scan_every_s: float = 300.0,
    *,
    config: FraudConfig = DEFAULT_CONFIG,
    campaign_every_s: float = 21_600.0,
) -> ReplayResult:
    """Replay the log through :func:`scan_step` as production would have scanned it.

    Every ``scan_every_s`` seconds of vote time the voters with new votes are judged;
    every ``campaign_every_s`` the recent votes are searched for campaigns and the
    voters judged when the arena had under half its votes are judged again.  After
    the last vote every voter is judged once more against the mature arena.
    """
    votes = sorted(_check_votes(votes), key=_time_key)
    config = _check_config(config)
    for name, value in (("scan_every_s", scan_every_s), ("campaign_every_s", campaign_every_s)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name}: must be a number > 0, got {value!r}")
    players = sorted({m for v in votes for m in v.slots})
    state = _ReplayState(players, PairCounts(players), config)
    scans = 0
    i = 0
    next_campaign = votes[0].time_s + campaign_every_s if votes else 0.0
    while i < len(votes):
        t_scan = votes[i].time_s + scan_every_s
        judge: set[str] = set()
        while i < len(votes) and votes[i].time_s < t_scan:
            state.add(votes[i])
            judge.add(votes[i].voter)
            i += 1
        recent = None
        if t_scan >= next_campaign or i == len(votes):
            recent = _window(votes, i, config.campaign_window_s)
            next_campaign = t_scan + campaign_every_s
            judge |= {v for v, n in state.judged_at_size.items() if 2 * n < state.seen}
        if i == len(votes):
            judge = set(state.by_voter)
        if recent:
            state.baseline = TrafficBaseline.from_votes(recent, config=config)
        state.earn(judge)
        step = scan_step(
            state.context(judge),
            state.counted,
            judge=judge,
            recent=recent,
            campaigns=state.campaigns,
            config=config,
            baseline=state.baseline,
            trust=state.trust,
            uncounted=state.uncounted(),
        )
        state.campaigns = step.campaigns
        state.apply(step.reports)
        scans += 1
    excluded = state.uncounted() | frozenset(v for f in state.campaigns for v in f.vote_ids)
    return ReplayResult(
        excluded=excluded,
        weights=vote_weights((v for v in votes if v.vote_id not in excluded), state.trust),
        verdicts={v: r.verdict for v, r in sorted(state.reports.items())},
        reports=dict(sorted(state.reports.items())),
        campaigns=state.campaigns,
        scans=scans,
        trust=dict(sorted(state.trust.items())),
    )
