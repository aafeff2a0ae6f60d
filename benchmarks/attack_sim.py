"""Benchmark: can a campaign buy a place on the leaderboard, and what do honest people pay?

An adversarial simulation, written to be independent of the detectors' assumptions:
no bot shares a prefix, a user agent or a creation window unless a real attacker
would, every bot votes at human speed unless it is the naive ``fast`` kind, and the
honest population is deliberately awkward.  The whole log goes through
``ranking.fraud.replay_scans`` (the same per-scan step as the app's periodic scan,
every 300 s of vote time); bot labels are used for scoring only.

World: ``--models`` (24) models with true Bradley-Terry strengths ``N(0, 1)``, two
weeks of votes, battles of K models drawn uniformly by the matchmaker (a bot may
abandon a battle and ask for another, which is how it sees its model more often).
Pairwise arenas vote A / B / tie / both bad; K=4 arenas best-of-4 (70%) or a full
ranking of the four (30%).

Honest voters (subgroups reported separately):

``long_tail``     most people: 1-60 votes (lognormal, median 6), taste N(0, 0.3), 10% lapses;
``power``         100-400 votes over many days, 5-20% lapses;
``strong_taste``  a favourite model they like 2 logits more than the crowd, taste N(0, 1);
``noisy``         30-45% random choices, 50-300 votes (heavy and careless, but honest);
``campus``        20 shared NAT prefixes x 30-50 students, one browser build per campus,
                  classes voting together within the same hour;
``fast``          honest skimmers: median 1.8 s to vote (a third under the viewing minimum).

Attackers, each a share of the ``--bot-share`` votes (targets: a lower-middle model,
or #1 for the demoter):

``random``, ``always_first``      naive bots, 100-250 votes each;
``sybil_burst``                   40 fresh identities x 5 votes within an hour on one prefix;
``distributed_sybils``            fresh identities, each on its own prefix and a common
                                  user agent, 5-10 votes at human speed in one session,
                                  spread over the two weeks; they abandon battles without
                                  the target and always choose it;
``sybils_no_skip``                the same identities voting every battle they get: the
                                  target when it is shown, like the crowd otherwise;
``camouflaged_promoter``          established identity, 100-300 votes, follows the crowd
                                  on ~80% of votes, picks the target when shown and close
                                  (within 0.6 logits of the best other model);
``demoter_of_first``              consensus-aware: votes for #1 against weak models and
                                  against it in close contests (rival within 0.8 logits);
``slow_promoter``                 2-6 votes a day for two weeks, abandons battles without
                                  the target half of the time, picks it when shown;
``omnipresent``                   Min et al. (ICML 2025): votes against the two models ranked
                                  just above the target in battles without it, for the
                                  target when it is shown, like the crowd otherwise.

Reported per strategy: votes excluded; votes excluded or weighted to at most 0.1 by earned
trust (``ReplayResult.weights``: neutralised); the influence left (counted weight over
votes); and the target's rank displacement (against the honest-only leaderboard)
unfiltered and filtered (the weighted leaderboard); per honest subgroup the share of
voters excluded; Kendall tau of the filtered leaderboard against the honest-only one;
and the replay's cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.stats import kendalltau
from tqdm import tqdm

from ranking.core import Ranking
from ranking.counts import PairCounts
from ranking.fraud import (
    DEFAULT_CONFIG,
    Consensus,
    FraudConfig,
    VoteEvidence,
    replay_scans,
    scan_step,
)

DAY = 86_400.0
MIN_VIEW_MS = 1500
#: A vote weighted this little or less counts as neutralised (the issue's "<= 10% of its influence").
NEUTRALISED = 0.1
HONEST = ("long_tail", "power", "strong_taste", "noisy", "campus", "fast")
STRATEGIES = (
    "random",
    "always_first",
    "sybil_burst",
    "distributed_sybils",
    "sybils_no_skip",
    "camouflaged_promoter",
    "demoter_of_first",
    "slow_promoter",
    "omnipresent",
)
UAS = [f"ua{i:02d}" for i in range(30)]
_UA_W = 1.0 / np.arange(1, 31)
_UA_W /= _UA_W.sum()


@dataclass
class Person:
    voter: str
    group: str
    prefix: str
    ua: str
    first_seen: float | None
    taste: NDArray[np.float64]
    lapse: float
    median_ms: float
    target: int = -1


@dataclass
class World:
    models: list[str]
    strength: NDArray[np.float64]
    k: int
    votes: list[VoteEvidence] = field(default_factory=list)
    label: dict[str, str] = field(default_factory=dict)
    targets: dict[str, int] = field(default_factory=dict)


class Sim:
    def __init__(self, seed: int, n_models: int, k: int, days: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.k = k
        self.days = days
        self.n = n_models
        s = self.rng.normal(0.0, 1.0, n_models)
        self.world = World([f"m{i:02d}" for i in range(n_models)], s, k)
        self.order = np.argsort(-s)  # public leaderboard, best first
        self.n_vote = 0
        self.n_person = 0

    # -- people --------------------------------------------------------------------------------
    def person(self, group: str, **kw: object) -> Person:
        self.n_person += 1
        rng = self.rng
        p = Person(
            voter=f"p{self.n_person:06d}",
            group=group,
            prefix=str(kw.get("prefix") or f"net{rng.integers(1 << 30):08x}"),
            ua=str(kw.get("ua") or rng.choice(UAS, p=_UA_W)),
            first_seen=kw.get(
                "first_seen", -float(rng.uniform(1, 200)) * DAY if rng.random() < 0.5 else None
            ),  # type: ignore[arg-type]
            taste=rng.normal(0.0, float(kw.get("taste_sd", 0.3)), self.n),  # type: ignore[arg-type]
            lapse=float(kw.get("lapse", 0.1)),  # type: ignore[arg-type]
            median_ms=float(kw.get("median_ms", 6000.0 * math.exp(rng.normal(0, 0.3)))),  # type: ignore[arg-type]
        )
        self.world.label[p.voter] = group
        return p

    # -- voting --------------------------------------------------------------------------------
    def battle(self) -> NDArray[np.int64]:
        return self.rng.choice(self.n, self.k, replace=False)

    def honest_choice(self, shown: NDArray[np.int64], p: Person) -> int:
        rng = self.rng
        if rng.random() < p.lapse:
            return int(rng.integers(len(shown)))
        u = self.world.strength[shown] + p.taste[shown]
        w = np.exp(u - u.max())
        w /= w.sum()
        if self.k == 2 and rng.random() < 0.1:  # slot A bias
            return 0
        return int(rng.choice(len(shown), p=w))

    def crowd_choice(self, shown: NDArray[np.int64]) -> int:
        """What a bot imitating the public leaderboard picks: its favourite, mostly."""
        est = self.world.strength[shown] + self.rng.normal(0, 0.3, len(shown))
        return int(np.argmax(est))

    def emit(
        self, p: Person, t: float, shown: NDArray[np.int64], ranking: Ranking, ms: float
    ) -> None:
        if p.first_seen is None:
            p.first_seen = t - ms / 1000.0 - float(self.rng.uniform(0, 60))
        self.n_vote += 1
        self.world.votes.append(
            VoteEvidence(
                vote_id=f"v{self.n_vote:07d}",
                voter=p.voter,
                time_s=t,
                slots=tuple(self.world.models[i] for i in shown),
                ranking=ranking,
                time_to_vote_ms=max(0, round(ms)),
                min_view_ms=MIN_VIEW_MS,
                prefix=p.prefix,
                user_agent=p.ua,
                first_seen_s=p.first_seen,
            )
        )

    def ranking_of(self, shown: NDArray[np.int64], win: int | None, p: Person) -> Ranking:
        names = [self.world.models[i] for i in shown]
        if win is None:
            return Ranking.tie(names)
        if self.k == 2:
            return Ranking(((names[win],), (names[1 - win],)))
        if self.rng.random() < 0.3 and p.group in HONEST:  # rank all four
            rest = [j for j in range(len(shown)) if j != win]
            u = self.world.strength[shown[rest]] + p.taste[shown[rest]]
            g = u + self.rng.gumbel(size=len(rest))
            order = [rest[j] for j in np.argsort(-g)]
            return Ranking(tuple((names[j],) for j in [win, *order]))
        return Ranking.best_of(names[win], [n for j, n in enumerate(names) if j != win])

    def ms(self, p: Person) -> float:
        return float(p.median_ms * math.exp(self.rng.normal(0.0, 0.7)))

    def run(
        self,
        p: Person,
        n: int,
        how: str,
        *,
        session_len: float = 10.0,
        starts: Sequence[float] | None = None,
    ) -> None:
        rng = self.rng
        sizes: list[int] = []
        while sum(sizes) < n:
            sizes.append(int(rng.geometric(1.0 / session_len)))
        sizes[-1] -= sum(sizes) - n
        sizes = [s for s in sizes if s > 0]
        if starts is None:
            starts = sorted(rng.uniform(0, self.days * DAY, len(sizes)).tolist())
        t_end = -math.inf
        for size, start in zip(sizes, starts, strict=False):
            t = max(float(start), t_end + 60.0)
            cast = 0
            while cast < size:
                shown = self.battle()
                ms = self.ms(p)
                t += ms / 1000.0 + float(rng.lognormal(math.log(5.0), 0.5))
                win = self.choose(how, shown, p)
                if win == -1:  # abandoned: ask for another battle
                    t += float(rng.uniform(1, 4))
                    continue
                self.emit(p, t, shown, self.ranking_of(shown, win, p), ms)
                cast += 1
            t_end = t

    def choose(self, how: str, shown: NDArray[np.int64], p: Person) -> int | None:  # noqa: C901
        rng, s, k = self.rng, self.world.strength, len(shown)
        has_t = p.target in shown
        if how in HONEST:
            if rng.random() < 0.03:
                return None
            return self.honest_choice(shown, p)
        if how == "random":
            return int(rng.integers(k))
        if how == "always_first":
            return 0
        if how in ("sybil_burst", "distributed_sybils"):
            return int(np.flatnonzero(shown == p.target)[0]) if has_t else -1
        if how == "sybils_no_skip":
            return int(np.flatnonzero(shown == p.target)[0]) if has_t else self.crowd_choice(shown)
        if how == "slow_promoter":
            if has_t:
                return int(np.flatnonzero(shown == p.target)[0])
            return -1 if rng.random() < 0.5 else self.honest_choice(shown, p)
        if how == "camouflaged_promoter":
            if has_t:
                j = int(np.flatnonzero(shown == p.target)[0])
                best_other = max(s[shown[i]] for i in range(k) if i != j)
                if best_other - s[p.target] < 0.6:
                    return j
            return self.crowd_choice(shown) if rng.random() < 0.8 else self.honest_choice(shown, p)
        if how == "demoter_of_first":
            top = int(self.order[0])
            if top in shown:
                j = int(np.flatnonzero(shown == top)[0])
                others = [i for i in range(k) if i != j]
                rival = max(others, key=lambda i: s[shown[i]])
                if s[top] - s[shown[rival]] < 0.8:
                    return rival
                return j
            return self.crowd_choice(shown)
        if how == "omnipresent":
            rank = int(np.flatnonzero(self.order == p.target)[0])
            above = {int(m) for m in self.order[max(0, rank - 2) : rank]}
            if has_t:
                return int(np.flatnonzero(shown == p.target)[0])
            hit = [i for i in range(k) if int(shown[i]) in above]
            others = [i for i in range(k) if i not in hit]
            if hit and others:
                return max(others, key=lambda i: s[shown[i]])
            return self.crowd_choice(shown)
        raise ValueError(how)


# -- populations ---------------------------------------------------------------------------------


def add_honest(sim: Sim, n_voters: int) -> None:
    rng = sim.rng
    n_campus = max(1, n_voters // 12)
    groups = rng.choice(
        ["long_tail", "power", "strong_taste", "noisy", "fast"],
        n_voters - n_campus,
        p=[0.86, 0.04, 0.04, 0.03, 0.03],
    )
    for g in groups.tolist():
        if g == "long_tail":
            sim.run(sim.person(g), int(min(60, max(1, rng.lognormal(math.log(6), 0.9)))), g)
        elif g == "power":
            sim.run(
                sim.person(g, lapse=float(rng.uniform(0.05, 0.2))),
                int(rng.integers(100, 401)),
                g,
                session_len=25.0,
            )
        elif g == "strong_taste":
            p = sim.person(g, taste_sd=1.0)
            p.taste[int(rng.integers(sim.n))] += 2.0
            sim.run(p, int(rng.integers(20, 151)), g)
        elif g == "noisy":
            sim.run(
                sim.person(g, lapse=float(rng.uniform(0.3, 0.45))), int(rng.integers(50, 301)), g
            )
        else:
            sim.run(sim.person(g, median_ms=1800.0), int(rng.integers(20, 201)), g)
    campuses = [f"campus{i:02d}" for i in range(20)]
    classes = {c: sorted(rng.uniform(0, sim.days * DAY, 6).tolist()) for c in campuses}
    for i in range(n_campus):
        c = campuses[i % len(campuses)]
        p = sim.person("campus", prefix=c, ua=f"{c}-browser")
        n = int(rng.integers(5, 31))
        starts = [
            float(rng.choice(classes[c])) + float(rng.uniform(0, 1800))
            if rng.random() < 0.7
            else float(rng.uniform(0, sim.days * DAY))
            for _ in range(6)
        ]
        sim.run(p, n, "campus", starts=sorted(starts))


def add_bots(sim: Sim, budget: int, strategies: Sequence[str]) -> None:
    rng = sim.rng
    per = budget // len(strategies)
    lower_middle = [int(m) for m in sim.order[len(sim.order) * 2 // 3 : len(sim.order) * 5 // 6]]
    for strat in strategies:
        target = int(sim.order[0]) if strat == "demoter_of_first" else int(rng.choice(lower_middle))
        sim.world.targets[strat] = target
        cast = 0
        while cast < per:
            before = sim.n_vote
            if strat in ("random", "always_first"):
                sim.run(_bot(sim, strat, target), int(rng.integers(100, 251)), strat)
            elif strat == "sybil_burst":
                start = float(rng.uniform(0, sim.days * DAY - 3600))
                prefix = f"net{rng.integers(1 << 30):08x}"
                for _ in range(40):
                    p = _bot(sim, strat, target, prefix=prefix, first_seen=None)
                    sim.run(p, 5, strat, starts=[start + float(rng.uniform(0, 3000))])
            elif strat in ("distributed_sybils", "sybils_no_skip"):
                sim.run(
                    _bot(sim, strat, target, first_seen=None),
                    int(rng.integers(5, 11)),
                    strat,
                    session_len=100.0,
                )
            elif strat in ("camouflaged_promoter", "demoter_of_first"):
                sim.run(_bot(sim, strat, target), int(rng.integers(100, 301)), strat)
            elif strat == "slow_promoter":
                days = int(sim.days)
                starts = sorted((d * DAY + float(rng.uniform(0, DAY))) for d in range(days))
                sim.run(
                    _bot(sim, strat, target),
                    int(rng.integers(2, 7)) * days,
                    strat,
                    session_len=4.0,
                    starts=starts,
                )
            else:  # omnipresent
                sim.run(_bot(sim, strat, target), int(rng.integers(50, 151)), strat)
            cast += sim.n_vote - before


def _bot(sim: Sim, strat: str, target: int, **kw: object) -> Person:
    p = sim.person(strat, **kw)
    p.target = target
    return p


def simulate(
    seed: int, n_honest: int, n_models: int, k: int, bot_share: float, days: float
) -> World:
    sim = Sim(seed, n_models, k, days)
    add_honest(sim, n_honest)
    honest_votes = len(sim.world.votes)
    add_bots(sim, int(honest_votes * bot_share / (1.0 - bot_share)), STRATEGIES)
    sim.world.votes.sort(key=lambda v: (v.time_s, v.vote_id))
    return sim.world


# -- scoring -------------------------------------------------------------------------------------


def _scores(
    votes: Sequence[VoteEvidence], weights: dict[str, float] | None = None
) -> dict[str, float]:
    return dict(Consensus.from_votes(votes, weights=weights).scores)


def _rank(scores: dict[str, float], model: str) -> int:
    order = sorted(scores, key=lambda m: (-scores[m], m))
    return order.index(model) + 1


def _tau(a: dict[str, float], b: dict[str, float], models: Sequence[str]) -> float:
    return float(kendalltau([a[m] for m in models], [b[m] for m in models]).statistic)


@dataclass
class Tally:
    votes: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    neutralised: Counter[str] = field(default_factory=Counter)
    influence: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    voters: Counter[str] = field(default_factory=Counter)
    voters_excluded: Counter[str] = field(default_factory=Counter)
    disp_raw: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    disp_filtered: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    tau_raw: list[float] = field(default_factory=list)
    tau_filtered: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    n_votes: list[int] = field(default_factory=list)
    reasons: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def _displacement(
    world: World,
    model: str,
    honest: dict[str, float],
    votes: Sequence[VoteEvidence],
    weights: dict[str, float] | None = None,
) -> int:
    """How many places ``model`` sits away from its honest-only rank (one strategy's votes added)."""
    return _rank(honest, model) - _rank(_scores(votes, weights), model)


def run_seed(seed: int, args: argparse.Namespace, k: int, share: float, tally: Tally) -> None:
    world = simulate(seed, args.honest, args.models, k, share, args.days)
    votes = world.votes
    label = world.label
    started = time.perf_counter()
    result = replay_scans(votes, scan_every_s=300.0, config=args.config)
    tally.seconds.append(time.perf_counter() - started)
    tally.n_votes.append(len(votes))
    honest_votes = [v for v in votes if label[v.voter] in HONEST]
    honest = _scores(honest_votes)
    kept = [v for v in votes if v.vote_id not in result.excluded]
    tally.tau_raw.append(_tau(honest, _scores(votes), world.models))
    weights = result.weights
    tally.tau_filtered.append(_tau(honest, _scores(kept, weights), world.models))
    n_by_voter = Counter(v.voter for v in votes)
    for voter, n in n_by_voter.items():
        tally.voters[label[voter]] += 1
        tally.votes[label[voter]] += n
        if result.verdicts.get(voter) == "excluded":
            tally.voters_excluded[label[voter]] += 1
            for r in result.reports[voter].reasons:
                tally.reasons[label[voter]][r] += 1
    for v in votes:
        lab = label[v.voter]
        w = 0.0 if v.vote_id in result.excluded else weights.get(v.vote_id, 1.0)
        tally.excluded[lab] += v.vote_id in result.excluded
        tally.neutralised[lab] += w <= NEUTRALISED
        tally.influence[lab] += w
    for strat, target in world.targets.items():
        model = world.models[target]
        mine = [v for v in votes if label[v.voter] == strat]
        kept_mine = [v for v in mine if v.vote_id not in result.excluded]
        tally.disp_raw[strat].append(_displacement(world, model, honest, honest_votes + mine))
        tally.disp_filtered[strat].append(
            _displacement(
                world,
                model,
                honest,
                [v for v in honest_votes if v.vote_id not in result.excluded] + kept_mine,
                weights,
            )
        )


def _pct(a: float, b: float) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "-"


def _row(tally: Tally, name: str, labels: Sequence[str], displacement: bool = False) -> str:
    """One table row: the voters of ``labels`` pooled (one label: one group)."""
    voters = sum(tally.voters[lab] for lab in labels)
    votes = sum(tally.votes[lab] for lab in labels)
    excluded = sum(tally.excluded[lab] for lab in labels)
    neutralised = sum(tally.neutralised[lab] for lab in labels)
    influence = sum(tally.influence[lab] for lab in labels)
    voters_x = sum(tally.voters_excluded[lab] for lab in labels)
    raw = filt = reasons = ""
    if len(labels) == 1:
        lab = labels[0]
        reasons = ", ".join(f"{r} {n}" for r, n in tally.reasons[lab].most_common(3))
        if displacement:
            raw, filt = str(tally.disp_raw.get(lab, [])), str(tally.disp_filtered.get(lab, []))
    return (
        f"| {name} | {voters} | {votes} | {_pct(excluded, votes)} | {_pct(neutralised, votes)} "
        f"| {_pct(influence, votes)} | {_pct(voters_x, voters)} "
        f"| {raw} | {filt} | {reasons} |"
    )


def report(tally: Tally, k: int, share: float, seeds: int) -> str:
    out = [
        f"\n### K={k}, bots {share:.0%} of votes, {seeds} seed(s)\n",
        "| voters | n voters | n votes | votes excluded | excluded or weight <= 0.1 "
        "| influence left | voters excluded "
        "| target displacement unfiltered | filtered | caught by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    out += [_row(tally, lab, [lab], displacement=True) for lab in STRATEGIES]
    out.append(_row(tally, "**all bots**", STRATEGIES))
    out += [_row(tally, f"honest {lab}", [lab]) for lab in HONEST]
    out.append(_row(tally, "**all honest**", HONEST))
    out.append(
        f"\nKendall tau vs the honest-only leaderboard: unfiltered {min(tally.tau_raw):.3f}-{max(tally.tau_raw):.3f}, "
        f"filtered {min(tally.tau_filtered):.3f}-{max(tally.tau_filtered):.3f}. Replay "
        f"({int(np.mean(tally.n_votes))} votes, a scan every 300 s): {np.mean(tally.seconds):.1f} s per arena."
    )
    return "\n".join(out)


def scan_cost(sizes: Sequence[int], replay_max: int) -> str:
    """Seconds for one full scan (every voter, campaign search) and for the replayed log."""
    lines = [
        "\n### Scan cost (pairwise, 15% bots, two weeks)\n",
        "| votes | voters | full scan with campaign search | replay, a scan every 300 s |",
        "|---|---|---|---|",
    ]
    for n in sizes:
        world = simulate(0, max(100, n // 30), 24, 2, 0.15, 14.0)
        votes = world.votes
        counted = PairCounts.from_rankings(world.models, [v.ranking for v in votes])
        started = time.perf_counter()
        scan_step(votes, counted, recent=votes)
        full = time.perf_counter() - started
        replay = "-"
        if len(votes) <= replay_max:
            started = time.perf_counter()
            replay_scans(votes, scan_every_s=300.0)
            replay = f"{time.perf_counter() - started:.0f} s"
        lines.append(f"| {len(votes):,} | {len(world.label):,} | {full:.0f} s | {replay} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def _config(settings: Sequence[str]) -> FraudConfig:
    """The default FraudConfig with ``FIELD=VALUE`` changes (numbers parsed as such)."""
    fields = {f.name: f for f in dataclasses.fields(FraudConfig)}
    changes: dict[str, object] = {}
    for item in settings:
        name, sep, raw = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--set {item!r}: use FIELD=VALUE with a FraudConfig field")
        default = getattr(DEFAULT_CONFIG, name)
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {item!r}: {name} is true or false")
            changes[name] = raw.lower() in ("true", "1")
        else:
            changes[name] = type(default)(raw) if isinstance(default, int | float) else raw
    return dataclasses.replace(DEFAULT_CONFIG, **changes)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--honest", type=int, default=3000, help="honest voters per arena")
    ap.add_argument("--models", type=int, default=24)
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--k", default="2,4", help="battle sizes, comma-separated")
    ap.add_argument("--bot-share", default="0.15", help="bot shares of votes, comma-separated")
    ap.add_argument(
        "--cost",
        default="",
        help="instead: time the scan at about these vote counts, comma-separated (100000,1000000)",
    )
    ap.add_argument("--replay-max", type=int, default=200_000, help="largest log --cost replays")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a FraudConfig field to change (repeatable), e.g. targeting_strong_shift=4",
    )
    args = ap.parse_args(argv)
    try:
        args.config = _config(args.set)
    except ValueError as exc:
        ap.error(str(exc))
    if args.cost:
        print(scan_cost([int(x) for x in args.cost.split(",")], args.replay_max))
        return 0
    ks = [int(x) for x in args.k.split(",")]
    shares = [float(x) for x in args.bot_share.split(",")]
    runs = [(k, s, seed) for k in ks for s in shares for seed in range(args.seeds)]
    tallies: dict[tuple[int, float], Tally] = defaultdict(Tally)
    for k, s, seed in tqdm(runs, desc="arenas", file=sys.stderr):
        run_seed(seed, args, k, s, tallies[(k, s)])
    for (k, s), tally in tallies.items():
        print(report(tally, k, s, args.seeds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
