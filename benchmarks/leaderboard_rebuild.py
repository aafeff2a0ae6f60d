"""Leaderboard rebuild cost at 10k, 100k and 1M votes for 50 models.

    python benchmarks/leaderboard_rebuild.py [--sizes 10000 100000 1000000] [--models 50]

For each size it loads that many K=4 votes (rank-K, best-of-K and pairwise mixed, from a
Thurstone voter over hidden skills) into a fresh arena of the configured database (by default a
throw-away SQLite file; set DATABASE_URL for PostgreSQL), together with the aggregated tallies
that ``vote_record`` keeps as votes arrive, then times:

- ``rebuild``: ``leaderboard_rebuild`` (Bradley-Terry with 100 refits on the vote-level
  bootstrap replicates, Bayesian MAP refit with the vote-level sandwich width, ELO), which reads
  the aggregated pair counts and their replicates only;
- ``from raw rows``: reading every vote row and building the same counts before fitting, i.e.
  what a rebuild costs without the aggregates.

It prints seconds per size, the ratio of each size to the smallest (flat = 1.0), and the ratio
of raw-row rebuilding to the aggregated rebuild.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py
from benchmarks._django import django_setup, migrate

django_setup()

import numpy as np  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from tqdm import tqdm  # noqa: E402

import ranking  # noqa: E402
from arena.leaderboards import REPLICATES, _vote_hash, leaderboard_rebuild  # noqa: E402
from arena.models import (  # noqa: E402
    Arena,
    ArenaTally,
    Battle,
    GenerativeModel,
    ModelRating,
    PairTally,
    Prompt,
    PromptSet,
    Vote,
    Voter,
)

CHUNK = 5000


def _votes(
    n: int, players: list[int], rng: np.random.Generator
) -> list[tuple[list[list[int]], bool, str]]:
    """Synthetic votes: a Thurstone voter over evenly spaced skills, modes mixed like real traffic."""
    skill = {p: 20.0 * i for i, p in enumerate(players)}
    out = []
    for i in range(n):
        mode = ("rank_k", "best_of_k", "pairwise")[i % 3]
        k = 2 if mode == "pairwise" else 4
        shown = [players[j] for j in rng.choice(len(players), size=k, replace=False)]
        perf = {p: skill[p] + rng.normal(0, 120.0) for p in shown}
        order = sorted(shown, key=lambda p: -perf[p])
        if mode == "best_of_k":
            out.append(([[order[0]], order[1:]], True, mode))
        else:
            out.append(([[p] for p in order], False, mode))
    return out


def bench_arena(models: int, *, prefix: str) -> tuple[Arena, list[int], Prompt, Voter]:
    """A fresh arena of ``models`` image models (their ids), one prompt and one voter."""
    tag = uuid.uuid4().hex[:8]
    prompt_set = PromptSet.objects.create(slug=f"{prefix}-{tag}", name=tag)
    arena = Arena.objects.create(
        slug=f"{prefix}-{tag}",
        name=f"{prefix} {tag}",
        task="text-to-image",
        prompt_set=prompt_set,
        k_values=[4],
        vote_modes=["pairwise", "best_of_k", "rank_k"],
    )
    model_rows = GenerativeModel.objects.bulk_create(
        GenerativeModel(
            name=f"m{i} {tag}", slug=f"m{i}-{tag}", task="text-to-image", output_formats=["png"]
        )
        for i in range(models)
    )
    arena.generative_models.add(*model_rows)
    prompt = Prompt.objects.create(prompt_set=prompt_set, text="bench")
    return arena, [m.pk for m in model_rows], prompt, Voter.objects.create()


def record_votes(
    arena: Arena,
    prompt: Prompt,
    voter: Voter,
    votes: list[tuple[list[list[int]], bool, str]],
    *,
    at: Any,
) -> list[Vote]:
    """Voted battles and their vote rows for ``votes`` (from ``_votes``), in bulk."""
    battles = Battle.objects.bulk_create(
        Battle(arena=arena, prompt=prompt, mode=mode, k=sum(map(len, groups)), voter=voter,
               served_at=at, state="voted")
        for groups, _partial, mode in votes
    )  # fmt: skip
    return Vote.objects.bulk_create(
        Vote(battle=battle, arena=arena, voter=voter, mode=mode, outcome="ranked",
             ranking=groups, slot_ranking=[], is_partial=partial, time_to_vote_ms=5000,
             client_hash="x", user_agent_hash="y")
        for battle, (groups, partial, mode) in zip(battles, votes, strict=True)
    )  # fmt: skip


def _load(n: int, models: int, seed: int) -> Arena:
    arena, players, prompt, voter = bench_arena(models, prefix="bench")
    votes = _votes(n, players, np.random.default_rng(seed))
    counts = ranking.PairCounts([str(p) for p in players], replicates=REPLICATES)
    elo = ranking.EloRater([str(p) for p in players])
    now = timezone.now()
    digest = 0
    for start in tqdm(range(0, n, CHUNK), desc=f"loading {n:,} votes", unit="chunk"):
        chunk = votes[start : start + CHUNK]
        with transaction.atomic():
            rows = record_votes(arena, prompt, voter, chunk, at=now)
        ranked = []
        for row, (groups, partial, _mode) in zip(rows, chunk, strict=True):
            r = ranking.Ranking(tuple(tuple(str(p) for p in g) for g in groups), partial=partial)
            ranked.append(r)
            elo.record(r)
            digest = (digest + _vote_hash(row.pk)) % 2**128
        counts.add_many(ranked, None, [row.pk for row in rows])
    # The aggregates vote_record keeps as votes arrive.
    index = {p: i for i, p in enumerate(players)}
    PairTally.objects.bulk_create(
        PairTally(
            arena=arena,
            model_a_id=a,
            model_b_id=b,
            a_wins=counts.wins[index[a], index[b]],
            b_wins=counts.wins[index[b], index[a]],
            ties=counts.ties[index[a], index[b]],
            replicates=np.stack(
                [
                    counts.rep_wins[:, index[a], index[b]],
                    counts.rep_wins[:, index[b], index[a]],
                    counts.rep_ties[:, index[a], index[b]],
                ],
                axis=1,
            )
            .astype("<f8")
            .tobytes(),
        )
        for a in players
        for b in players
        if a < b
    )
    ModelRating.objects.bulk_create(
        ModelRating(
            arena=arena,
            model_id=p,
            votes=int(counts.votes[index[p]]),
            elo=float(elo.ratings[index[p]]),
        )
        for p in players
    )
    ArenaTally.objects.filter(arena=arena).update(
        votes=n, digest=f"{digest:032x}", replicates=REPLICATES
    )
    return arena


def _rebuild_from_raw_rows(arena: Arena) -> float:
    started = time.perf_counter()
    players = [
        str(pk) for pk in arena.generative_models.order_by("pk").values_list("pk", flat=True)
    ]
    counts = ranking.PairCounts(players)
    for groups, partial in (
        Vote.objects.filter(arena=arena)
        .values_list("ranking", "is_partial")
        .iterator(chunk_size=20000)
    ):
        counts.add(
            ranking.Ranking(tuple(tuple(str(p) for p in g) for g in groups), partial=partial)
        )
    for method in ("bradley_terry", "bayesian"):
        rater = ranking.make_rater(method, players)
        rater.counts = counts  # type: ignore[attr-defined]
        rater.n_votes = int(counts.votes.sum())  # type: ignore[attr-defined]
        rater.standings()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument(
        "--raw-up-to", type=int, default=1_000_000, help="Skip the raw-row rebuild above this size."
    )
    args = parser.parse_args()
    migrate()
    results = []
    for n in args.sizes:
        arena = _load(n, args.models, seed=n)
        started = time.perf_counter()
        rebuilt = leaderboard_rebuild(arena=arena)
        rebuild_s = time.perf_counter() - started
        assert rebuilt.created == 3 and rebuilt.snapshots[0].votes == n
        raw_s = _rebuild_from_raw_rows(arena) if n <= args.raw_up_to else float("nan")
        results.append((n, rebuild_s, raw_s))
    base = results[0][1]
    print(f"\n{args.models} models, database={connection.vendor}, {os.cpu_count()} CPUs")
    print(
        f"{'votes':>10}{'rebuild s':>12}{'vs smallest':>13}{'raw rows s':>12}{'raw / rebuild':>15}"
    )
    for n, rebuild_s, raw_s in results:
        print(
            f"{n:>10,}{rebuild_s:>12.3f}{rebuild_s / base:>12.2f}x{raw_s:>12.2f}{raw_s / rebuild_s:>14.1f}x"
        )


if __name__ == "__main__":
    main()
