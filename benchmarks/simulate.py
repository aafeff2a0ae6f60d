"""Benchmark: how many votes until the leaderboard is right, and stays right.

Reproduces the K-Sort Arena simulation (Li et al. 2024, arXiv:2408.14468):
``--models`` (50) models with hidden true skills, a simulated voter, and for
each scheme the number of votes until

* Kendall's tau between the shown order and the true order is >= 0.95 at
  every later read, and
* the shown order is exactly the true order at every later read,

reading the leaderboard every ``--read-every`` (10) votes up to the scheme's
cap (">cap" if the condition still fails at the last read).  Also the
new-model placement experiment: one model joins 50 converged ones; votes
until it sits at its true rank at every later read.

True skills are evenly spaced ``--spacing`` (20) Elo points apart.  The voter
is Thurstonian (Thurstone 1927): it perceives ``skill + N(0, noise^2)`` for
every shown model and ranks by the perception; three settings: noiseless,
``noise = --noise`` (default spacing / sqrt 2 = 14.1 points, so the perceived
*difference* of two neighbours has sd equal to their true gap: neighbours are
ordered right 84% of the time, two apart 98%), and the same plus 5% of votes
fully reversed (best shown last).  ``noise=gap`` (not run by default; ``--settings
noise=gap``) perceives every model with noise as large as the gap between neighbours
(``--spacing``), so neighbours are ordered right 76% of the time; ``--noise 20`` does the
same to the two noisy settings.  A full K=4 ranking vote returns the whole perceived
order; a best-of-K vote only the perceived best.

Schemes:

``elo``      online Elo (K-factor ``--elo-k``, default 32: the fastest of
             4, 8, 16, 32, 64, 128 in a pilot run) + random pairs, K=2.
``ksort``    the K-Sort reference: the ``trueskill`` package with its defaults
             (tau and draw probability included), K-Sort's pivot + UCB
             matchmaking (``ucb``), K=4 full-ranking votes, board ordered by
             ``mu - 3 sigma``.
``ours``     ``default`` matchmaker + ``bayesian`` rater (MAP display), K=4
             full-ranking votes.
``ours-best`` the same with best-of-4 votes (only the winner is reported).
``ucb+map``  ablation: K-Sort's UCB matchmaking feeding our bayesian rater.

This is a benchmark, not a test; run it with ``nice`` (and
``OPENBLAS_NUM_THREADS=1`` on a busy machine).  Results and method choices:
benchmarks/simulate_notes.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import trueskill
from numpy.typing import NDArray
from tqdm import tqdm

from ranking.base import BaseRater
from ranking.bayesian import BayesianRater, weighted_step
from ranking.core import ELO_INIT, Matchmaker, Ranking, Rater, Standing
from ranking.elo import EloRater
from ranking.matchmaking import (
    TRUESKILL_BETA_ELO,
    OverlapMatchmaker,
    RandomMatchmaker,
    UCBMatchmaker,
)

# -- the K-Sort reference rater ---------------------------------------------------------


class TrueSkillRater(BaseRater):
    """K-Sort's rater: ``trueskill`` with package defaults, board by ``mu - 3 sigma``.

    A full ranking is rated as a free-for-all with those ranks; a best-of-K
    vote as winner first and the rest tied (what TrueSkill can express).
    """

    method = "trueskill"

    def __init__(self, players: Sequence[str] = ()) -> None:
        self.env = trueskill.TrueSkill()  # defaults: mu 25, sigma 25/3, beta 25/6, tau 25/300
        self.unit = TRUESKILL_BETA_ELO / self.env.beta  # Elo points per TrueSkill unit
        self.ratings: list[trueskill.Rating] = []
        super().__init__(players, provisional_sigma=50.0)

    def _on_add_player(self) -> None:
        self.ratings.append(self.env.create_rating())

    def _on_record(self, ranking: Ranking, weight: float = 1.0) -> None:
        idx = [self.counts.index(p) for p in ranking.players]
        ranks = [gi for gi, g in enumerate(ranking.groups) for _ in g]
        groups = [(self.ratings[i],) for i in idx]
        rated = [r for (r,) in self.env.rate(groups, ranks=ranks)]
        if weight != 1.0:
            mu, sd = weighted_step(
                np.array([g[0].mu for g in groups]),
                np.array([g[0].sigma for g in groups]),
                np.array([r.mu for r in rated]),
                np.array([r.sigma for r in rated]),
                weight,
            )
            rated = [
                self.env.create_rating(float(m), float(s)) for m, s in zip(mu, sd, strict=True)
            ]
        for i, r in zip(idx, rated, strict=True):
            self.ratings[i] = r

    def skills(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        mu = np.array([r.mu for r in self.ratings])
        sd = np.array([r.sigma for r in self.ratings])
        return ELO_INIT + self.unit * (mu - self.env.mu), self.unit * sd

    def covariance(self) -> NDArray[np.float64]:
        cov: NDArray[np.float64] = np.diag(self.skills()[1] ** 2)
        return cov

    def standings(self) -> list[Standing]:
        mu, sd = self.skills()
        score = mu - 3.0 * sd
        rank = (1 + (score[None, :] > score[:, None]).sum(axis=1)).astype(np.int64)
        return self._table(score, mu - 1.96 * sd, mu + 1.96 * sd, rank, mu, sd)


# -- world -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoterSetting:
    name: str
    noise: float  # Thurstone perception noise sd, Elo points
    reverse: float  # share of votes whose order is reversed


class Voter:
    """Thurstonian voter; deterministic given its seed."""

    def __init__(self, skill: dict[str, float], setting: VoterSetting, seed: int) -> None:
        self.skill = skill
        self.setting = setting
        self.rng = np.random.default_rng(seed)

    def vote(self, shown: Sequence[str], full: bool) -> Ranking:
        s = np.array([self.skill[p] for p in shown])
        perceived = s + self.rng.normal(0.0, 1.0, len(shown)) * self.setting.noise
        order = [shown[i] for i in np.argsort(-perceived, kind="stable")]
        if self.setting.reverse > 0 and self.rng.random() < self.setting.reverse:
            order.reverse()
        if full or len(order) == 2:
            return Ranking(tuple((p,) for p in order))
        return Ranking.best_of(order[0], order[1:])


@dataclass(frozen=True)
class Scheme:
    name: str
    k: int
    full: bool
    cap: int
    warm: int  # votes to converge before the placement experiment
    build: Callable[[list[str], int], tuple[Rater, Matchmaker]]


def _elo(k_factor: float) -> Callable[[list[str], int], tuple[Rater, Matchmaker]]:
    def build(players: list[str], seed: int) -> tuple[Rater, Matchmaker]:
        rater = EloRater(players, k_factor=k_factor)
        return rater, RandomMatchmaker(rater, seed)

    return build


def _ksort(players: list[str], seed: int) -> tuple[Rater, Matchmaker]:
    rater = TrueSkillRater(players)
    return rater, UCBMatchmaker(rater, seed)


def _ours(players: list[str], seed: int) -> tuple[Rater, Matchmaker]:
    rater = BayesianRater(players)
    return rater, OverlapMatchmaker(rater, seed)


def _ucb_map(players: list[str], seed: int) -> tuple[Rater, Matchmaker]:
    rater = BayesianRater(players)
    return rater, UCBMatchmaker(rater, seed)


def kendall_tau(order: Sequence[str], true_pos: dict[str, int]) -> float:
    """Kendall's tau between a shown order and the true positions."""
    pos = np.array([true_pos[p] for p in order])
    n = pos.size
    s = np.sign(pos[None, :] - pos[:, None])[np.triu_indices(n, 1)]
    return float(s.sum() / (n * (n - 1) / 2))


