"""Fraud scan cost: a full scan and an incremental one at 10k and 100k votes.

    python benchmarks/fraud_scan.py [--sizes 10000 100000] [--models 20] [--votes-per-voter 20]

For each size it loads that many pairwise votes from ``size / votes-per-voter`` voters (honest
Thurstone voters over hidden skills; votes spaced 2 s apart across the arena, each voter on its
own network prefix) into a fresh arena of the configured database (a throw-away SQLite file by
default; set DATABASE_URL for PostgreSQL), with the aggregated tallies ``vote_record`` keeps,
then times:

- ``full``: ``fraud_scan(full=True)``, every voter judged (the first scan of an arena);
- ``incremental``: ``fraud_scan()`` after 100 more votes from 10 voters (the periodic task);
- ``idle``: ``fraud_scan()`` with no new vote;
- ``replay``: ``ratings_replay`` (online ELO and Bayesian ratings recomputed from the kept votes,
  which scans and reviews do under the arena's tally lock whenever they exclude or restore).

It prints seconds per scan, voters judged, the wrongly excluded honest voters (all voters here
are honest) and the peak Python memory of a full scan (measured on a second, traced run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py
from benchmarks._django import django_setup, migrate

django_setup()

import numpy as np  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from tqdm import tqdm  # noqa: E402

import ranking  # noqa: E402
from arena.fraud import fraud_scan  # noqa: E402
from arena.leaderboards import _vote_hash, ratings_replay  # noqa: E402
from arena.models import (  # noqa: E402
    Arena,
    ArenaTally,
    Battle,
    GenerativeModel,
    ModelRating,
    PairTally,
    Prompt,
    PromptSet,
    Verdict,
    Vote,
    Voter,
    VoterFlag,
)
from arena.privacy import keyed_hash, prefix_hash  # noqa: E402

CHUNK = 5000
SPACING_S = 2.0


class TickingClock:
    """``timezone.now`` that moves on by SPACING_S at every call: bulk-created rows get spaced
    timestamps (``auto_now_add`` calls it once per row)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=SPACING_S)
        return self.now


def _load(
    arena: Arena, voters: list[Voter], players: list[int], n: int, rng: np.random.Generator
) -> None:
    skill = {p: 0.25 * i for i, p in enumerate(players)}
    prompt = Prompt.objects.filter(prompt_set=arena.prompt_set).first()
    tally, _ = ArenaTally.objects.get_or_create(arena=arena)
    index = {p: i for i, p in enumerate(players)}
    counts = ranking.PairCounts([str(p) for p in players])
    digest = int(tally.digest, 16)
    real_now = timezone.now
    timezone.now = TickingClock(real_now() - timedelta(seconds=SPACING_S * 3 * n))
    try:
        for start in tqdm(range(0, n, CHUNK), desc=f"loading {n:,} votes", unit="chunk"):
            size = min(CHUNK, n - start)
            plan = []
            for i in range(start, start + size):
                voter = voters[i % len(voters)]
                a, b = rng.choice(len(players), size=2, replace=False)
                shown = [players[a], players[b]]
                p_first = 1 / (1 + np.exp(skill[shown[1]] - skill[shown[0]]))
                winner, loser = shown if rng.random() < p_first else shown[::-1]
                labels = {shown[0]: "A", shown[1]: "B"}
                plan.append((voter, winner, loser, labels, int(rng.lognormal(np.log(6000), 0.5))))
            with transaction.atomic():
                battles = Battle.objects.bulk_create(
                    Battle(
                        arena=arena,
                        prompt=prompt,
                        mode="pairwise",
                        k=2,
                        voter=voter,
                        served_at=timezone.now(),
                        state="voted",
                    )
                    for voter, *_ in plan
                )
                rows = Vote.objects.bulk_create(
                    Vote(
                        battle=battle,
                        arena=arena,
                        voter=voter,
                        mode="pairwise",
                        outcome="win",
                        ranking=[[winner], [loser]],
                        slot_ranking=[[labels[winner]], [labels[loser]]],
                        time_to_vote_ms=ttv,
                        min_view_ms=1500,
                        too_fast=ttv < 1500,
                        client_hash=keyed_hash(f"v{voter.pk}"),
                        prefix_hash=voter.prefix_hash,
                        user_agent_hash=keyed_hash("Mozilla/5.0 bench"),
                    )
                    for battle, (voter, winner, loser, labels, ttv) in zip(
                        battles, plan, strict=True
                    )
                )
            for row, (_, winner, loser, _, _) in zip(rows, plan, strict=True):
                counts.add(ranking.Ranking(((str(winner),), (str(loser),))))
                digest = (digest + _vote_hash(row.pk)) % 2**128
    finally:
        timezone.now = real_now
    for a in players:
        for b in players:
            if a < b:
                pair, _ = PairTally.objects.get_or_create(arena=arena, model_a_id=a, model_b_id=b)
                pair.a_wins += counts.wins[index[a], index[b]]
                pair.b_wins += counts.wins[index[b], index[a]]
                pair.save()
    for p in players:
        rating, _ = ModelRating.objects.get_or_create(arena=arena, model_id=p)
        rating.votes += int(counts.votes[index[p]])
        rating.save()
    tally.votes += n
    tally.digest = f"{digest:032x}"
    tally.save()


