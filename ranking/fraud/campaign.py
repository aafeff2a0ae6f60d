"""The ``campaign`` detector: many identities pushing one model, judged as a group.

A campaign spread over fresh identities, network prefixes and user agents shows
nothing per voter that an honest person could not show by chance over five
votes.  What gives it away is that the same model is pushed by far more
identities than chance allows.  Per identity and model, two independent pieces
of evidence are combined:

* **exposure**: how often the model was in the identity's battles, against the
  arena's share of battles showing it (Poisson-binomial tail).  Matchmaking
  picks the models, so an honest voter sees each model at the arena's rate; an
  attacker who abandons battles without its model does not;
* **choice**: how often the identity chose the model (promotion) or chose
  against it (demotion), against the consensus (Poisson-binomial tail).

The combined p-value is the smallest of the two tails and their Fisher
combination, Bonferroni-corrected (x3).  A *candidate* has a combined p at most
``campaign_member_p`` and either unusual exposure or all-or-nothing choices
(an honest strong taste shows in choices, never in exposure, and is rarely
all-or-nothing).  Under the null every voter is a candidate with probability at
most ``campaign_member_p``, so the number of candidates for one model has a
binomial tail; a group whose tail passes ``campaign_p`` (Bonferroni over models
and directions) with at least ``campaign_min_members`` is a campaign.  Its
members are the candidates and the identities pushing the same model with the
looser ``campaign_join_p`` (once a campaign is established, weaker evidence
pointing the same way is enough); their votes are excluded.  The influence of the members' votes on every model's
score (a leave-them-out refit) is reported: a campaign's is concentrated on its
model, or on the neighbours it hurts (omnipresent rigging, Min et al. 2025).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom, chi2, norm, poisson

from ..bradley_terry import fit_bradley_terry
from ..counts import PairCounts
from .config import FraudConfig
from .consensus import _Prep
from .evidence import DetectorResult, Level, VoteEvidence, _time_key
from .stats import _fmt_p, _json, _neg_log10, _r, poisson_binomial_sf
from .targeting import taste_shift


def model_shares(votes: Sequence[VoteEvidence]) -> dict[str, float]:
    """Per battle size K and model, the share of the votes of that size that showed it.

    Keys are ``"K:model"`` (JSON-friendly); the exposure test's null.
    """
    shown: dict[str, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    for v in votes:
        k = len(v.slots)
        total[k] += 1
        for m in v.slots:
            shown[f"{k}:{m}"] += 1
    return {key: n / total[int(key.split(":", 1)[0])] for key, n in sorted(shown.items())}


def _share(shares: Mapping[str, float], k: int, model: str, n_models: int) -> float:
    """The arena's rate of showing ``model`` in a K-battle (K / models when unknown)."""
    got = shares.get(f"{k}:{model}")
    if got is None:
        got = k / max(n_models, k)
    return min(max(got, 1e-6), 1.0 - 1e-9)


@dataclass(frozen=True, slots=True)
class _Push:
    """One identity's evidence of pushing one model in one direction."""

    voter: str
    model: str
    direction: str
    n_votes: int
    shown: int
    expected_shown: float
    p_exposure: float
    decided: int
    pushed: int  # decided votes choosing the model (promote) or another (demote)
    expected_pushed: float
    p_choice: float
    shift: float
    p: float
    vote_ids: tuple[str, ...]


def _fisher(p1: float, p2: float) -> float:
    stat = -2.0 * (math.log(max(p1, 1e-300)) + math.log(max(p2, 1e-300)))
    return float(chi2.sf(stat, 4))


def _exposure_tail(counts_by_k: Mapping[int, int], shown: int, qs: Mapping[int, float]) -> float:
    """``P(shown or more)`` with ``counts_by_k[K]`` battles of size K showing it at rate ``qs[K]``."""
    if shown <= sum(n * qs[k] for k, n in counts_by_k.items()):
        return 1.0  # not above expectation (the tail is >= ~0.4): not worth computing
    if len(counts_by_k) == 1:
        ((k, n),) = counts_by_k.items()
        return float(binom.sf(shown - 1, n, qs[k]))
    return poisson_binomial_sf([qs[k] for k, n in counts_by_k.items() for _ in range(n)], shown)


