"""Side channels: can a bot tell which model made a slot's output before it votes?

    python benchmarks/side_channel.py [--battles 150] [--prompts 6]

Seeds the three demo arenas (text-to-image, text-to-video, image-to-3D; 8 models each) into a
throw-away folder (SQLite, media), generates their outputs with the built-in generators, starts
gunicorn on loopback and plays battles through the HTTP API the way a bot would: it records every
pre-vote observable except decoded pixels (the battle JSON, each media link, and for each link
the status, headers and byte count of the answer), votes at random, and learns from the reveal.

It reports per arena:

- links served twice (the target is none: a link that repeats maps to its model once revealed);
- accuracy on outputs it never saw revealed, by a nearest-neighbour guess over what the answer
  says of the file (Content-Type, size, the set of header names, the link's shape), against
  chance (1 / models in the arena); the target is at most chance + 10 points;
- for information, how often the exact bytes of an output seen revealed before give its model
  away (content identifies a model anyway; the issue accepts that).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "arena_voter"
ARENAS = ("text-to-image", "text-to-video", "image-to-3d", "image-to-splat")


def _env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    return {
        **env,
        "ARENA_VAR_DIR": str(var_dir),
        "DEBUG": "0",
        "SECRET_KEY": "side-channel-benchmark-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "RATE_LIMITS_ENABLED": "0",
        "ARENA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_web(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    with log.open("ab") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "2",
             "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/arenas", timeout=2).status_code == 200:
                return web, url
        except httpx.HTTPError:
            time.sleep(0.3)
    web.kill()
    raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")


# --- the bot -----------------------------------------------------------------------------------

# Headers that differ on every answer whatever is served (they carry nothing about the file).
_VOLATILE = {"date", "server", "connection", "keep-alive"}


@dataclass
class Observation:
    """What a slot shows before the vote, and (for scoring only) the bytes' hash."""

    url: str
    media_type: str
    content_type: str
    size: int
    header_names: tuple[str, ...]
    url_shape: str
    digest: str  # sha256 of the bytes: the benchmark's ground truth of "the same output"

    def features(self) -> tuple[str, str, tuple[str, ...], str]:
        return (self.media_type, self.content_type, self.header_names, self.url_shape)


def _url_shape(url: str) -> str:
    """The link with runs of letters and digits replaced by their class and length."""
    return re.sub(r"[0-9a-f]{8,}|[A-Za-z0-9_\-]{8,}", lambda m: f"<{len(m.group(0))}>", url)


@dataclass
class Learner:
    """Nearest neighbour over the revealed observations: same categorical features first, then the
    closest log size."""

    seen: list[tuple[Observation, str]] = field(default_factory=list)

    def guess(self, obs: Observation) -> str | None:
        if not self.seen:
            return None

        def distance(pair: tuple[Observation, str]) -> tuple[int, float]:
            other = pair[0]
            mismatches = sum(a != b for a, b in zip(obs.features(), other.features(), strict=True))
            return mismatches, abs(math.log1p(obs.size) - math.log1p(other.size))

        return min(self.seen, key=distance)[1]

    def learn(self, obs: Observation, model: str) -> None:
        self.seen.append((obs, model))


@dataclass
class Tally:
    models: set[str] = field(default_factory=set)
    urls: Counter[str] = field(default_factory=Counter)
    unseen_right: int = 0
    unseen_total: int = 0
    bytes_right: int = 0
    bytes_total: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