def _stable_from(ok: list[bool], read_every: int) -> int | None:
    """Votes from which ``ok`` holds at every later read (None: fails at the end)."""
    if not ok or not ok[-1]:
        return None
    bad = [i for i, v in enumerate(ok) if not v]
    return read_every * (bad[-1] + 2 if bad else 1)


def _world(n: int, spacing: float, seed: int) -> tuple[list[str], dict[str, float]]:
    rng = np.random.default_rng(10_000 + seed)
    players = [f"m{i:02d}" for i in range(n)]
    levels = ELO_INIT + spacing * (np.arange(n) - (n - 1) / 2)
    skill = dict(zip(players, rng.permutation(levels).tolist(), strict=True))
    return players, skill


def run_convergence(
    scheme: Scheme, setting: VoterSetting, seed: int, n: int, spacing: float, read_every: int
) -> tuple[int | None, int | None]:
    """(votes until tau >= 0.95 stably, votes until the exact order stably)."""
    players, skill = _world(n, spacing, seed)
    true_order = sorted(players, key=lambda p: -skill[p])
    true_pos = {p: i for i, p in enumerate(true_order)}
    rater, mm = scheme.build(players, seed)
    voter = Voter(skill, setting, 20_000 + seed)
    tau_ok: list[bool] = []
    exact_ok: list[bool] = []
    for v in range(1, scheme.cap + 1):
        shown = mm.propose(scheme.k)
        vote = voter.vote(shown, scheme.full)
        rater.record(vote)
        mm.record(vote)
        if v % read_every == 0:
            order = [s.player for s in rater.standings()]
            tau_ok.append(kendall_tau(order, true_pos) >= 0.95)
            exact_ok.append(order == true_order)
    return _stable_from(tau_ok, read_every), _stable_from(exact_ok, read_every)