def _pushes(
    voter: str,
    mine: Sequence[_Prep],
    shares: Mapping[str, float],
    n_models: int,
    config: FraudConfig,
) -> tuple[list[tuple[str, str]], list[_Push]]:
    """The (model, direction) pairs this identity pushed (more than expected), and those with
    enough evidence to be worth a look (their combined p-value can reach ``campaign_member_p``)."""
    by_model: dict[str, list[tuple[_Prep, int]]] = defaultdict(list)
    per_k: dict[int, int] = defaultdict(int)
    for p in mine:
        per_k[len(p.vote.slots)] += 1
        for k, m in enumerate(p.vote.slots):
            by_model[m].append((p, k))
    pushed_pairs: list[tuple[str, str]] = []
    out: list[_Push] = []
    n = len(mine)
    # Fisher's combination reaches join_p / 3 only if the product of the tails is this small.
    loosest = max(config.campaign_member_p, config.campaign_join_p) / 3.0
    fisher_floor = math.exp(-0.5 * float(chi2.isf(loosest, 4)))
    for model in sorted(by_model):
        rows = by_model[model]
        if len(rows) < 2:
            continue
        qs = {k: _share(shares, k, model, n_models) for k in per_k}
        p_exp = _exposure_tail(per_k, len(rows), qs)
        decided = [(p, k) for p, k in rows if p.decided]
        ps = [p.probs[k] for p, k in decided]
        wins = sum(1 for p, k in decided if p.winner == k)
        for direction in ("promote", "demote"):
            promote = direction == "promote"
            pushed = wins if promote else len(ps) - wins
            chances = ps if promote else [1.0 - x for x in ps]
            exp_pushed = sum(chances)
            if pushed <= exp_pushed:
                continue
            pushed_pairs.append((model, direction))
            if pushed < 2:
                continue
            sd = math.sqrt(max(sum(x * (1.0 - x) for x in chances), 1e-12))
            if p_exp > config.campaign_exposure_p and (pushed - exp_pushed) / sd < 2.0:
                continue  # neither unusual exposure nor a choice tail near join_p
            p_choice = poisson_binomial_sf(chances, pushed)
            if p_exp * p_choice > fisher_floor and min(p_exp, p_choice) > loosest:
                continue
            shift = taste_shift(ps, wins)
            shift = shift if promote else -shift
            combined = min(1.0, 3.0 * min(p_exp, p_choice, _fisher(p_exp, p_choice)))
            ids = tuple(v.vote.vote_id for v, k in decided if (v.winner == k) == promote)
            out.append(
                _Push(
                    voter,
                    model,
                    direction,
                    n,
                    len(rows),
                    sum(qs[len(v.vote.slots)] for v in mine),
                    p_exp,
                    len(ps),
                    pushed,
                    exp_pushed,
                    p_choice,
                    shift,
                    combined,
                    ids,
                )
            )
    return pushed_pairs, out


def _is_candidate(push: _Push, config: FraudConfig, p_max: float, *, joining: bool = False) -> bool:
    """Whether ``push`` makes its identity a candidate (or, ``joining``, a member of an
    established campaign): a small combined p-value and unusual exposure or near
    all-or-nothing choices; joining needs the choices to be near all-or-nothing (exposure
    alone also varies with adaptive matchmaking)."""
    if push.p > p_max or push.pushed < 2:
        return False
    all_or_nothing = push.shift >= config.campaign_choice_shift
    return all_or_nothing or (not joining and push.p_exposure <= config.campaign_exposure_p)


