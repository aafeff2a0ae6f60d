"""Benchmark: is "votes to settle" right? Predicted against actual votes until settled.

A simulated arena: ``--models`` (16) models with skills evenly spaced over +-550 Elo points,
Plackett-Luce voters ranking K=4 models (full rankings), battles chosen by the default matchmaker
(overlap sampling) over the Bayesian rater with vote-level intervals, as the leaderboards use.
After ``--warmup`` (200) votes we take each model's estimate (``ranking.settle``: from the
current fit, its covariance and the matchmaker's sampling rates), then keep voting and refit
every ``--every`` (25) votes until each model is separated from both neighbours at 95% (or the
cap). Prints, over ``--seeds`` arenas, the median and quartiles of actual / predicted, and how
often the actual count fell within a factor of 2 of the prediction.

    python benchmarks/settle.py [--seeds 8] [--models 16] [--cap 8000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py

from ranking import BayesianRater, Ranking, make_matchmaker, sampling_rates
from ranking.core import LOGIT_TO_ELO
from ranking.settle import votes_to_settle

K = 4


def _estimate(rater: BayesianRater, matchmaker: object, players: list[str]) -> list[int | None]:
    score, _ = rater.posterior()
    rates = sampling_rates(matchmaker, players, K, draws=2000)  # type: ignore[arg-type]
    share = np.array([rates[p] / K for p in players])
    est = votes_to_settle(score, rater.covariance(), rater.counts.votes.astype(float), share, K)
    return est.own


def run(
    seed: int, n: int, warmup: int, every: int, cap: int
) -> list[tuple[int | None, int | None]]:
    """(predicted, actual) per model that was not settled at the warm-up."""
    rng = np.random.default_rng(seed)
    players = [f"m{i:02d}" for i in range(n)]
    theta = np.linspace(-550.0, 550.0, n) / LOGIT_TO_ELO
    index = {p: i for i, p in enumerate(players)}
    rater = BayesianRater(players, replicates=100)
    matchmaker = make_matchmaker("default", rater, seed=seed)

    def vote(key: int) -> None:
        shown = matchmaker.propose(K)
        utility = np.array([theta[index[p]] for p in shown]) + rng.gumbel(size=K)
        order = [shown[i] for i in np.argsort(-utility)]
        rater.record(Ranking(tuple((p,) for p in order)), key=key)

    for v in range(warmup):
        vote(v)
    predicted = _estimate(rater, matchmaker, players)
    open_ = {i for i, m in enumerate(predicted) if m != 0}
    actual: dict[int, int] = {}
    for v in range(warmup, warmup + cap):
        vote(v)
        if (v - warmup + 1) % every:
            continue
        now = _estimate(rater, matchmaker, players)
        for i in list(open_):
            if now[i] == 0:
                actual[i] = v - warmup + 1
                open_.discard(i)
        if not open_:
            break
    return [(p, actual.get(i)) for i, p in enumerate(predicted) if p not in (0,)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--cap", type=int, default=8000)
    args = parser.parse_args()
    ratios, never, unsettled = [], 0, 0
    for seed in tqdm(range(args.seeds), desc="arenas", file=sys.stderr):
        for predicted, actual in run(seed, args.models, args.warmup, args.every, args.cap):
            if predicted is None:
                never += 1
            elif actual is None:
                unsettled += 1
            else:
                ratios.append(actual / max(predicted, 1))
    if not ratios:
        print("no model settled within the cap")
        return 1
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    within = sum(0.5 <= r <= 2.0 for r in ratios) / len(ratios)
    print(
        f"\n{args.models} models, K={K} full rankings, {args.seeds} arenas, estimate taken "
        f"after {args.warmup} votes"
    )
    print(f"models settled later: {len(ratios)}; actual / predicted votes:")
    print(f"  median {med:.2f}  (quartiles {q1:.2f} - {q3:.2f}); within 2x: {100 * within:.0f}%")
    print(f"  mean log2 ratio {statistics.fmean(np.log2(ratios)):+.2f}")
    print(f"predicted 'not in sight': {never}; not settled within {args.cap} votes: {unsettled}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
