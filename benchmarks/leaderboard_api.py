"""Leaderboard API latency from cache (p50/p95), through the whole Django stack in-process.

    python benchmarks/leaderboard_api.py [--requests 300] [--votes 2000]

Seeds a 50-model arena with the given number of votes (aggregates only, as in
leaderboard_rebuild.py), makes one cold request (rebuild + cache fill), then times repeated
requests: plain GETs served from the cache, and conditional GETs answered 304.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py
from benchmarks._django import django_setup, migrate

django_setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.leaderboard_rebuild import _load  # noqa: E402


def _timed(client: Client, url: str, n: int, desc: str, **headers: Any) -> list[float]:
    out = []
    for _ in tqdm(range(n), desc=desc, unit="req"):
        started = time.perf_counter()
        response = client.get(url, **headers)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 304)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--votes", type=int, default=2000)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    migrate()
    arena = _load(args.votes, 50, seed=1)
    client = Client()
    url = f"/api/v1/arenas/{arena.slug}/leaderboard?method=bradley_terry"
    started = time.perf_counter()
    first = client.get(url)
    cold_ms = (time.perf_counter() - started) * 1000
    cached = _timed(client, url, args.requests, "cached GET")
    conditional = _timed(
        client, url, args.requests, "If-None-Match", HTTP_IF_NONE_MATCH=first["ETag"]
    )
    cache_backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(
        f"\n50 models, {args.votes} votes, cache={cache_backend}, database={settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
    )
    print(f"cold (rebuild + cache fill): {cold_ms:.1f} ms")
    for name, values in (("cached GET", cached), ("304 conditional GET", conditional)):
        q = statistics.quantiles(values, n=20)
        print(f"{name:<22} p50 {statistics.median(values):6.2f} ms   p95 {q[18]:6.2f} ms")


if __name__ == "__main__":
    main()
