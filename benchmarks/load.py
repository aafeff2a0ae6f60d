"""Load test: voters and leaderboard readers against gunicorn + PostgreSQL + Redis on loopback.

    python benchmarks/load.py [--duration 60] [--voters 32] [--rate 40] [--faults]

Creates its own database (``arena_load``, dropped and re-created) and uses Redis database 15,
seeds two arenas (pairwise; best-of-4 and rank-4) with ready outputs, starts gunicorn (4 sync
workers, with the project's gunicorn.conf.py) and a Celery worker (with beat) for the tallies
and light queues, then runs:

1. a raw psycopg INSERT+COMMIT loop with as many threads as voters (the ceiling of the database),
   for 10 s, before the closed loop and again after it (this host's speed drifts in minutes);
2. closed loop: each voter (its own cookie) serves a battle and votes, as fast as answers come,
   with 2 leaderboard readers, for ``--duration`` seconds: votes/s and its ratio to the mean
   of the two raw rates;
3. open loop: ``--rate`` battle+vote pairs a second with 2 readers: p50/p95/p99 of battle, vote
   and leaderboard GET, errors by status. With ``--faults`` it kills -9 a web worker (15 s in) and
   the Celery worker (25 s, restarted) and restarts Redis (35 s) during this phase;
4. afterwards: every 2xx vote is stored exactly once, no other vote is stored, the aggregator
   has counted every vote, and the pair tallies equal the vote log decomposed.

During both loops it samples the tally lag: the age of the oldest vote the aggregator has not
counted yet (target: within 2 s).

Rate limits are on, as in production, but raised far above this load (every request comes
from 127.0.0.1, one network prefix): each request still pays for its count. The periodic
fraud scan is not scheduled (the voters vote at random and at once).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py

import contextlib

import psycopg
from tqdm import tqdm

from ranking import Ranking

SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = "arena_load"
REDIS = "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parent.parent
COOKIE = "arena_voter"


# --- the stack ---------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{SERVER}/{DATABASE}",
        "REDIS_URL": REDIS,
        "DEBUG": "0",
        "SECRET_KEY": "load-benchmark-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Counted as in production (one round trip per request), never refused here.
        "RATE_LIMITS_ENABLED": "1",
        "RATE_LIMIT_BATTLES": "voter=100000/m,prefix=10000000/m,global=10000000/m",
        "RATE_LIMIT_VOTES": "voter=100000/m,prefix=10000000/m,global=10000000/m",
        # The load's votes are random and fast from one address: a scan (rightly) excludes most
        # of them. Not on beat's schedule here; a restarted beat may still send one (the
        # exactness check counts exclusions in).
        "FRAUD_SCAN_INTERVAL_S": "86400",
        "ARENA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def _fresh_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    subprocess.run(["redis-cli", "-n", "15", "flushdb"], check=True, capture_output=True)


def _seed() -> list[dict[str, Any]]:
    """Migrate and seed in a child process (Django configured for the load database)."""
    code = "from benchmarks.load import seed_arenas; import json; print(json.dumps(seed_arenas()))"
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    arenas: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return arenas


def seed_arenas() -> list[dict[str, Any]]:
    """Two arenas of 8 models and 20 prompts, every output ready (rows only: the API serves
    their URLs, and nothing here downloads them)."""
    from django.core.management import call_command

    from arena.models import Arena, Asset, GenerativeModel, Prompt, PromptSet, Task, VoteMode

    call_command("migrate", verbosity=0)
    specs = [
        ("load-pairwise", [VoteMode.PAIRWISE], VoteMode.PAIRWISE),
        ("load-k4", [VoteMode.BEST_OF_K, VoteMode.RANK_K], VoteMode.BEST_OF_K),
    ]
    out = []
    for slug, modes, default in specs:
        prompt_set = PromptSet.objects.create(name=slug, slug=slug)
        prompts = [
            Prompt.objects.create(prompt_set=prompt_set, text=f"{slug} {i}") for i in range(20)
        ]
        models = [
            GenerativeModel.objects.create(
                name=f"{slug} m{i}", slug=f"{slug}-m{i}", task=Task.TEXT_TO_IMAGE
            )
            for i in range(8)
        ]
        arena = Arena.objects.create(
            name=slug, slug=slug, task=Task.TEXT_TO_IMAGE, prompt_set=prompt_set,
            vote_modes=modes, default_mode=default, k_values=[4],
        )  # fmt: skip
        arena.generative_models.add(*models)
        Asset.objects.bulk_create(
            Asset(model=m, prompt=p, seed=0, fmt="png", media_type="image", status="ready",
                  file=f"{slug}-{m.pk}-{p.pk}.png")
            for m in models for p in prompts
        )  # fmt: skip
        out.append({"slug": slug, "modes": modes})
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    url: str
    log: Path
    worker_exits: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)

    def start_worker(self) -> None:
        self.worker = _celery(self.log)

    def supervise(self) -> None:
        """Restart the Celery worker when it exits, as the compose file's restart policy does
        (after the kill below; it rides out the Redis restart, see workers.redis_broker)."""

        def watch() -> None:
            while not self.stopping.wait(0.5):
                if self.worker.poll() is not None:
                    _kill_group(self.worker)  # an orphaned beat would go on sending tasks
                    self.worker_exits += 1
                    tqdm.write(f"the Celery worker exited ({self.worker.returncode}): restarted")
                    self.start_worker()

        threading.Thread(target=watch, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.web.send_signal(signal.SIGTERM)
        _kill_group(self.worker, signal.SIGTERM)
        for process in (self.web, self.worker):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        _kill_group(self.worker)  # whatever of its pool or beat is left


def _celery(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            # -B: beat too, whose drain_all_tallies is the aggregator's safety net.
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-Q", "tallies,light",
             "-c", "1", "--without-gossip", "--without-mingle", "-n", f"load-{os.getpid()}@%h",
             "--schedule", str(log.with_suffix(".beat")), "--loglevel", "INFO"],
            env=_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its pool and beat too
        )  # fmt: skip


def _kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _start_stack(log: Path) -> Stack:
    port = _free_port()
    with log.open("ab") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "4",
             "--bind", f"127.0.0.1:{port}", "--timeout", "60"],
            env=_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stack = Stack(web=web, worker=_celery(log), url=f"http://127.0.0.1:{port}", log=log)
    stack.supervise()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if Http(stack.url, timeout=2).request("GET", "/api/v1/arenas").status_code == 200:
                return stack
        except HTTP_ERRORS:
            time.sleep(0.3)
    stack.stop()
    raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")


# --- one voter ---------------------------------------------------------------------------------


@dataclass
class Record:
    """Latencies (ms) and statuses by request kind, and the battles whose vote got a 2xx."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    voted: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str, float]] = field(default_factory=list)  # (t, kind, ms)
    started: float = field(default_factory=time.monotonic)

    def add(self, kind: str, status: int, ms: float) -> None:
        with self.lock:
            self.latency[kind].append(ms)
            self.statuses[(kind, status)] += 1
            self.timeline.append((time.monotonic() - self.started, kind, ms))

    def slow_windows(self, limit_ms: float, window_s: float = 5.0) -> list[str]:
        """The windows whose battle or vote p99 exceeds ``limit_ms``: where faults hurt."""
        by_window: dict[int, list[float]] = defaultdict(list)
        for t, kind, ms in self.timeline:
            if kind in ("battle", "vote"):
                by_window[int(t // window_s)].append(ms)
        return [
            f"{w * window_s:.0f}-{(w + 1) * window_s:.0f} s: p99 {_pct(values, 0.99):.0f} ms"
            for w, values in sorted(by_window.items())
            if _pct(values, 0.99) > limit_ms
        ]


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes
    cookies: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.content)


HTTP_ERRORS = (OSError, http.client.HTTPException)


class Http:
    """A lean HTTP/1.1 client (the standard library's): the load generator shares this
    machine's two cores with the server it measures, and httpx spent about a third of a core
    on this load (CPU the server then lacked). A connection is kept while the server keeps it
    (gunicorn's sync workers close each one)."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname or "127.0.0.1", parts.port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, cookie: str = ""
    ) -> Reply:
        headers = {"Cookie": cookie} if cookie else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            content = response.read()
        except BaseException:
            self.conn.close()
            self.conn = None
            raise
        if response.will_close:
            self.conn.close()
            self.conn = None
        cookies = {}
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.strip().partition("=")
            cookies[name] = rest.split(";", 1)[0]
        return Reply(response.status, content, cookies)


def _timed(record: Record, kind: str, send: Callable[[], Reply]) -> Reply | None:
    started = time.perf_counter()
    try:
        response = send()
    except HTTP_ERRORS:
        record.add(kind, 599, (time.perf_counter() - started) * 1000)  # no answer at all
        return None
    record.add(kind, response.status_code, (time.perf_counter() - started) * 1000)
    return response


def _ballot(battle: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    labels = [slot["label"] for slot in battle["slots"]]
    if battle["mode"] == "pairwise":
        return {"choice": rng.choice(["A", "B", "A", "B", "tie"])}
    if battle["mode"] == "best_of_k":
        return {"choice": rng.choice(labels)}
    order = rng.sample(labels, len(labels))
    return {"ranks": {label: i + 1 for i, label in enumerate(order)}}


class Voter:
    def __init__(self, url: str, arenas: list[dict[str, Any]], seed: int) -> None:
        self.client = Http(url)
        self.arenas = arenas
        self.rng = random.Random(seed)
        self.cookie = ""

    def _post(self, path: str, body: dict[str, Any]) -> Reply:
        cookie = f"{COOKIE}={self.cookie}" if self.cookie else ""
        response = self.client.request("POST", path, body, cookie=cookie)
        # (The cookie is Secure with DEBUG=0; over plain loopback HTTP it is sent by hand.)
        self.cookie = response.cookies.get(COOKIE) or self.cookie
        return response

    def battle_and_vote(self, record: Record) -> None:
        arena = self.rng.choice(self.arenas)
        mode = self.rng.choice(arena["modes"])
        served = _timed(
            record,
            "battle",
            lambda: self._post(f"/api/v1/arenas/{arena['slug']}/battles", {"mode": mode}),
        )
        if served is None or served.status_code != 201:
            return
        battle = served.json()
        body = {"token": battle["token"], **_ballot(battle, self.rng)}
        voted = _timed(
            record, "vote", lambda: self._post(f"/api/v1/battles/{battle['id']}/vote", body)
        )
        if voted is not None and 200 <= voted.status_code < 300:
            with record.lock:
                record.voted.append(battle["id"])


def _reader(url: str, arenas: list[dict[str, Any]], record: Record, stop: threading.Event) -> None:
    rng, client = random.Random(), Http(url)
    while not stop.is_set():
        slug = rng.choice(arenas)["slug"]
        method = rng.choice(["bayesian", "bradley_terry", "elo"])
        path = f"/api/v1/arenas/{slug}/leaderboard?method={method}"
        _timed(record, "leaderboard", functools.partial(client.request, "GET", path))


# --- the phases --------------------------------------------------------------------------------


def raw_insert_rate(threads: int, seconds: float) -> float:
    """Rows a second that ``threads`` psycopg connections commit one INSERT at a time."""
    with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS load_probe (id bigserial PRIMARY KEY, body text)")
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        with psycopg.connect(f"{SERVER}/{DATABASE}") as conn:
            while time.monotonic() < stop:
                conn.execute("INSERT INTO load_probe (body) VALUES (%s)", ("vote",))
                conn.commit()
                counts[i] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    return sum(counts) / seconds


def _readers(
    url: str, arenas: list[dict[str, Any]], record: Record
) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=_reader, args=(url, arenas, record, stop)) for _ in range(2)]
    for thread in threads:
        thread.start()
    return stop, threads


def closed_loop(url: str, arenas: list[dict[str, Any]], voters: int, seconds: float) -> Record:
    record = Record()
    stop_readers, readers = _readers(url, arenas, record)
    deadline = time.monotonic() + seconds

    def run(i: int) -> None:
        voter = Voter(url, arenas, seed=i)
        while time.monotonic() < deadline:
            voter.battle_and_vote(record)

    with ThreadPoolExecutor(voters) as pool:
        futures = [pool.submit(run, i) for i in range(voters)]
        for _ in tqdm(range(int(seconds)), desc="closed loop", unit="s"):
            time.sleep(1)
        for future in futures:
            future.result()
    stop_readers.set()
    for thread in readers:
        thread.join()
    return record


def open_loop(
    url: str,
    arenas: list[dict[str, Any]],
    rate: float,
    seconds: float,
    faults: Callable[[float], None],
) -> Record:
    record = Record()
    stop_readers, readers = _readers(url, arenas, record)
    pool_size = 128
    pool = [Voter(url, arenas, seed=1000 + i) for i in range(pool_size)]
    free: list[Voter] = list(pool)
    lock = threading.Lock()

    def job() -> None:
        with lock:
            voter = free.pop() if free else Voter(url, arenas, seed=random.randrange(10**6))
        try:
            voter.battle_and_vote(record)
        finally:
            with lock:
                free.append(voter)

    started = time.monotonic()
    with (
        ThreadPoolExecutor(pool_size) as executor,
        tqdm(total=int(rate * seconds), desc="open loop") as bar,
    ):
        for n in range(int(rate * seconds)):
            due = started + n / rate
            time.sleep(max(0.0, due - time.monotonic()))
            faults(time.monotonic() - started)
            executor.submit(job)
            bar.update()
    stop_readers.set()
    for thread in readers:
        thread.join()
    return record


class LagSampler:
    """How long the oldest vote not yet in the tallies has waited, sampled every 0.25 s."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = (
            "SELECT coalesce(extract(epoch FROM now() - min(v.created_at)), 0) "
            "FROM arena_pendingvote p JOIN arena_vote v ON v.id = p.vote_id"
        )
        with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
            while not self.stop.wait(0.25):
                self.samples.append(float(conn.execute(query).fetchone()[0]))  # type: ignore[index]

    def __enter__(self) -> LagSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def wait_for_the_aggregator(timeout_s: float = 30) -> float:
    """Seconds until no vote is pending (beat drains what a lost request left)."""
    started = time.monotonic()
    with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
        while time.monotonic() - started < timeout_s:
            if not conn.execute("SELECT count(*) FROM arena_pendingvote").fetchone()[0]:  # type: ignore[index]
                break
            time.sleep(0.1)
    return time.monotonic() - started


