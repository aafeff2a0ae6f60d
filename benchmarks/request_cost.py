"""What one battle and its vote cost the web process, in-process through the whole Django stack.

    python benchmarks/request_cost.py [--pairs 400]

Needs PostgreSQL and Redis on loopback, as ``load.py`` does (database ``arena_request_cost``,
dropped and re-created; Redis database 13). Seeds the two arenas of ``load.py``, then calls the
WSGI application itself (every middleware, the API, the services; no HTTP server, no client
library) for 32 voters in turn:

1. battle + vote pairs: CPU and wall ms per pair, and Python function calls per pair (counted by
   the profiler: a figure that does not move with a busy machine, unlike the times);
2. leaderboard GETs (served from the newest snapshot);
3. the aggregator: CPU ms per vote drained (30 votes, then a drain of both arenas, 10 times).

Rate limits are on (raised far above this load), as in production. The figures say where a
vote's CPU goes; ``load.py`` says what the whole stack serves.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py

import psycopg
from tqdm import tqdm

SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = "arena_request_cost"
REDIS_DB = "13"
LIMITS = "voter=100000/m,prefix=10000000/m,global=10000000/m"
ARENAS = [("load-pairwise", ["pairwise"]), ("load-k4", ["best_of_k", "rank_k"])]


def _configure() -> None:
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DATABASE}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "DEBUG": "0",
            "SECRET_KEY": "request-cost-benchmark-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1",
            "ARENA_NO_BOOTSTRAP": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "RATE_LIMITS_ENABLED": "1",
            "RATE_LIMIT_BATTLES": LIMITS,
            "RATE_LIMIT_VOTES": LIMITS,
            "FRAUD_SCAN_INTERVAL_S": "86400",
            "TALLY_SETTLE_MS": "0",  # every vote of a batch is drained at once
        }
    )
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    subprocess.run(["redis-cli", "-n", REDIS_DB, "flushdb"], check=True, capture_output=True)


class Caller:
    """Calls the WSGI application as a server would, one request at a time."""

    def __init__(self) -> None:
        from config.wsgi import application

        self.application = application

    def __call__(
        self, method: str, path: str, body: dict[str, Any] | None = None, cookie: str = ""
    ) -> tuple[int, bytes, str]:
        data = json.dumps(body).encode() if body is not None else b""
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/json", "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "wsgi.version": (1, 0),
        }  # fmt: skip
        if cookie:
            environ["HTTP_COOKIE"] = f"arena_voter={cookie}"
        started: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
        ) -> Callable[[bytes], object]:
            started["status"], started["headers"] = status, headers
            return lambda data: None

        content = b"".join(self.application(environ, start_response))
        new_cookie = ""
        for name, value in started["headers"]:
            if name.lower() == "set-cookie" and value.strip().startswith("arena_voter="):
                new_cookie = value.strip().split(";", 1)[0].split("=", 1)[1]
        return int(started["status"][:3]), content, new_cookie


class Voters:
    """32 voters, each with its cookie, serving a battle and voting on it in turn."""

    def __init__(self, call: Caller) -> None:
        self.call, self.cookies, self.rng = call, [""] * 32, random.Random(1)

    def pair(self, i: int) -> None:
        slug, modes = self.rng.choice(ARENAS)
        mode = self.rng.choice(modes)
        who = i % len(self.cookies)
        status, body, cookie = self.call(
            "POST", f"/api/v1/arenas/{slug}/battles", {"mode": mode}, self.cookies[who]
        )
        if status != 201:
            raise SystemExit(f"battle: {status} {body[:300]!r}")
        self.cookies[who] = cookie or self.cookies[who]
        battle = json.loads(body)
        labels = [slot["label"] for slot in battle["slots"]]
        ballot: dict[str, Any]
        if mode == "pairwise":
            ballot = {"choice": self.rng.choice(["A", "B", "tie"])}
        elif mode == "best_of_k":
            ballot = {"choice": self.rng.choice(labels)}
        else:
            order = self.rng.sample(labels, len(labels))
            ballot = {"ranks": {label: n + 1 for n, label in enumerate(order)}}
        status, body, _ = self.call(
            "POST",
            f"/api/v1/battles/{battle['id']}/vote",
            {"token": battle["token"], **ballot},
            self.cookies[who],
        )
        if status != 201:
            raise SystemExit(f"vote: {status} {body[:300]!r}")

    def leaderboard(self, i: int) -> None:
        slug = ARENAS[i % 2][0]
        method = ["bayesian", "bradley_terry", "elo"][i % 3]
        status, body, _ = self.call("GET", f"/api/v1/arenas/{slug}/leaderboard?method={method}")
        if status != 200:
            raise SystemExit(f"leaderboard: {status} {body[:300]!r}")


def _measure(step: Any, n: int, desc: str) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of ``step(i)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in tqdm(range(n), desc=desc, unit="call", leave=False):
        step(i)
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


def _calls_per(step: Any, n: int) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for i in range(n):
        step(i)
    profile.disable()
    return int(pstats.Stats(profile).total_calls) / n  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    args = parser.parse_args()
    _configure()
    import django

    django.setup()
    from benchmarks.load import seed_arenas

    seed_arenas()
    from arena.leaderboards import tallies_drain_requested
    from arena.models import Arena

    voters = Voters(Caller())
    for i in tqdm(range(64), desc="warming up", unit="pair", leave=False):
        voters.pair(i)
    for i in range(6):
        voters.leaderboard(i)
    pair_cpu, pair_wall = _measure(voters.pair, args.pairs, "battle + vote")
    pair_calls = _calls_per(voters.pair, 100)
    board_cpu, board_wall = _measure(voters.leaderboard, args.pairs, "leaderboard GET")

    arena_ids = list(Arena.objects.values_list("pk", flat=True))
    for arena_id in arena_ids:
        tallies_drain_requested(arena_id=arena_id)
    drained, drain_cpu = 0, 0.0
    for _ in tqdm(range(10), desc="aggregator", unit="drain", leave=False):
        for i in range(30):
            voters.pair(i)
        started = time.process_time()
        for arena_id in arena_ids:
            drained += tallies_drain_requested(arena_id=arena_id).drained
        drain_cpu += time.process_time() - started

    print(f"battle + vote   CPU {pair_cpu:6.2f} ms  wall {pair_wall:6.2f} ms  "
          f"({pair_calls:,.0f} Python calls per pair)")  # fmt: skip
    print(f"leaderboard GET CPU {board_cpu:6.2f} ms  wall {board_wall:6.2f} ms")
    print(f"aggregator      CPU {drain_cpu * 1000 / max(drained, 1):6.2f} ms per vote drained "
          f"({drained} votes in 20 drains)")  # fmt: skip


if __name__ == "__main__":
    main()