def run_placement(
    scheme: Scheme,
    setting: VoterSetting,
    seed: int,
    n: int,
    spacing: float,
    read_every: int,
    cap: int,
) -> int | None:
    """Votes after adding one model to ``n`` converged ones until it sits at its true rank."""
    players, skill = _world(n + 1, spacing, seed)
    rng = np.random.default_rng(30_000 + seed)
    newcomer = players[int(rng.integers(n + 1))]
    old = [p for p in players if p != newcomer]
    true_order = sorted(players, key=lambda p: -skill[p])
    target = true_order.index(newcomer)
    rater, mm = scheme.build(old, seed)
    voter = Voter(skill, setting, 20_000 + seed)
    for _ in range(scheme.warm):
        vote = voter.vote(mm.propose(scheme.k), scheme.full)
        rater.record(vote)
        mm.record(vote)
    mm.add_player(newcomer)
    ok: list[bool] = []
    for v in range(1, cap + 1):
        vote = voter.vote(mm.propose(scheme.k), scheme.full)
        rater.record(vote)
        mm.record(vote)
        if v % read_every == 0:
            order = [s.player for s in rater.standings()]
            ok.append(order.index(newcomer) == target)
    return _stable_from(ok, read_every)


# -- reporting -----------------------------------------------------------------------------


def _fmt(values: list[int | None], cap: int) -> str:
    """Median [max] over seeds; None (never stable) sorts as infinity."""
    keyed = sorted(math.inf if v is None else v for v in values)
    med = statistics.median_low(keyed)
    worst = keyed[-1]

    def one(x: float) -> str:
        return f">{cap}" if math.isinf(x) else str(int(x))

    return f"{one(med)} [{one(worst)}]"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simulate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help="caps / 4 and 2 seeds unless --seeds is given"
    )
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=20.0, help="true skill gap, Elo points")
    parser.add_argument(
        "--noise", type=float, default=None, help="voter Thurstone sd (default spacing/sqrt 2)"
    )
    parser.add_argument("--read-every", type=int, default=10)
    parser.add_argument(
        "--elo-k", type=float, default=32.0, help="Elo K-factor (32 was best of 4..128)"
    )
    parser.add_argument(
        "--schemes", default="elo,ksort,ours,ours-best,ucb+map", help="comma-separated subset"
    )
    parser.add_argument(
        "--settings", default="noiseless,noisy,noisy+rev5%", help="comma-separated subset"
    )
    parser.add_argument("--no-placement", action="store_true")
    parser.add_argument(
        "--placement-schemes", default="elo,ksort,ours", help="schemes for the placement run"
    )
    return parser