def _fault_plan(stack: Stack) -> Callable[[float], None]:
    done: set[str] = set()

    def inject(elapsed: float) -> None:
        if elapsed >= 15 and "web" not in done:
            done.add("web")
            children = subprocess.run(
                ["pgrep", "-P", str(stack.web.pid)], capture_output=True, text=True
            )
            pids = children.stdout.split()
            if pids:
                os.kill(int(pids[0]), signal.SIGKILL)
            tqdm.write(f"fault: killed gunicorn worker {pids[0]}" if pids else "fault: no worker")
        if elapsed >= 25 and "worker" not in done:
            done.add("worker")
            _kill_group(stack.worker)  # the main process, its pool and beat; supervisor restarts
            tqdm.write("fault: killed the Celery worker")
        if elapsed >= 35 and "redis" not in done:
            done.add("redis")
            threading.Thread(target=_restart_redis, daemon=True).start()

    return inject


def _restart_redis() -> None:
    subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True)
    tqdm.write("fault: Redis stopped")
    time.sleep(3)
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
         "--save", "", "--appendonly", "no"],
        check=True, capture_output=True,
    )  # fmt: skip
    tqdm.write("fault: Redis started again")


# --- checks and report -------------------------------------------------------------------------


def _trust_floor() -> float:
    """The weight of a vote from an identity without a trust row (the app's setting)."""
    code = "from arena.leaderboards import trust_floor; print(trust_floor())"
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=_env(), cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