class Bot:
    def __init__(self, url: str, seed: int) -> None:
        self.client = httpx.Client(base_url=url, timeout=60)
        self.rng = random.Random(seed)
        self.cookie = ""
        self.learner: dict[str, Learner] = defaultdict(Learner)
        self.revealed_bytes: dict[str, dict[str, str]] = defaultdict(
            dict
        )  # arena -> digest -> model
        self.tally: dict[str, Tally] = defaultdict(Tally)

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        response = self.client.post(path, json=body, headers=headers)
        self.cookie = response.cookies.get(COOKIE) or self.cookie
        return response

    def _observe(self, slot: dict[str, Any]) -> Observation:
        response = self.client.get(slot["url"])
        body = response.content
        return Observation(
            url=slot["url"],
            media_type=slot["media_type"],
            content_type=response.headers.get("content-type", ""),
            size=len(body),
            header_names=tuple(
                sorted(k.lower() for k in response.headers if k.lower() not in _VOLATILE)
            ),
            url_shape=_url_shape(slot["url"]),
            digest=hashlib.sha256(body).hexdigest(),
        )

    def play(self, arena: str) -> None:
        served = self._post(f"/api/v1/arenas/{arena}/battles", {"mode": "pairwise"})
        tally = self.tally[arena]
        tally.statuses[served.status_code] += 1
        if served.status_code != 201:
            return
        battle = served.json()
        observed = [(slot["label"], self._observe(slot)) for slot in battle["slots"]]
        guesses = {}
        for label, obs in observed:
            tally.urls[obs.url] += 1
            known = self.revealed_bytes[arena].get(obs.digest)
            guesses[label] = (known, self.learner[arena].guess(obs) if known is None else None)
        choice = self.rng.choice(["A", "B", "tie"])
        voted = self._post(
            f"/api/v1/battles/{battle['id']}/vote", {"token": battle["token"], "choice": choice}
        )
        tally.statuses[voted.status_code] += 1
        if voted.status_code != 201:
            return
        names = {r["label"]: r["model"] for r in voted.json()["reveal"]}
        for label, obs in observed:
            truth = names[label]
            tally.models.add(truth)
            known, guess = guesses[label]
            if known is not None:
                tally.bytes_total += 1
                tally.bytes_right += known == truth
            else:
                tally.unseen_total += 1
                tally.unseen_right += guess == truth
            self.learner[arena].learn(obs, truth)
            self.revealed_bytes[arena][obs.digest] = truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=150, help="battles per arena")
    parser.add_argument("--prompts", type=int, default=6, help="demo prompts per arena")
    args = parser.parse_args(argv)
    if args.battles < 1 or args.prompts < 1:
        parser.error("--battles and --prompts must be positive")
    var_dir = Path(tempfile.mkdtemp(prefix="arena-side-channel-"))
    env = _env(var_dir)
    print(f"seeding the demo arenas and generating their outputs in {var_dir} ...", flush=True)
    _manage(env, "migrate")
    _manage(env, "seed_demo", "--prompts", str(args.prompts))
    _manage(env, "pregenerate", "--prompts", str(args.prompts), "--jobs", "2")
    web, url = _start_web(env, var_dir / "web.log")
    bot = Bot(url, seed=1)
    try:
        for arena in ARENAS:
            for _ in tqdm(range(args.battles), desc=arena, unit="battle"):
                bot.play(arena)
    finally:
        web.terminate()
        web.wait(timeout=20)
    failed = False
    print()
    for arena in ARENAS:
        t = bot.tally[arena]
        chance = 1 / max(1, len(t.models))
        repeats = sum(n > 1 for n in t.urls.values())
        unseen = t.unseen_right / t.unseen_total if t.unseen_total else float("nan")
        by_bytes = t.bytes_right / t.bytes_total if t.bytes_total else float("nan")
        ok = repeats == 0 and unseen <= chance + 0.10
        failed = failed or not ok
        print(f"{arena}: {len(t.models)} models, {sum(t.urls.values())} links, {repeats} served twice; "
              f"unseen outputs {t.unseen_right}/{t.unseen_total} = {unseen:.1%} vs chance {chance:.1%} "
              f"({'meets' if ok else 'misses'} chance + 10 points); "
              f"exact bytes seen revealed before: {by_bytes:.1%} of {t.bytes_total}; "
              f"statuses {dict(t.statuses)}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