@dataclass(frozen=True)
class CampaignFinding:
    """A group of identities pushing one model, with the evidence a reviewer checks.

    ``members`` are the identities judged part of it (their votes are kept out);
    ``influence`` is, per model, how much the members' votes moved its
    Bradley-Terry score (logits, leave-them-out refit), the pushed model first.
    """

    model: str
    direction: str
    level: Level
    start_s: float
    end_s: float
    members: tuple[str, ...]
    eligible: int
    expected_members: float
    p_value: float
    p_adjusted: float
    influence: dict[str, float]
    member_evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    member_votes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: "identities" (members judged one by one) or "light" (the light identities' votes on
    #: the model, taken out as a whole: ``vote_ids``; no member).
    kind: str = "identities"
    vote_ids: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable identity of the finding: kind, model and direction."""
        prefix = "" if self.kind == "identities" else f"{self.kind}:"
        return f"{prefix}{self.direction}:{self.model}"

    @property
    def summary(self) -> str:
        verb = "promoting" if self.direction == "promote" else "demoting"
        inf = self.influence.get(self.model, 0.0)
        if self.kind == "light":
            e = self.evidence
            return (
                f"light identities ({e.get('light_identities')}) chose {self.model} in "
                f"{e.get('chosen')} of {e.get('shown')} battles (expected {e.get('expected')}; "
                f"p = {_fmt_p(self.p_adjusted)}); their {len(self.vote_ids)} votes showing it "
                f"are kept out ({inf * 174:+.0f} Elo)"
            )
        if self.kind == "unanimous":
            verb = "unanimously " + verb
        return (
            f"{len(self.members)} identities {verb} {self.model} (expected "
            f"{self.expected_members:.1f} of {self.eligible} by chance; p = "
            f"{_fmt_p(self.p_adjusted)}); their votes moved it {inf * 174:+.0f} Elo"
        )

    def without(self, voters: Iterable[str]) -> CampaignFinding:
        """The finding with ``voters`` dropped from its members (a reviewer cleared them)."""
        drop = set(voters)
        return replace(
            self,
            members=tuple(m for m in self.members if m not in drop),
            member_evidence={m: e for m, e in self.member_evidence.items() if m not in drop},
            member_votes={m: v for m, v in self.member_votes.items() if m not in drop},
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignFinding:
        """The inverse of :meth:`to_dict`; bad data raises ``ValueError``."""
        try:
            level = data["level"]
            if level not in ("ok", "suspicious", "strong") or data["direction"] not in (
                "promote",
                "demote",
            ):
                raise ValueError(f"bad level or direction in {data!r}")
            return cls(
                model=str(data["model"]),
                direction=str(data["direction"]),
                level=level,
                start_s=float(data["start_s"]),
                end_s=float(data["end_s"]),
                members=tuple(str(m) for m in data["members"]),
                eligible=int(data["eligible"]),
                expected_members=float(data["expected_members"]),
                p_value=float(data["p_value"]),
                p_adjusted=float(data["p_adjusted"]),
                influence={str(m): float(x) for m, x in data["influence"].items()},
                member_evidence=dict(data.get("member_evidence", {})),
                member_votes={
                    str(m): tuple(str(v) for v in ids)
                    for m, ids in data.get("member_votes", {}).items()
                },
                kind=str(data.get("kind", "identities")),
                vote_ids=tuple(str(v) for v in data.get("vote_ids", ())),
                evidence=dict(data.get("evidence", {})),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a campaign finding: {exc!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored by the app, shown on the review pages)."""
        return {
            "model": self.model,
            "direction": self.direction,
            "level": self.level,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "members": list(self.members),
            "eligible": self.eligible,
            "expected_members": _r(self.expected_members),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "influence": {m: _r(x) for m, x in self.influence.items()},
            "member_evidence": _json(self.member_evidence),
            "member_votes": {m: list(v) for m, v in self.member_votes.items()},
            "kind": self.kind,
            "vote_ids": list(self.vote_ids),
            "evidence": _json(self.evidence),
            "summary": self.summary,
        }


def _influence(
    all_preps: Sequence[_Prep],
    members: set[str],
    l2: float = 0.1,
    drop: Collection[str] = (),
) -> dict[str, float]:
    """Per model, its score with the members' votes (or the ``drop`` votes) minus without
    them (logits), biggest first."""
    players = sorted({m for p in all_preps for m in p.vote.slots})
    index = {m: i for i, m in enumerate(players)}
    everything, without = PairCounts(players), PairCounts(players)
    theirs = [p.vote for p in all_preps if p.vote.voter in members or p.vote.vote_id in drop]
    everything.wins, everything.ties = _pair_arrays((p.vote for p in all_preps), index)
    their_w, their_t = _pair_arrays(theirs, index)
    without.wins, without.ties = everything.wins - their_w, everything.ties - their_t
    a = fit_bradley_terry(everything, l2)
    b = fit_bradley_terry(without, l2)
    diff = {m: float(x - y) for m, x, y in zip(players, a, b, strict=True)}
    return dict(sorted(diff.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:8])


def _pair_arrays(
    votes: Iterable[VoteEvidence],
    index: Mapping[str, int],
    trust: Mapping[str, float] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(wins, ties) matrices of ``votes`` over the players of ``index`` (as in PairCounts),
    each vote weighted by its voter's ``trust`` (voters not in it: 1)."""
    n = len(index)
    wins, ties = np.zeros((n, n)), np.zeros((n, n))
    for v in votes:
        w = 1.0 if trust is None else trust.get(v.voter, 1.0)
        for a, b, score in v.ranking.pairs():
            i, j = index[a], index[b]
            if score == 1.0:
                wins[i, j] += w
            else:
                ties[i, j] += w
                ties[j, i] += w
    return wins, ties


def _member_evidence(push: _Push) -> dict[str, Any]:
    return {
        "votes": push.n_votes,
        "shown": push.shown,
        "expected_shown": _r(push.expected_shown, 2),
        "p_exposure": push.p_exposure,
        "decided": push.decided,
        "pushed": push.pushed,
        "expected_pushed": _r(push.expected_pushed, 2),
        "p_choice": push.p_choice,
        "taste_shift": _r(push.shift) if math.isfinite(push.shift) else None,
        "p": push.p,
    }


def find_campaigns(
    preps: Sequence[_Prep],
    shares: Mapping[str, float],
    config: FraudConfig,
) -> list[CampaignFinding]:
    """The campaigns in ``preps`` (the arena's recent votes), most significant first."""
    by_voter: dict[str, list[_Prep]] = defaultdict(list)
    for p in preps:
        by_voter[p.vote.voter].append(p)
    models = {m for p in preps for m in p.vote.slots}
    eligible: dict[tuple[str, str], int] = defaultdict(int)
    candidates: dict[tuple[str, str], list[_Push]] = defaultdict(list)
    joiners: dict[tuple[str, str], list[_Push]] = defaultdict(list)
    for voter in sorted(by_voter):
        mine = sorted(by_voter[voter], key=lambda p: _time_key(p.vote))
        pushed, worth_a_look = _pushes(voter, mine, shares, len(models), config)
        for key in pushed:
            eligible[key] += 1
        for push in worth_a_look:
            if _is_candidate(push, config, config.campaign_member_p):
                candidates[(push.model, push.direction)].append(push)
            elif _is_candidate(push, config, config.campaign_join_p, joining=True):
                joiners[(push.model, push.direction)].append(push)
    # Two tiers (member_p and join_p), each a binomial test of how many identities reach it.
    tests = max(1, 4 * len(models))
    out: list[CampaignFinding] = []
    for key in sorted(set(candidates) | set(joiners)):
        # Joiners are near all-or-nothing: honest people rarely are, so counting them against
        # join_p is as valid a null as the candidates against member_p.
        strict, loose = candidates[key], candidates[key] + joiners[key]
        n = max(eligible[key], len(loose))
        tails = [
            (float(binom.sf(len(group) - 1, n, p_max)), p_max)
            for group, p_max in (
                (strict, config.campaign_member_p),
                (loose, config.campaign_join_p),
            )
            if len(group) >= config.campaign_min_members
        ]
        if not tails:
            continue
        p_raw, p_max = min(tails)
        p_adj = min(1.0, p_raw * tests)
        if p_adj > config.campaign_p:
            continue
        out.append(_finding(key, loose, n, p_max, p_raw, p_adj, preps, by_voter))
    # Identities each with too little evidence to be a candidate, unanimous about one model in
    # far greater numbers than the crowd's odds allow.
    found = {m for f in out for m in f.members}
    done = {(f.model, f.direction) for f in out}
    unanimous = find_unanimous(preps, config, len(models), found, done)
    out += unanimous
    found |= {m for f in unanimous for m in f.members}
    # What is left once the identities found are out: light identities' results as a whole.
    out += find_light_departures(
        [p for p in preps if p.vote.voter not in found], shares, config, len(models)
    )
    return _fold(out)


def _finding(
    key: tuple[str, str],
    group: Sequence[_Push],
    n: int,
    p_max: float,
    p_raw: float,
    p_adj: float,
    preps: Sequence[_Prep],
    by_voter: Mapping[str, Sequence[_Prep]],
) -> CampaignFinding:
    members = {g.voter for g in group}
    times = [p.vote.time_s for g in group for p in by_voter[g.voter]]
    return CampaignFinding(
        model=key[0],
        direction=key[1],
        level="strong",
        start_s=min(times),
        end_s=max(times),
        members=tuple(sorted(members)),
        eligible=n,
        expected_members=n * p_max,
        p_value=p_raw,
        p_adjusted=p_adj,
        influence=_influence(preps, members),
        member_evidence={g.voter: _member_evidence(g) for g in group},
        member_votes={g.voter: g.vote_ids for g in group},
    )


#: Decided appearances of a model an identity needs before its choices on it count as unanimous.
UNANIMOUS_MIN_SHOWN = 3
#: A unanimous group must be at least this many times the number the crowd's odds predict.
UNANIMOUS_MIN_RATIO = 2.0


def find_unanimous(
    preps: Sequence[_Prep],
    config: FraudConfig,
    n_models: int,
    found: Collection[str] = (),
    done: Collection[tuple[str, str]] = (),
) -> list[CampaignFinding]:
    """Models that far more identities chose every time they were shown (or never) than the
    crowd's odds allow: campaigns whose identities each carry too little evidence to be a
    candidate (a slow promoter shown its model four times in a fortnight).

    Per identity and model with at least ``UNANIMOUS_MIN_SHOWN`` decided appearances, the
    chance that a voter following the consensus is unanimous is the product of its chances
    (``prod p`` to promote, ``prod (1 - p)`` to demote); their sum over identities is the
    expected number of unanimous identities, and the observed number has a Poisson tail.  A
    group at least ``UNANIMOUS_MIN_RATIO`` times the expectation whose tail passes
    ``campaign_p`` (Bonferroni over models and directions) is a campaign of kind
    "unanimous"; for a (model, direction) in ``done`` the tail need only pass
    ``campaign_join_p``, unadjusted (unanimous identities joining a campaign found).  Each
    member's evidence alone is weak (honest fans are unanimous too), so membership never
    excludes: members lose their votes showing the model and their trust is held at the floor
    (see ``_campaign_result``).  ``found``: identities already in a
    campaign; ``done``: (model, direction) pairs already found (not tested the other way;
    the same way at the joiners' level).
    """
    expected, eligible, members = _unanimous_counts(preps, found)
    tests = max(1, 4 * n_models)
    out: list[CampaignFinding] = []
    for key in sorted(members):
        group, lam = members[key], expected[key]
        # A model already found pushed one way: the crowd voting against it looks unanimous
        # the other way against a consensus the campaign tilted (its shadow).  The same way,
        # a unanimous group adds the identities the candidate test could not see.
        other = "demote" if key[1] == "promote" else "promote"
        if (key[0], other) in done or len(group) < config.campaign_min_members:
            continue
        if len(group) < UNANIMOUS_MIN_RATIO * lam:
            continue
        p_raw = float(poisson.sf(len(group) - 1, lam))
        # A campaign already found pushing this model this way: whether more identities are
        # with it is one question asked in advance, not one of 4 x models, and weaker evidence
        # pointing the same way is enough (as for joiners, ``campaign_join_p``). Slow promoters
        # shown their model a handful of times each are found this way once the busier ones
        # made the campaign (attack_sim, pairwise: 14 of 36 before).
        joining = key in done
        p_adj = p_raw if joining else min(1.0, p_raw * tests)
        if p_adj > (config.campaign_join_p if joining else config.campaign_p):
            continue
        out.append(_unanimous_finding(key, group, eligible[key], lam, p_raw, p_adj, preps))
    return out


_Key = tuple[str, str]


def _unanimous_counts(
    preps: Sequence[_Prep], found: Collection[str]
) -> tuple[dict[_Key, float], dict[_Key, int], dict[_Key, list[str]]]:
    """Per (model, direction): the expected number of unanimous identities under the crowd's
    odds, the identities with enough appearances, and the unanimous ones."""
    by_voter: dict[str, list[_Prep]] = defaultdict(list)
    for p in preps:
        if p.decided and p.vote.voter not in found:
            by_voter[p.vote.voter].append(p)
    expected: dict[_Key, float] = defaultdict(float)
    eligible: dict[_Key, int] = defaultdict(int)
    members: dict[_Key, list[str]] = defaultdict(list)
    for voter in sorted(by_voter):
        per_model: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        for p in by_voter[voter]:
            for k, m in enumerate(p.vote.slots):
                per_model[m].append((p.probs[k], p.winner == k))
        for model, rows in per_model.items():
            if len(rows) < UNANIMOUS_MIN_SHOWN:
                continue
            wins = sum(1 for _, won in rows if won)
            for direction, unanimous in (("promote", wins == len(rows)), ("demote", wins == 0)):
                key = (model, direction)
                chances = (x if direction == "promote" else 1.0 - x for x, _ in rows)
                expected[key] += math.prod(chances)
                eligible[key] += 1
                if unanimous:
                    members[key].append(voter)
    return expected, eligible, members


def _unanimous_finding(
    key: tuple[str, str],
    group: Sequence[str],
    eligible: int,
    expected: float,
    p_raw: float,
    p_adj: float,
    preps: Sequence[_Prep],
) -> CampaignFinding:
    model, direction = key
    voters = set(group)
    theirs = [p for p in preps if p.vote.voter in voters]
    showing: dict[str, list[str]] = defaultdict(list)
    for p in theirs:
        if model in p.vote.slots:
            showing[p.vote.voter].append(p.vote.vote_id)
    return CampaignFinding(
        model=model,
        direction=direction,
        level="strong",
        start_s=min(p.vote.time_s for p in theirs),
        end_s=max(p.vote.time_s for p in theirs),
        members=tuple(sorted(voters)),
        eligible=eligible,
        expected_members=expected,
        p_value=p_raw,
        p_adjusted=p_adj,
        influence=_influence(preps, voters),
        member_evidence={v: {"shown": len(showing[v]), "unanimous": True} for v in voters},
        member_votes={v: tuple(showing[v]) for v in voters},
        kind="unanimous",
    )


#: Votes of established identities needed before light identities are judged as a whole.
LIGHT_MIN_ESTABLISHED = 500


def find_light_departures(
    preps: Sequence[_Prep],
    shares: Mapping[str, float],
    config: FraudConfig,
    n_models: int,
) -> list[CampaignFinding]:
    """Models whose results among *light* identities depart from the consensus, as a whole.

    A campaign whose identities cast a vote or two each, in whatever battles they get, leaves
    no trace per identity; pooled, the light identities' results on its model depart from
    what the established identities' consensus predicts.  The influence bound: every light
    identity's vote showing that model in the window is kept out, whatever it chose (an
    outcome-blind cut, so the honest light votes dropped with it bias nothing; the model is
    then ranked on the established identities' votes).  No identity is excluded for it.
    """
    per_voter: dict[str, int] = defaultdict(int)
    for p in preps:
        per_voter[p.vote.voter] += 1
    light = [p for p in preps if per_voter[p.vote.voter] < config.campaign_established_votes]
    if len(preps) - len(light) < max(LIGHT_MIN_ESTABLISHED, 0.3 * len(preps)):
        return []  # a young arena: no consensus of established identities to judge against yet
    tests = max(1, 2 * n_models)
    out: list[CampaignFinding] = []
    while True:
        # The most departing model first; its votes leave the pool before the next test, since
        # the rivals a pushed model beat look pushed down in the same votes (its shadow).
        found = _light_departure(light, tests, config)
        if found is None:
            return out
        out.append(_light_finding(found, preps))
        light = [p for p in light if found[0] not in p.vote.slots]


def _light_departure(
    light: Sequence[_Prep], tests: int, config: FraudConfig
) -> tuple[str, float, float, list[tuple[_Prep, int]], list[_Prep]] | None:
    """(model, z, adjusted p, its decided appearances, every vote showing it) of the light
    votes' most significant departure from the consensus, when it passes ``campaign_p``."""
    shown: dict[str, list[_Prep]] = defaultdict(list)
    acc: dict[str, list[tuple[_Prep, int]]] = defaultdict(list)
    for p in light:
        for k, m in enumerate(p.vote.slots):
            shown[m].append(p)
            if p.decided:
                acc[m].append((p, k))
    best = None
    for model in sorted(acc):
        rows = acc[model]
        ps = np.array([p.probs[k] for p, k in rows])
        wins = sum(1 for p, k in rows if p.winner == k)
        sd = math.sqrt(max(float((ps * (1 - ps)).sum()), 1e-12))
        z = (wins - float(ps.sum())) / sd
        p_adj = min(1.0, float(norm.sf(abs(z))) * tests)
        if p_adj <= config.campaign_p and (best is None or abs(z) > abs(best[1])):
            best = (model, z, p_adj, rows, shown[model])
    return best


def _light_finding(
    found: tuple[str, float, float, list[tuple[_Prep, int]], list[_Prep]],
    preps: Sequence[_Prep],
) -> CampaignFinding:
    model, z, p_adj, rows, cut = found
    wins = sum(1 for p, k in rows if p.winner == k)
    expected = sum(p.probs[k] for p, k in rows)
    voters = {p.vote.voter for p, _ in rows}
    return CampaignFinding(
        model=model,
        direction="promote" if z > 0 else "demote",
        level="strong",
        start_s=min(p.vote.time_s for p in cut),
        end_s=max(p.vote.time_s for p in cut),
        members=(),
        eligible=len(voters),
        expected_members=0.0,
        p_value=float(norm.sf(abs(z))),
        p_adjusted=p_adj,
        influence=_influence(preps, set(), drop={p.vote.vote_id for p in cut}),
        kind="light",
        vote_ids=tuple(sorted(p.vote.vote_id for p in cut)),
        evidence={
            "light_identities": len(voters),
            "shown": len(rows),
            "chosen": wins,
            "expected": _r(expected, 2),
            "z": _r(z, 2),
        },
    )


def _fold(findings: list[CampaignFinding]) -> list[CampaignFinding]:
    """Most significant first, without the findings whose members all belong to more
    significant ones: a promoter of a model necessarily pushes its rivals down too, and that
    shadow of the same campaign is not a second one."""
    kept: list[CampaignFinding] = []
    covered: set[str] = set()
    for f in sorted(findings, key=lambda f: (f.p_adjusted, f.key)):
        if f.kind != "identities" or not set(f.members) <= covered:
            kept.append(f)
            covered |= set(f.members)
    return kept


def campaign_membership(
    findings: Sequence[CampaignFinding],
) -> dict[str, CampaignFinding]:
    """Per identity, the most significant campaign it is a member of."""
    out: dict[str, CampaignFinding] = {}
    for f in sorted(findings, key=lambda f: (f.p_adjusted, f.key)):
        for m in f.members:
            out.setdefault(m, f)
    return out


def _campaign_result(
    voter: str, finding: CampaignFinding | None, *, scoped: bool = False
) -> DetectorResult:
    """A member's finding; ``scoped`` for an identity with a history of its own (full earned
    trust): its say on the campaign's model goes (the votes showing it are kept out, its trust
    held at the floor) instead of the identity (a returning person with a strong taste for the
    model can be swept into a campaign on it; the evidence is about that model only)."""
    if finding is None:
        return DetectorResult("campaign", "ok", 0.0, "not part of a detected campaign", {})
    evidence = {
        "scoped": scoped,
        "model": finding.model,
        "direction": finding.direction,
        "members": len(finding.members),
        "eligible": finding.eligible,
        "expected_members": _r(finding.expected_members),
        "p_adjusted": finding.p_adjusted,
        "start_s": finding.start_s,
        "end_s": finding.end_s,
        "influence": {m: _r(x) for m, x in finding.influence.items()},
        "member": _json(finding.member_evidence.get(voter, {})),
    }
    return DetectorResult(
        "campaign",
        finding.level,
        _r(_neg_log10(finding.p_adjusted)),
        "one of " + finding.summary,
        evidence,
        finding.member_votes.get(voter, ()),
    )