Pairs = dict[tuple[int, int, int], list[float]]  # (arena, low, high): [a_wins, b_wins, ties, n]


def _expected_pairs(conn: psycopg.Connection[Any], floor: float) -> Pairs:
    """The counted votes decomposed into pair outcomes, as the tallies should hold them: each
    outcome at its voter's trust weight in the arena (the floor without a row), and the
    number of comparisons unweighted."""
    expected: Pairs = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    rows = conn.execute(
        "SELECT v.arena_id, v.ranking, v.is_partial, t.weight FROM arena_vote v "
        "LEFT JOIN arena_votertrust t ON t.arena_id = v.arena_id AND t.voter_id = v.voter_id "
        "WHERE NOT v.is_named AND NOT EXISTS "
        "(SELECT 1 FROM arena_voteexclusion e WHERE e.vote_id = v.id)"
    ).fetchall()
    for arena_id, groups, is_partial, weight in rows:
        groups = tuple(tuple(str(m) for m in group) for group in groups)
        vote = Ranking(groups, partial=bool(is_partial) and len(groups) > 1)
        for a_str, b_str, score in vote.pairs():
            a, b = int(a_str), int(b_str)
            low, high = min(a, b), max(a, b)
            row = expected[(arena_id, low, high)]
            row[2 if score == 0.5 else 0 if a == low else 1] += floor if weight is None else weight
            row[3] += 1
    return expected


