"""Benchmark: does the fraud scan catch vote-stuffing bots without excluding honest people?

A simulated arena (``--models`` 20 models with hidden Bradley-Terry strengths
``N(0, 1)`` on the logit scale; random pairs, slot order shuffled; ``--k 4``
gives best-of-4 battles instead) with ``--honest`` (1500) honest voters:

* votes per voter heavy-tailed, ``lognormal(ln 10, 1.2)`` (mean ~20, ~0.6% above 200);
* choices: Bradley-Terry on the true strength plus a personal taste ``N(0, 0.3)``
  per model (Thurstone-style idiosyncrasy), 10% lapses (uniform choice), 3% ties /
  "both bad", slot A favoured by +5 percentage points;
* speed: time to vote ``lognormal`` with median 6 s (x a per-voter factor,
  ``exp N(0, 0.25)``) and sigma 0.75, so ~3% of votes beat the 1.5 s minimum
  viewing time; ~4 s (lognormal) from a vote to the next battle; sessions of ~12
  votes spread over a week;
* network: 95% of voters on their own prefix, 5% on 10 shared campus prefixes
  whose students often vote together (class sessions); 20 common user agents.

Bots, mixed to make ``--bot-share`` (15%) of all votes, one sixth per strategy:

``random``        uniform random choices, human speed, 100-250 votes each;
``always_first``  always slot A, human speed, 30-150 votes;
``promoter``      votes for its (lower-middle) model whenever shown, honest otherwise,
                  human speed, 100-300 votes;
``demoter``       votes against a top-2 rival whenever shown, honest otherwise,
                  human speed, 100-300 votes;
``sybil``         bursts of 40 fresh identities x 5 votes within one hour from one
                  prefix, each vote for the burst's model (the attacker abandons
                  battles without it, so every vote shows it);
``fast``          random choices in 0.3-1.2 s with automated pacing, 50-300 votes.

The scan runs as in production: consensus from all votes -> scan -> drop the
excluded voters' votes (and the votes a report keeps out: a lone strong targeting
finding keeps out the voter's votes where its model was shown, not the voter) ->
refit -> rescan (``--rounds`` 3).  Reported per strategy: voters, votes, share of
its votes excluded or kept out and of its voters excluded; honest voters
excluded and flagged suspicious; Kendall's tau (Kendall 1938, scipy) of the
Bradley-Terry leaderboard against the clean (honest-only) one, unfiltered and
filtered.  The Chatbot Arena baseline (Chiang et al. 2024: e-values 1/(2p),
product against 1/alpha = 20, nothing else) runs the same loop for comparison.

No bot label reaches :func:`ranking.fraud.scan`; labels are used for scoring only.
Results and the reasoning behind the thresholds: benchmarks/fraud_notes.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
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
from ranking.fraud import DETECTORS, Consensus, FraudConfig, TrafficBaseline, VoteEvidence, scan

STRATEGIES = ("random", "always_first", "promoter", "demoter", "sybil", "fast")
DAY = 86_400.0
MIN_VIEW_MS = 1500

#: The Chatbot Arena anomalous-user test alone: pure product of 1/(2p), exclude at 20.
LMARENA = FraudConfig(
    detectors=("crowd_disagreement",),
    bet=1.0,
    disagreement_lapse=0.0,
    disagreement_suspicious_e=20.0,
    disagreement_strong_e=20.0,
    disagreement_min_votes=1,
    min_votes=1,
)


# -- the world -------------------------------------------------------------------------------


@dataclass
class World:
    models: list[str]
    strength: dict[str, float]
    votes: list[VoteEvidence] = field(default_factory=list)
    label: dict[str, str] = field(default_factory=dict)  # voter -> "honest" or a strategy
    targets: dict[str, str] = field(default_factory=dict)  # strategy -> its model


@dataclass
class _Person:
    """How one voter (honest or bot) chooses and paces."""

    voter: str
    prefix: str
    ua: str
    taste: NDArray[np.float64]
    median_ms: float
    first_seen: float | None = None


class Sim:
    """Generates one arena; deterministic given the seed."""

    def __init__(self, seed: int, n_models: int, k: int, days: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.k = k
        self.days = days
        self.models = [f"m{i:02d}" for i in range(n_models)]
        self.s = self.rng.normal(0.0, 1.0, n_models)
        self.uas = [f"ua{i:02d}" for i in range(20)]
        w = 1.0 / np.arange(1, 21)
        self.ua_w = w / w.sum()
        self.n_vote = 0
        self.world = World(self.models, dict(zip(self.models, self.s.tolist(), strict=True)))

    # -- helpers ---------------------------------------------------------------------------------
    def ua(self) -> str:
        return str(self.rng.choice(self.uas, p=self.ua_w))

    def battle(self, must: int | None = None) -> NDArray[np.int64]:
        if must is None:
            return self.rng.choice(len(self.models), self.k, replace=False)
        rest = self.rng.choice(
            [i for i in range(len(self.models)) if i != must], self.k - 1, replace=False
        )
        shown = np.concatenate([[must], rest])
        self.rng.shuffle(shown)
        return shown

    def honest_probs(self, shown: NDArray[np.int64], person: _Person) -> NDArray[np.float64]:
        u = self.s[shown] + person.taste[shown]
        p: NDArray[np.float64] = np.exp(u - u.max())
        p /= p.sum()
        p = 0.9 * p + 0.1 / len(shown)  # 10% lapses
        # +5 percentage points to slot A, taken proportionally from the others
        a = min(0.99, p[0] + 0.05)
        p[1:] *= (1.0 - a) / p[1:].sum()
        p[0] = a
        return p

    def emit(
        self, person: _Person, t: float, shown: NDArray[np.int64], win: int | None, ms: float
    ) -> None:
        slots = tuple(self.models[i] for i in shown)
        if win is None:
            ranking = Ranking.tie(slots)
        elif self.k == 2:
            ranking = Ranking(((slots[win],), (slots[1 - win],)))
        else:
            ranking = Ranking.best_of(slots[win], [m for j, m in enumerate(slots) if j != win])
        self.n_vote += 1
        self.world.votes.append(
            VoteEvidence(
                vote_id=f"v{self.n_vote:07d}",
                voter=person.voter,
                time_s=t,
                slots=slots,
                ranking=ranking,
                time_to_vote_ms=max(0, round(ms)),
                min_view_ms=MIN_VIEW_MS,
                prefix=person.prefix,
                user_agent=person.ua,
                first_seen_s=person.first_seen,
            )
        )

    def human_ms(self, person: _Person) -> float:
        return float(person.median_ms * math.exp(self.rng.normal(0.0, 0.75)))

    def sessions(self, n: int, mean_len: float) -> list[int]:
        sizes: list[int] = []
        while sum(sizes) < n:
            sizes.append(int(self.rng.geometric(1.0 / mean_len)))
        sizes[-1] -= sum(sizes) - n
        return [s for s in sizes if s > 0]

    def run_person(
        self,
        person: _Person,
        n: int,
        choose: str,
        target: int | None = None,
        session_len: float = 12.0,
        anchors: list[float] | None = None,
    ) -> None:
        """Cast ``n`` votes in sessions; ``choose`` is the voting behaviour."""
        sizes = self.sessions(n, session_len)
        horizon = self.days * DAY
        starts = np.sort(self.rng.uniform(0.0, horizon, len(sizes)))
        if anchors:
            for i in range(len(starts)):
                if self.rng.random() < 0.6:  # a class session on campus
                    starts[i] = float(self.rng.choice(anchors)) + self.rng.normal(0.0, 600.0)
            starts = np.sort(starts)
        t_end = -math.inf
        first = True
        for size, start in zip(sizes, starts.tolist(), strict=True):
            t = max(start, t_end + 60.0)
            for _ in range(size):
                fast = choose == "fast"
                shown = self.battle()
                ms = (
                    float(self.rng.lognormal(math.log(600.0), 0.3))
                    if fast
                    else self.human_ms(person)
                )
                gap = (
                    float(self.rng.lognormal(math.log(0.4), 0.4))
                    if fast
                    else float(self.rng.lognormal(math.log(4.0), 0.5))
                )
                t += ms / 1000.0 + gap
                if first and person.first_seen is None:
                    person.first_seen = t - ms / 1000.0 - float(self.rng.uniform(0.0, 60.0))
                first = False
                self.emit(person, t, shown, self.choose(choose, shown, person, target), ms)
            t_end = t

    def choose(
        self, how: str, shown: NDArray[np.int64], person: _Person, target: int | None
    ) -> int | None:
        k = len(shown)
        if how in ("random", "fast"):
            return int(self.rng.integers(k))
        if how == "always_first":
            return 0
        if how in ("promoter", "sybil") and target is not None and target in shown:
            return int(np.flatnonzero(shown == target)[0])
        if how == "demoter" and target is not None and target in shown:
            others = [j for j in range(k) if shown[j] != target]
            p = self.honest_probs(shown, person)[others]
            return int(others[int(self.rng.choice(len(others), p=p / p.sum()))])
        # honest
        if self.rng.random() < 0.03:
            return None  # tie / both bad
        return int(self.rng.choice(k, p=self.honest_probs(shown, person)))


#: Votes per bot (lowest, highest) for each strategy but sybil (bursts of 40 x 5 votes).
_VOLUMES: dict[str, tuple[int, int]] = {
    "random": (100, 250),
    "always_first": (30, 150),
    "promoter": (100, 300),
    "demoter": (100, 300),
    "fast": (50, 300),
}


def _add_honest(sim: Sim, seed: int, n_honest: int, days: float) -> None:
    """The honest voters: 95% on their own prefix, 5% on 10 campuses with class sessions."""
    rng = sim.rng
    n_models_ = len(sim.models)
    campuses = [f"campus{seed}-{c}" for c in range(10)]
    anchors = {c: rng.uniform(0.0, days * DAY, 4).tolist() for c in campuses}
    for i in range(n_honest):
        voter = f"h{i:05d}"
        campus = rng.random() < 0.05
        prefix = str(rng.choice(campuses)) if campus else f"net{seed}-{i}"
        person = _Person(
            voter,
            prefix,
            sim.ua(),
            rng.normal(0.0, 0.3, n_models_),
            6000.0 * math.exp(rng.normal(0.0, 0.25)),
        )
        if rng.random() < 0.5:  # a returning identity, created before this week
            person.first_seen = -float(rng.uniform(0.0, 30 * DAY))
        n = min(2000, max(1, round(math.exp(rng.normal(math.log(10.0), 1.2)))))
        sim.run_person(person, n, "honest", anchors=anchors[prefix] if campus else None)
        sim.world.label[voter] = "honest"


def _sybil_burst(sim: Sim, seed: int, b: int, target: int, days: float) -> int:
    """Burst ``b``: 40 fresh identities x 5 votes for ``target`` within one hour; votes cast."""
    rng = sim.rng
    prefix = f"burst{seed}-{b}"
    start = float(rng.uniform(0.0, days * DAY - 3600.0))
    cast = 0
    for j in range(40):
        voter = f"sybil{b}-{j:02d}"
        t0 = start + float(rng.uniform(0.0, 3000.0))
        person = _Person(voter, prefix, sim.ua(), rng.normal(0.0, 0.3, len(sim.models)), 6000.0, t0)
        sim.world.label[voter] = "sybil"
        t = t0
        for _ in range(5):
            shown = sim.battle(target)
            ms = sim.human_ms(person)
            t += ms / 1000.0 + float(rng.lognormal(math.log(4.0), 0.5))
            win = sim.choose("sybil", shown, person, target)
            sim.emit(person, t, shown, win, ms)
        cast += 5
    return cast


def _bot(sim: Sim, seed: int, strategy: str, b: int, target: int | None) -> int:
    """Bot ``b`` of ``strategy`` (not sybil); votes cast."""
    rng = sim.rng
    voter = f"{strategy}{b:03d}"
    person = _Person(
        voter,
        f"bot{seed}-{strategy}-{b}",
        sim.ua(),
        rng.normal(0.0, 0.3, len(sim.models)),
        6000.0 * math.exp(rng.normal(0.0, 0.25)),
    )
    lo, hi = _VOLUMES[strategy]
    n = int(rng.integers(lo, hi + 1))
    sim.run_person(person, n, strategy, target, session_len=40.0)
    sim.world.label[voter] = strategy
    return n


def _add_bots(
    sim: Sim, seed: int, strategy: str, targets: dict[str, int], per_strategy: float, days: float
) -> None:
    """Bots of ``strategy`` until their votes come nearest to ``per_strategy``."""
    lo, hi = _VOLUMES.get(strategy, (200, 200))
    cast = 0
    b = 0
    while cast + (lo + hi) / 4 < per_strategy:  # nearest to the share
        if strategy == "sybil":
            cast += _sybil_burst(sim, seed, b, targets["sybil"], days)
        else:
            cast += _bot(sim, seed, strategy, b, targets.get(strategy))
        b += 1


def simulate(
    seed: int, n_honest: int, n_models: int, k: int, bot_share: float, days: float = 7.0
) -> World:
    """One arena: honest voters, then bots making up ``bot_share`` of all votes."""
    sim = Sim(seed, n_models, k, days)
    _add_honest(sim, seed, n_honest, days)
    n_honest_votes = len(sim.world.votes)
    per_strategy = bot_share / (1.0 - bot_share) * n_honest_votes / len(STRATEGIES)
    n_models_ = len(sim.models)
    order = np.argsort(-sim.s)  # best first
    targets = {
        "promoter": int(order[int(0.65 * n_models_)]),
        "demoter": int(order[1]),
        "sybil": int(order[int(0.75 * n_models_)]),
    }
    sim.world.targets = {s: sim.models[t] for s, t in targets.items()}
    for strategy in STRATEGIES:
        _add_bots(sim, seed, strategy, targets, per_strategy, days)
    sim.world.votes.sort(key=lambda v: (v.time_s, v.vote_id))
    return sim.world


# -- the loop --------------------------------------------------------------------------------


@dataclass
class Outcome:
    excluded: set[str]
    kept_out: set[str]  # vote ids kept out of voters who are not excluded (lone targeting)
    scoped: set[str]  # those voters: their other votes weigh the trust floor in the app
    suspicious: set[str]
    reasons: dict[str, tuple[str, ...]]
    scores: dict[str, float]


def filter_loop(votes: Sequence[VoteEvidence], config: FraudConfig, rounds: int) -> Outcome:
    """consensus -> scan -> exclude -> refit on the kept votes -> rescan, ``rounds`` times."""
    baseline = TrafficBaseline.from_votes(votes, config=config)
    kept = list(votes)
    excluded: set[str] = set()
    kept_out: set[str] = set()
    scoped: set[str] = set()
    reports = {}
    for _ in range(rounds):
        consensus = Consensus.from_votes(kept)
        reports = scan(votes, consensus, config=config, baseline=baseline)
        excluded = {v for v, r in reports.items() if r.verdict == "excluded"}
        scoped = {v for v, r in reports.items() if r.verdict != "excluded" and r.kept_out}
        kept_out = {i for v in scoped for i in reports[v].kept_out}
        kept = [v for v in votes if v.voter not in excluded and v.vote_id not in kept_out]
    return Outcome(
        excluded,
        kept_out,
        scoped,
        {v for v, r in reports.items() if r.verdict == "suspicious"},
        {v: r.reasons for v, r in reports.items() if r.verdict != "ok"},
        dict(Consensus.from_votes(kept).scores),
    )


def tau(a: dict[str, float], b: dict[str, float], models: Sequence[str]) -> float:
    res = kendalltau([a.get(m, 0.0) for m in models], [b.get(m, 0.0) for m in models])
    return float(res.statistic)


@dataclass
class Tally:
    voters: Counter[str] = field(default_factory=Counter)
    votes: Counter[str] = field(default_factory=Counter)
    ex_voters: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    ex_votes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    floor_votes: Counter[str] = field(default_factory=Counter)  # ours: counted at the floor
    suspicious: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    caught_by: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    taus: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    taus_true: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _count_kept_out(
    votes: Sequence[VoteEvidence], out: Outcome, label: dict[str, str], name: str, tally: Tally
) -> None:
    """Votes kept out of voters who are not excluded count as excluded; the scoped voters'
    other votes as counted at the trust floor (what the app and ``replay_scans`` do)."""
    for v in votes:
        if v.vote_id in out.kept_out:
            tally.ex_votes[name][label[v.voter]] += 1
        elif v.voter in out.scoped:
            tally.floor_votes[label[v.voter]] += 1


def run_seed(seed: int, args: argparse.Namespace, k: int, tally: Tally) -> None:
    world = simulate(seed, args.honest, args.models, k, args.bot_share)
    votes = world.votes
    n_by_voter = Counter(v.voter for v in votes)
    for voter, n in n_by_voter.items():
        lab = world.label[voter]
        tally.voters[lab] += 1
        tally.votes[lab] += n
    clean = dict(
        Consensus.from_votes([v for v in votes if world.label[v.voter] == "honest"]).scores
    )
    dirty = dict(Consensus.from_votes(votes).scores)
    tally.taus["unfiltered"].append(tau(clean, dirty, world.models))
    tally.taus_true["clean"].append(tau(world.strength, clean, world.models))
    tally.taus_true["unfiltered"].append(tau(world.strength, dirty, world.models))
    for name, config in (("ours", FraudConfig()), ("lmarena", LMARENA)):
        out = filter_loop(votes, config, args.rounds)
        tally.taus[name].append(tau(clean, out.scores, world.models))
        tally.taus_true[name].append(tau(world.strength, out.scores, world.models))
        for voter in out.excluded:
            lab = world.label[voter]
            tally.ex_voters[name][lab] += 1
            tally.ex_votes[name][lab] += n_by_voter[voter]
            if name == "ours":
                for d in out.reasons[voter]:
                    tally.caught_by[lab][d] += 1
        _count_kept_out(votes, out, world.label, name, tally)
        for voter in out.suspicious:
            tally.suspicious[name][world.label[voter]] += 1
            if name == "ours" and world.label[voter] == "honest":
                for d in out.reasons[voter]:
                    tally.caught_by["honest (suspicious)"][d] += 1


def _pct(num: int, den: int) -> str:
    return f"{100.0 * num / den:.1f}%" if den else "-"


def report(tally: Tally, k: int, seeds: int, args: argparse.Namespace) -> None:
    bots = [s for s in STRATEGIES if tally.voters[s]]
    total_bot_votes = sum(tally.votes[s] for s in bots)
    total_votes = total_bot_votes + tally.votes["honest"]
    print(
        f"\nK={k}: {args.models} models, {args.honest} honest voters, bots "
        f"{100.0 * total_bot_votes / total_votes:.1f}% of votes, {seeds} seeds pooled, "
        f"{args.rounds} scan rounds"
    )
    print(
        "| voters | n voters | n votes | votes excluded (ours) | excluded or at the trust floor "
        "(ours) | voters excluded (ours) | votes excluded (LMArena) | voters excluded (LMArena) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for lab in [*bots, "honest"]:
        print(
            f"| {lab} | {tally.voters[lab]} | {tally.votes[lab]} "
            f"| {_pct(tally.ex_votes['ours'][lab], tally.votes[lab])} "
            f"| {_pct(tally.ex_votes['ours'][lab] + tally.floor_votes[lab], tally.votes[lab])} "
            f"| {_pct(tally.ex_voters['ours'][lab], tally.voters[lab])} "
            f"| {_pct(tally.ex_votes['lmarena'][lab], tally.votes[lab])} "
            f"| {_pct(tally.ex_voters['lmarena'][lab], tally.voters[lab])} |"
        )
    for name in ("ours", "lmarena"):
        ex_bot = sum(tally.ex_votes[name][s] for s in bots)
        floor = sum(tally.floor_votes[s] for s in bots) if name == "ours" else 0
        print(
            f"| all bots ({name}) | {sum(tally.voters[s] for s in bots)} | {total_bot_votes} "
            f"| {_pct(ex_bot, total_bot_votes)} | {_pct(ex_bot + floor, total_bot_votes)} | "
            f"{_pct(sum(tally.ex_voters[name][s] for s in bots), sum(tally.voters[s] for s in bots))}"
            " | | |"
        )
    h = tally.voters["honest"]
    print(
        f"\nhonest voters excluded: ours {_pct(tally.ex_voters['ours']['honest'], h)} "
        f"({tally.ex_voters['ours']['honest']} of {h}), flagged suspicious "
        f"{_pct(tally.suspicious['ours']['honest'], h)}; LMArena excluded "
        f"{_pct(tally.ex_voters['lmarena']['honest'], h)}"
    )
    print(
        "\nKendall tau of the BT leaderboard vs the clean (honest-only) one, mean [min] over seeds"
    )
    print("| leaderboard | tau vs clean | tau vs true strengths |")
    print("|---|---|---|")
    print(
        f"| clean (honest only) | 1 | {statistics.mean(tally.taus_true['clean']):.3f} "
        f"[{min(tally.taus_true['clean']):.3f}] |"
    )
    for name, label in (
        ("unfiltered", "all votes, unfiltered"),
        ("ours", "filtered (ours)"),
        ("lmarena", "filtered (LMArena e-value only)"),
    ):
        t, tt = tally.taus[name], tally.taus_true[name]
        print(
            f"| {label} | {statistics.mean(t):.3f} [{min(t):.3f}] "
            f"| {statistics.mean(tt):.3f} [{min(tt):.3f}] |"
        )
    print("\nDetectors behind the exclusions (ours): share of excluded voters naming each")
    print("| voters | " + " | ".join(DETECTORS) + " |")
    print("|---|" + "---|" * len(DETECTORS))
    for lab in [*bots, "honest", "honest (suspicious)"]:
        n = (
            tally.suspicious["ours"]["honest"]
            if lab == "honest (suspicious)"
            else tally.ex_voters["ours"][lab]
        )
        cells = [_pct(tally.caught_by[lab][d], n) for d in DETECTORS]
        print(f"| {lab} ({n}) | " + " | ".join(cells) + " |")


def svg_chart(tallies: dict[int, Tally]) -> str:
    """A grouped bar chart (plain SVG, no plotting library): per voter group, the share of its
    votes excluded by our detectors and by the LMArena test alone, one panel per K."""
    colours = {"ours": "#2563eb", "lmarena": "#f59e0b"}
    names = {"ours": "ours (six detectors)", "lmarena": "LMArena e-value test alone"}
    row_h, bar_h, left, width, panel_gap = 34, 13, 130, 420, 40
    panels: list[str] = []
    y = 40
    for k, tally in tallies.items():
        groups = [g for g in [*STRATEGIES, "honest"] if tally.voters[g]]
        title = f"K={k} ({'pairwise' if k == 2 else f'best-of-{k}'}): share of votes excluded"
        panels.append(f'<text x="{left}" y="{y - 14}" font-weight="bold">{title}</text>')
        for pct in (0, 25, 50, 75, 100):
            x = left + width * pct / 100
            panels.append(
                f'<line x1="{x:.0f}" y1="{y - 6}" x2="{x:.0f}" y2="{y + row_h * len(groups)}" '
                f'stroke="#ddd"/><text x="{x:.0f}" y="{y + row_h * len(groups) + 14}" '
                f'text-anchor="middle" font-size="11">{pct}%</text>'
            )
        for i, group in enumerate(groups):
            top = y + i * row_h
            panels.append(
                f'<text x="{left - 8}" y="{top + bar_h + 4}" text-anchor="end">{group}</text>'
            )
            for j, name in enumerate(("ours", "lmarena")):
                share = tally.ex_votes[name][group] / tally.votes[group]
                bar_y = top + j * bar_h
                panels.append(
                    f'<rect x="{left}" y="{bar_y}" width="{width * share:.1f}" height="{bar_h - 2}" '
                    f'fill="{colours[name]}"><title>{group}, {names[name]}: '
                    f"{100 * share:.1f}%</title></rect>"
                    f'<text x="{left + width * share + 4:.1f}" y="{bar_y + bar_h - 3}" '
                    f'font-size="10">{100 * share:.1f}%</text>'
                )
        y += row_h * len(groups) + panel_gap + 20
    legend = "".join(
        f'<rect x="{left + i * 210}" y="{y - 26}" width="12" height="12" fill="{colours[n]}"/>'
        f'<text x="{left + i * 210 + 18}" y="{y - 16}">{names[n]}</text>'
        for i, n in enumerate(("ours", "lmarena"))
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" height="{y}" '
        'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>'
        + "".join(panels)
        + legend
        + "</svg>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fraud_sim", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--honest", type=int, default=1500, help="honest voters")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--bot-share", type=float, default=0.15, help="bots' share of all votes")
    parser.add_argument("--rounds", type=int, default=3, help="scan -> exclude -> refit rounds")
    parser.add_argument(
        "--k", default="2", help="battle sizes, comma-separated: 2 (pairwise) and/or 4 (best-of-4)"
    )
    parser.add_argument("--svg", help="also write a bar chart of the exclusions to this file")
    args = parser.parse_args(argv)
    try:
        ks = [int(x) for x in args.k.split(",")]
    except ValueError:
        parser.error("--k: comma-separated ints")
    if args.seeds < 1 or args.honest < 10 or args.models < 4 or args.rounds < 1:
        parser.error("--seeds >= 1, --honest >= 10, --models >= 4, --rounds >= 1")
    if not 0.0 < args.bot_share < 0.9 or any(k not in (2, 4) for k in ks):
        parser.error("--bot-share in (0, 0.9), --k in {2, 4}")
    t0 = time.perf_counter()
    tallies = {k: Tally() for k in ks}
    jobs = [(k, s) for k in ks for s in range(args.seeds)]
    for k, s in tqdm(jobs, desc="arenas", file=sys.stderr):
        run_seed(s, args, k, tallies[k])
    for k in ks:
        report(tallies[k], k, args.seeds, args)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as out:
            out.write(svg_chart(tallies))
        print(f"\nchart written to {args.svg}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
