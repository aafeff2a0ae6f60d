"""How fast the aggregator counts votes: pending votes drained per second, and the belief refit.

    python benchmarks/aggregator.py [--sizes 2000 20000] [--models 24]

For each size it records that many pending votes (rank-K, best-of-K and pairwise mixed, as in
``leaderboard_rebuild.py``) in a fresh arena of the configured database (a throw-away SQLite file
by default; set DATABASE_URL for PostgreSQL), then times ``tallies_drain`` (batches of
``DRAIN_BATCH``) and one ``matchmaker_beliefs_refresh``, and checks that the drained tallies
equal the votes (count and digest). It prints votes/s, microseconds per vote and the ratio of the
largest size's per-vote cost to the smallest's (flat = 1.0).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py
from benchmarks._django import django_setup, migrate

# The backlog is recorded just before it is drained: no settle window (nothing commits late here).
os.environ["TALLY_SETTLE_MS"] = "0"
django_setup()

import numpy as np  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from tqdm import tqdm  # noqa: E402

from arena.leaderboards import (  # noqa: E402
    DRAIN_BATCH,
    REPLICATES,
    _vote_hash,
    matchmaker_beliefs_refresh,
    tallies_drain,
    trust_floor,
)
from arena.models import (  # noqa: E402
    Arena,
    ArenaTally,
    PendingVote,
)
from benchmarks.leaderboard_rebuild import _votes, bench_arena, record_votes  # noqa: E402

CHUNK = 5000


def _pending(n: int, models: int, seed: int) -> tuple[Arena, int]:
    """A fresh arena with ``n`` recorded, not yet counted votes; returns it and their digest."""
    arena, players, prompt, voter = bench_arena(models, prefix="agg")
    # A live arena keeps its vote-level bootstrap replicates up to date as votes are drained.
    ArenaTally.objects.filter(arena=arena).update(replicates=REPLICATES)
    votes = _votes(n, players, np.random.default_rng(seed))
    now, digest = timezone.now(), 0
    for start in tqdm(range(0, n, CHUNK), desc=f"recording {n:,} votes", unit="chunk"):
        chunk = votes[start : start + CHUNK]
        with transaction.atomic():
            rows = record_votes(arena, prompt, voter, chunk, at=now)
            PendingVote.objects.bulk_create(PendingVote(vote=row, arena=arena) for row in rows)
        # One new voter: every vote counts at the trust floor (earned trust, ranking.fraud).
        weight = trust_floor()
        digest = (digest + sum(_vote_hash(row.pk, weight) for row in rows)) % 2**128
    return arena, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--models", type=int, default=24)
    args = parser.parse_args()
    if min(args.sizes) < 1 or args.models < 4:
        parser.error("--sizes must be positive and --models at least 4")
    migrate()
    per_vote: list[float] = []
    print(f"\ndrain batches of {DRAIN_BATCH}; {args.models} models")
    for n in args.sizes:
        arena, digest = _pending(n, args.models, seed=n)
        started = time.perf_counter()
        result = tallies_drain(arena_id=arena.pk)
        drained_s = time.perf_counter() - started
        started = time.perf_counter()
        matchmaker_beliefs_refresh(arena_id=arena.pk)
        refit_s = time.perf_counter() - started
        tally = ArenaTally.objects.get(arena=arena)
        exact = tally.votes == n == result.counted and tally.digest == f"{digest:032x}"
        per_vote.append(drained_s / n)
        print(f"{n:>9,} votes: drained in {drained_s:6.2f} s = {n / drained_s:8,.0f} votes/s "
              f"({drained_s / n * 1e6:6.0f} us a vote); belief refit {refit_s * 1000:5.0f} ms; "
              f"tallies exact: {exact}")  # fmt: skip
        if not exact:
            raise SystemExit("the drained tallies do not equal the votes")
    print(f"per-vote cost, largest size / smallest: {per_vote[-1] / per_vote[0]:.2f} (flat = 1.0)")


if __name__ == "__main__":
    main()