def _pairs_equal(stored: Pairs, expected: Pairs) -> bool:
    """Comparisons exactly; weighted outcomes to float rounding."""
    return set(stored) == set(expected) and all(
        stored[k][3] == expected[k][3]
        and all(abs(stored[k][i] - expected[k][i]) <= 1e-6 * (1 + expected[k][i]) for i in range(3))
        for k in expected
    )


def check_exactness(voted: list[str]) -> dict[str, Any]:
    """Every 2xx vote stored once, nothing else stored, tallies equal to the vote log."""
    with psycopg.connect(f"{SERVER}/{DATABASE}") as conn:
        per_battle: dict[str, int] = dict(
            conn.execute(
                "SELECT b.public_id::text, count(v.id) FROM arena_battle b "
                "LEFT JOIN arena_vote v ON v.battle_id = b.id GROUP BY b.public_id"
            ).fetchall()
        )
        stored = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]  # type: ignore[index]
        tallied = conn.execute("SELECT coalesce(sum(votes), 0) FROM arena_arenatally").fetchone()[0]  # type: ignore[index]
        pending = conn.execute("SELECT count(*) FROM arena_pendingvote").fetchone()[0]  # type: ignore[index]
        excluded = conn.execute("SELECT count(*) FROM arena_voteexclusion").fetchone()[0]  # type: ignore[index]
        tallies: Pairs = {
            (arena_id, low, high): [a_wins, b_wins, ties, n]
            for arena_id, low, high, a_wins, b_wins, ties, n in conn.execute(
                "SELECT arena_id, model_a_id, model_b_id, a_wins, b_wins, ties, comparisons "
                "FROM arena_pairtally WHERE comparisons > 0"
            )
        }
        expected = _expected_pairs(conn, _trust_floor())
    return {
        "2xx votes": len(voted),
        "lost": sum(per_battle.get(b, 0) == 0 for b in voted),
        "doubled": sum(per_battle.get(b, 0) > 1 for b in voted),
        "stored in all": stored,
        "tallied": tallied,
        "still pending": pending,
        "excluded by fraud detection": excluded,
        "pair tallies equal the vote log": _pairs_equal(tallies, expected),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(title: str, record: Record, seconds: float) -> None:
    print(f"\n{title}")
    for kind in ("battle", "vote", "leaderboard"):
        values = record.latency.get(kind, [])
        print(f"  {kind:<12} n={len(values):>6}  p50 {_pct(values, .5):7.1f} ms  "
              f"p95 {_pct(values, .95):7.1f} ms  p99 {_pct(values, .99):7.1f} ms")  # fmt: skip
    errors = {f"{k} {s}": n for (k, s), n in sorted(record.statuses.items()) if s >= 400}
    print(f"  votes/s {len(record.voted) / seconds:.1f}; errors by status: {errors or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--voters", type=int, default=32)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument(
        "--faults", action="store_true", help="kill and restart during the open loop"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.voters < 1 or args.rate <= 0:
        parser.error("--duration, --voters and --rate must be positive")
    _fresh_database()
    arenas = _seed()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"arena-load-{os.getpid()}.log"
    raw_before = raw_insert_rate(args.voters, min(10.0, args.duration))
    stack = _start_stack(log)
    try:
        with LagSampler() as closed_lag:
            closed = closed_loop(stack.url, arenas, args.voters, args.duration)
        # Again once the closed loop is over (the stack idle): this host's speed drifts within
        # minutes, and the ratio is to the mean of the two.
        time.sleep(2)  # the last drains
        raw_after = raw_insert_rate(args.voters, min(10.0, args.duration))
        with LagSampler() as open_lag:
            opened = open_loop(stack.url, arenas, args.rate, args.duration,
                               _fault_plan(stack) if args.faults else lambda elapsed: None)  # fmt: skip
        time.sleep(3)  # let the last answers land
        settle_s = wait_for_the_aggregator()
    finally:
        stack.stop()
    votes_s = len(closed.voted) / args.duration
    print(f"\nraw psycopg INSERT+COMMIT, {args.voters} threads: {raw_before:.0f} rows/s before "
          f"the closed loop, {raw_after:.0f} after")  # fmt: skip
    raw = (raw_before + raw_after) / 2
    report(
        f"closed loop: {args.voters} voters + 2 readers, {args.duration:.0f} s",
        closed,
        args.duration,
    )
    print(f"  ratio to the raw insert rate (the mean of the two): {votes_s / raw:.4f}")
    report(f"open loop: {args.rate:g} votes/s + 2 readers{' with faults' if args.faults else ''}",
           opened, args.duration)  # fmt: skip
    print(f"  5 s windows with battle/vote p99 over 150 ms: {opened.slow_windows(150) or 'none'}")
    for name, lag in (("closed loop", closed_lag), ("open loop", open_lag)):
        print(f"  tally lag ({name}; the oldest uncounted vote's age): "
              f"p50 {_pct(lag.samples, .5):.2f} s, p99 {_pct(lag.samples, .99):.2f} s, "
              f"max {max(lag.samples, default=0):.2f} s")  # fmt: skip
    exact = check_exactness(closed.voted + opened.voted)
    print(f"\nafterwards (all votes counted {settle_s:.1f} s after the last answer):", exact)
    print(f"Celery worker exits the supervisor restarted: {stack.worker_exits}")
    print(f"(server logs: {log})")
    broken = (
        exact["lost"]
        or exact["doubled"]
        or exact["still pending"]
        or not exact["pair tallies equal the vote log"]
    )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