def _arena(models: int) -> tuple[Arena, list[int]]:
    tag = uuid.uuid4().hex[:8]
    prompt_set = PromptSet.objects.create(slug=f"bench-{tag}", name=tag)
    Prompt.objects.create(prompt_set=prompt_set, text="bench")
    arena = Arena.objects.create(
        slug=f"bench-{tag}",
        name=f"bench {tag}",
        task="text-to-image",
        prompt_set=prompt_set,
        k_values=[2],
        vote_modes=["pairwise"],
        default_mode="pairwise",
    )
    rows = GenerativeModel.objects.bulk_create(
        GenerativeModel(
            name=f"m{i} {tag}", slug=f"m{i}-{tag}", task="text-to-image", output_formats=["png"]
        )
        for i in range(models)
    )
    arena.generative_models.add(*rows)
    return arena, [m.pk for m in rows]


def _timed(arena: Arena, *, full: bool) -> tuple[float, int]:
    started = time.perf_counter()
    result = fraud_scan(arena=arena, full=full)
    return time.perf_counter() - started, result.voters_scanned


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--votes-per-voter", type=int, default=20)
    args = parser.parse_args()
    migrate()
    rng = np.random.default_rng(0)
    print(f"\n{args.models} models, database={connection.vendor}, {os.cpu_count()} CPUs")
    header = (
        f"{'votes':>9}{'voters':>8}{'full s':>9}{'peak MiB':>10}{'incr. s':>9}"
        f"{'judged':>8}{'idle s':>8}{'replay s':>10}{'honest excluded':>17}"
    )
    lines = []
    for n in args.sizes:
        arena, players = _arena(args.models)
        voters = Voter.objects.bulk_create(
            Voter(prefix_hash=prefix_hash(f"10.{i // 250 % 250}.{i % 250}.1"))
            for i in range(max(1, n // args.votes_per_voter))
        )
        _load(arena, voters, players, n, rng)
        full_s, _ = _timed(arena, full=True)
        tracemalloc.start()  # a second full scan, traced: tracing slows it down
        _timed(arena, full=True)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        _load(arena, voters[:10], players, 100, rng)
        incr_s, judged = _timed(arena, full=False)
        idle_s, _ = _timed(arena, full=False)
        excluded = VoterFlag.objects.filter(arena=arena, verdict=Verdict.EXCLUDED).count()
        started = time.perf_counter()
        replayed = ratings_replay(arena_id=arena.pk)
        replay_s = time.perf_counter() - started
        assert replayed > 0
        lines.append(
            f"{n:>9,}{len(voters):>8,}{full_s:>9.2f}{peak_mib:>10.0f}{incr_s:>9.2f}"
            f"{judged:>8}{idle_s:>8.3f}{replay_s:>10.2f}{excluded:>10} of {len(voters):,}"
        )
    print(header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