def _parse_args(
    argv: Sequence[str] | None,
) -> tuple[argparse.Namespace, list[Scheme], list[VoterSetting]]:
    """The arguments (defaults filled in), and the chosen schemes and voter settings."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 2 if args.quick else 5
    if args.seeds < 1 or args.models < 3 or args.read_every < 1:
        parser.error("--seeds >= 1, --models >= 3, --read-every >= 1")
    if args.noise is None:
        args.noise = args.spacing / math.sqrt(2.0)
    scale = 4 if args.quick else 1
    all_schemes = {
        "elo": Scheme("elo", 2, True, 20_000 // scale, 20_000 // scale, _elo(args.elo_k)),
        "ksort": Scheme("ksort", 4, True, 5_000 // scale, 3_000 // scale, _ksort),
        "ours": Scheme("ours", 4, True, 2_000 // scale, 1_000 // scale, _ours),
        "ours-best": Scheme("ours-best", 4, False, 2_000 // scale, 2_000 // scale, _ours),
        "ucb+map": Scheme("ucb+map", 4, True, 2_000 // scale, 1_000 // scale, _ucb_map),
    }
    all_settings = {
        "noiseless": VoterSetting("noiseless", 0.0, 0.0),
        "noisy": VoterSetting("noisy", args.noise, 0.0),
        "noisy+rev5%": VoterSetting("noisy+rev5%", args.noise, 0.05),
        "noise=gap": VoterSetting("noise=gap", args.spacing, 0.0),
    }
    try:
        schemes = [all_schemes[s] for s in args.schemes.split(",")]
        settings = [all_settings[s] for s in args.settings.split(",")]
    except KeyError as exc:
        parser.error(f"unknown scheme or setting {exc}")
    return args, schemes, settings


Results = dict[tuple[str, str], list[tuple[int | None, int | None]]]
Placements = dict[tuple[str, str], list[int | None]]


def _run_convergence_jobs(
    args: argparse.Namespace, schemes: list[Scheme], settings: list[VoterSetting]
) -> Results:
    jobs = [(sc, st, sd) for sc in schemes for st in settings for sd in range(args.seeds)]
    conv: Results = {}
    for sc, st, sd in tqdm(jobs, desc="convergence", file=sys.stderr):
        res = run_convergence(sc, st, sd, args.models, args.spacing, args.read_every)
        conv.setdefault((sc.name, st.name), []).append(res)
    return conv


def _run_placement_jobs(
    args: argparse.Namespace, pschemes: list[Scheme], settings: list[VoterSetting]
) -> Placements:
    pjobs = [(sc, st, sd) for sc in pschemes for st in settings for sd in range(args.seeds)]
    place: Placements = {}
    for sc, st, sd in tqdm(pjobs, desc="placement", file=sys.stderr):
        cap = sc.cap // 2
        res1 = run_placement(sc, st, sd, args.models, args.spacing, args.read_every, cap)
        place.setdefault((sc.name, st.name), []).append(res1)
    return place


def _print_convergence(
    args: argparse.Namespace, schemes: list[Scheme], settings: list[VoterSetting], conv: Results
) -> None:
    print(
        f"\n{args.models} models, true skills {args.spacing:g} Elo apart, voter noise sd "
        f"{args.noise:g} (noise=gap: {args.spacing:g}), {args.seeds} seeds, read every "
        f"{args.read_every} votes; "
        "cells: median [worst] votes until the condition holds at every later read"
    )
    head = "| scheme | K | cap |" + "".join(
        f" {st.name}: tau>=0.95 | {st.name}: exact |" for st in settings
    )
    print(head)
    print("|" + "---|" * (3 + 2 * len(settings)))
    for sc in schemes:
        cells = []
        for st in settings:
            rows = conv[(sc.name, st.name)]
            cells.append(_fmt([r[0] for r in rows], sc.cap))
            cells.append(_fmt([r[1] for r in rows], sc.cap))
        print(f"| {sc.name} | {sc.k} | {sc.cap} | " + " | ".join(cells) + " |")


def _print_placement(
    pschemes: list[Scheme], settings: list[VoterSetting], place: Placements
) -> None:
    print("\nNew-model placement: votes after adding model 51 until it sits at its true rank")
    print("| scheme | warm-up votes | cap |" + "".join(f" {st.name} |" for st in settings))
    print("|" + "---|" * (3 + len(settings)))
    for sc in pschemes:
        cells = [_fmt(place[(sc.name, st.name)], sc.cap // 2) for st in settings]
        print(f"| {sc.name} | {sc.warm} | {sc.cap // 2} | " + " | ".join(cells) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    args, schemes, settings = _parse_args(argv)
    t0 = time.perf_counter()
    conv = _run_convergence_jobs(args, schemes, settings)
    place: Placements = {}
    pschemes: list[Scheme] = []
    if not args.no_placement:
        wanted = args.placement_schemes.split(",")
        pschemes = [sc for sc in schemes if sc.name in wanted]
        place = _run_placement_jobs(args, pschemes, settings)
    _print_convergence(args, schemes, settings, conv)
    if place:
        _print_placement(pschemes, settings, place)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
