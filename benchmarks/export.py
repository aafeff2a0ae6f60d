"""Vote export speed and size, and the replay of an export, at 100k and 1M votes.

    python benchmarks/export.py [--sizes 100000 1000000] [--models 50] [--formats jsonl csv parquet]

For each size it loads that many votes into a fresh arena of the configured database (a
throw-away SQLite file by default; DATABASE_URL for PostgreSQL), with the aggregates the app
keeps (as ``benchmarks/leaderboard_rebuild.py`` does), then for each format runs
``export_votes`` (which rebuilds the leaderboard it writes to ``leaderboard.json`` first) and
``python -m ranking.replay`` on the result. It prints votes/s, the size of the vote file, the
export's peak Python memory (tracemalloc, in a second run) and whether the replay matched the
live leaderboard. The synthetic battles have no slot rows, so the ``models`` column is empty:
real rows are ~40 bytes longer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py
from benchmarks._django import django_setup, migrate

django_setup()

from tqdm import tqdm  # noqa: E402

from arena.exports import export_votes  # noqa: E402
from arena.models import Vote, VoterTrust  # noqa: E402
from benchmarks.leaderboard_rebuild import _load  # noqa: E402
from ranking.replay import replay_export  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--formats", nargs="+", default=["jsonl", "csv", "parquet"])
    args = parser.parse_args()
    if any(n < 1 for n in args.sizes) or args.models < 2:
        parser.error("--sizes must be positive and --models at least 2")
    migrate()
    rows = []
    for n in args.sizes:
        arena = _load(n, args.models, seed=n)
        voter_id = Vote.objects.filter(arena=arena).values_list("voter_id", flat=True)[0]
        VoterTrust.objects.create(arena=arena, voter_id=voter_id, weight=1.0)  # as drained
        for fmt in args.formats:
            with tempfile.TemporaryDirectory(prefix="arena-export-") as tmp:
                out = Path(tmp) / "export"
                with tqdm(total=n, desc=f"export {n:,} {fmt}", unit="vote") as bar:
                    started = time.perf_counter()
                    export_votes(arena=arena, out_dir=out, fmt=fmt, progress=bar.update)
                    took = time.perf_counter() - started
                size = (out / f"votes.{fmt}").stat().st_size
                tracemalloc.start()  # a second, slower run: what the export itself holds
                export_votes(arena=arena, out_dir=Path(tmp) / "again", fmt=fmt)
                export_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                started = time.perf_counter()
                replayed = replay_export(out)
                replay_s = time.perf_counter() - started
            rows.append((n, fmt, took, size, replay_s, replayed.matches, export_peak / 2**20))
    print("\n| votes | format | export s | votes/s | file MiB | bytes/vote | replay s | "
          "replay matches | export peak MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n, fmt, took, size, replay_s, matches, peak in rows:
        print(f"| {n:,} | {fmt} | {took:.1f} | {n / took:,.0f} | {size / 2**20:.1f} | "
              f"{size / n:.0f} | {replay_s:.1f} | {'yes' if matches else 'NO'} | {peak:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
