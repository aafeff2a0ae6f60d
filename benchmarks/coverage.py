"""Benchmark: do the leaderboards' 95% intervals cover the true scores, for every vote shape?

Votes are drawn from a known Plackett-Luce world (a random-utility model: each voter perceives
``skill + Gumbel noise`` for every shown model and ranks by it), with ``--models`` models whose
skills are evenly spaced over +-550 Elo points, shown in uniformly random sets:

``pairwise``   K=2, A better / B better.
``best4``      K=4, only the perceived best is reported (a partial ranking).
``rank4``      K=4, the full perceived order.
``rank4ties``  K=4, the full order, with neighbours whose perceived gap is under ``--tie-gap``
               logits called a tie (about 25% of neighbours).
``mix``        each vote one of the four, at random.

For each shape, number of votes and seed, every method reports its intervals, and we count

* **coverage**: how often a model's true score lies inside its 95% interval, and
* **false orderings**: pairs the board calls *significantly* different (Bradley-Terry: the
  intervals do not overlap; Bayesian: the difference exceeds 1.96 sd of the difference) in the
  wrong direction, as a share of all pairs.

The true score is the population value of the pairwise Bradley-Terry fit (what the estimator
converges to): the skills themselves for the shapes without ties (Plackett-Luce's pairwise
marginals are Bradley-Terry), and for ``rank4ties`` the fit to 2 million votes, since counting a
tie as half a win pulls scores towards the middle. Scores are centred (mean 1000) on both sides.

Methods: ``bt-pairs`` / ``bayes-pairs`` resample or bound the *pairs* as if independent (what the
leaderboards did before); ``bt-votes`` / ``bayes-votes`` use vote-level replicates (a Poisson
bootstrap of votes, and the sandwich covariance built from it); ``bt-votes`` is the leaderboards'
Bradley-Terry: Firth's bias-reduced scores, intervals no narrower than the Laplace width there;
``bayes-votes`` is the leaderboards' Bayesian display: the vote-level width (no narrower than the
spread of the mode refitted on the replicates), and bias-aware intervals that reach from the
shrunk score to the unshrunk (Firth) one. Each cell prints its coverage +- the standard error
over seeds: a seed's models share one board, so 20 seeds of 16 models give about +-0.012.

Target (issue 12): coverage in [0.93, 0.97] for every shape and size, false orderings <= 2.5%.
Run: ``python benchmarks/coverage.py`` (``--quick`` for a smaller grid).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm
from tqdm import tqdm

from ranking.bayesian import BayesianRater
from ranking.bradley_terry import BradleyTerryRater, fit_bradley_terry
from ranking.core import LOGIT_TO_ELO, Ranking
from ranking.counts import PairCounts

SHAPES = ("pairwise", "best4", "rank4", "rank4ties", "mix")
METHODS = ("bt-pairs", "bt-votes", "bayes-pairs", "bayes-votes")
ROUNDS = 100


@dataclass(frozen=True)
class World:
    players: list[str]
    theta: NDArray[np.float64]  # log-odds skills
    tie_gap: float


def world(n: int, tie_gap: float) -> World:
    elo = np.linspace(-550.0, 550.0, n)
    return World([f"m{i:02d}" for i in range(n)], elo / LOGIT_TO_ELO, tie_gap)


def _vote(w: World, shape: str, rng: np.random.Generator) -> Ranking:
    if shape == "mix":
        shape = SHAPES[int(rng.integers(4))]
    k = 2 if shape == "pairwise" else 4
    shown = rng.choice(len(w.players), size=k, replace=False)
    utility = w.theta[shown] + rng.gumbel(size=k)
    order = shown[np.argsort(-utility)]
    names = [w.players[i] for i in order]
    if shape == "best4":
        return Ranking(((names[0],), tuple(names[1:])), partial=True)
    if shape != "rank4ties":
        return Ranking(tuple((p,) for p in names))
    sorted_u = np.sort(utility)[::-1]
    groups: list[list[str]] = [[names[0]]]
    for i in range(1, k):
        if sorted_u[i - 1] - sorted_u[i] < w.tie_gap:
            groups[-1].append(names[i])
        else:
            groups.append([names[i]])
    return Ranking(tuple(tuple(g) for g in groups))


def votes(w: World, shape: str, n: int, rng: np.random.Generator) -> list[Ranking]:
    return [_vote(w, shape, rng) for _ in range(n)]


def truth(w: World, shape: str, rng: np.random.Generator) -> NDArray[np.float64]:
    """Centred display scores the estimator converges to."""
    if shape in ("rank4ties", "mix"):
        counts = PairCounts(w.players)
        for _ in range(20):
            counts.add_many(votes(w, shape, 100_000, rng))
        theta = fit_bradley_terry(counts, l2=1e-6)
    else:
        theta = w.theta
    return 1000.0 + LOGIT_TO_ELO * (theta - theta.mean())


def intervals(
    method: str, players: list[str], ballots: list[Ranking]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """(low, high) per player in ``players`` order, and the matrix "i significantly above j"."""
    z = float(norm.ppf(0.975))
    keys = list(range(len(ballots)))
    rater: BradleyTerryRater | BayesianRater
    if method.startswith("bt"):
        rater = (
            BradleyTerryRater(players, rounds=ROUNDS, resample="vote", bias_reduction="firth")
            if method == "bt-votes"
            else BradleyTerryRater(players, rounds=ROUNDS, resample="poisson")
        )
    else:
        rater = BayesianRater(players, replicates=ROUNDS if method == "bayes-votes" else 0)
    rater.counts.add_many(ballots, None, keys)
    rater.n_votes = len(ballots)
    rows = {s.player: s for s in rater.standings()}
    low = np.array([rows[p].low for p in players])
    high = np.array([rows[p].high for p in players])
    if method.startswith("bt"):
        above = low[:, None] > high[None, :]
    else:
        assert isinstance(rater, BayesianRater)
        mu = np.array([rows[p].score for p in players])
        cov = rater.covariance()
        d = np.diag(cov)
        sd = np.sqrt(np.clip(d[:, None] + d[None, :] - 2.0 * cov, 0.0, None))
        above = (mu[:, None] - mu[None, :]) > z * sd
    return low, high, above


@dataclass
class Tally:
    covered: int = 0
    shown: int = 0
    false: int = 0
    pairs: int = 0
    per_seed: list[float] = field(default_factory=list)  # each seed's coverage

    def coverage(self) -> float:
        return self.covered / self.shown if self.shown else float("nan")

    def stderr(self) -> float:
        """Standard error of the coverage over seeds (a seed's models share one board, so
        their misses are correlated: the seed, not the model, is the independent unit)."""
        k = len(self.per_seed)
        return float(np.std(self.per_seed, ddof=1) / np.sqrt(k)) if k > 1 else float("nan")

    def false_rate(self) -> float:
        return self.false / self.pairs if self.pairs else float("nan")


def run_cell(
    w: World,
    shape: str,
    n_votes: int,
    seeds: int,
    true: NDArray[np.float64],
    seed_offset: int = 0,
) -> dict[str, Tally]:
    out = {m: Tally() for m in METHODS}
    truly_above = true[:, None] > true[None, :]
    n = len(w.players)
    for seed in range(seeds):
        rng = np.random.default_rng([seed + seed_offset, n, n_votes, SHAPES.index(shape)])
        ballots = votes(w, shape, n_votes, rng)
        for method in METHODS:
            low, high, above = intervals(method, w.players, ballots)
            tally = out[method]
            hit = int(((low <= true) & (true <= high)).sum())
            tally.covered += hit
            tally.per_seed.append(hit / n)
            tally.shown += n
            tally.false += int((above & ~truly_above).sum())
            tally.pairs += n * (n - 1) // 2
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[16, 50])
    parser.add_argument("--votes", type=int, nargs="+", default=[500, 2000, 5000, 20000])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--seeds", type=int, default=20, help="replications per cell")
    parser.add_argument("--tie-gap", type=float, default=0.3)
    parser.add_argument(
        "--seed-offset", type=int, default=0, help="first seed (a fresh draw of the same cells)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="16 models, 500 and 5000 votes, 8 seeds"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.votes, args.seeds = [16], [500, 5000], 8
    cells = [(n, s, v) for n in args.models for s in args.shapes for v in args.votes]
    results: list[tuple[int, str, int, dict[str, Tally]]] = []
    truths: dict[tuple[int, str], NDArray[np.float64]] = {}
    started = time.perf_counter()
    for n, shape, n_votes in tqdm(cells, desc="cells", file=sys.stderr):
        w = world(n, args.tie_gap)
        if (n, shape) not in truths:
            truths[n, shape] = truth(w, shape, np.random.default_rng([7, n]))
        results.append(
            (
                n,
                shape,
                n_votes,
                run_cell(w, shape, n_votes, args.seeds, truths[n, shape], args.seed_offset),
            )
        )
    print(
        f"\n95% interval coverage (target 0.93-0.97) and false significant orderings "
        f"(target <= 2.5% of pairs); {args.seeds} seeds per cell from seed "
        f"{args.seed_offset} (coverage +- its standard error over seeds), "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    header = f"{'models':>6} {'shape':<10} {'votes':>6} | " + " | ".join(
        f"{m:>19}" for m in METHODS
    )
    print(header)
    print("-" * len(header))
    worst = {m: (1.0, 0.0, 0.0) for m in METHODS}
    for n, shape, n_votes, tallies in results:
        cells_txt = []
        for m in METHODS:
            t = tallies[m]
            cells_txt.append(f"{t.coverage():.3f}±{t.stderr():.3f} {100 * t.false_rate():5.2f}%")
            lo, hi, fr = worst[m]
            worst[m] = (min(lo, t.coverage()), max(hi, t.coverage()), max(fr, t.false_rate()))
        print(f"{n:>6} {shape:<10} {n_votes:>6} | " + " | ".join(cells_txt))
    print("\nrange over all cells: coverage [min, max], worst false-ordering rate")
    for m in METHODS:
        lo, hi, fr = worst[m]
        ok = lo >= 0.93 and hi <= 0.97 and fr <= 0.025
        print(
            f"  {m:<12} [{lo:.3f}, {hi:.3f}]  {100 * fr:.2f}%  {'meets' if ok else 'misses'} the target"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
