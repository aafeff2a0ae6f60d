"""Throughput of the builtin backend through the full queue path, and the per-task overhead.

    python benchmarks/generation_throughput.py [--assets 60] [--format png]

Measures, in one run and on one database/broker (whatever DATABASE_URL / REDIS_URL say; by
default a throw-away SQLite file and the filesystem broker in a temporary folder):

1. direct: generate + strip + validate + store each asset in this process (no Celery);
2. queue, 1 worker process;
3. queue, 2 worker processes;

and prints assets/s for each, the speed-up of 2 workers over 1, and the overhead per task
(queue seconds per asset with 1 worker minus direct seconds per asset).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python benchmarks/<script>.py
from benchmarks._django import ROOT, django_setup, migrate

django_setup()

from django.conf import settings  # noqa: E402
from tqdm import tqdm  # noqa: E402

from arena.models import Asset, AssetStatus, GenerativeModel, Prompt, PromptSet  # noqa: E402
from arena.services import asset_request  # noqa: E402
from workers.generation import asset_generate  # noqa: E402
from workers.generators import render_reference  # noqa: E402
from workers.tasks import generate_asset_enqueue  # noqa: E402


def _assets(tag: str, count: int, fmt: str, queue: str) -> list[int]:
    model = GenerativeModel.objects.create(
        name=f"bench {tag}", slug=f"bench-{tag}", task="text-to-image" if fmt in ("png", "webp") else "text-to-video",
        output_formats=[fmt], backend="builtin", backend_config={"quality": 3, "style": 1}, queue=queue,
    )  # fmt: skip
    prompt_set = PromptSet.objects.create(slug=f"bench-{tag}", name=f"bench {tag}")
    ids = []
    for i in range(count):
        prompt = Prompt.objects.create(prompt_set=prompt_set, text=f"benchmark prompt {tag} {i}")
        ids.append(asset_request(model=model, prompt=prompt)[0].pk)
    return ids


def _direct(ids: list[int]) -> float:
    started = time.perf_counter()
    for pk in tqdm(ids, desc="direct", unit="asset"):
        assert asset_generate(asset_id=pk) == "ready"
    return time.perf_counter() - started


def _start_workers(queue: str, count: int, log: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    procs = []
    for n in range(count):
        with log.open("ab") as handle:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "-Q",
                        queue,
                        "-c",
                        "1",
                        "--prefetch-multiplier",
                        "1",
                        "--without-gossip",
                        "--without-mingle",
                        "-n",
                        f"bench{n}-{uuid.uuid4().hex[:4]}@%h",
                        "--loglevel",
                        "WARNING",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def _queued(ids: list[int], queue: str, workers: int, log: Path) -> float:
    procs = _start_workers(queue, workers, log)
    try:
        # Warm-up: one job per worker so start-up time is not counted as throughput.
        warm = _assets(f"warm-{uuid.uuid4().hex[:6]}", workers, "png", queue)
        for pk in warm:
            generate_asset_enqueue(asset_id=pk, queue=queue)
        _wait(warm, desc=f"warm-up {workers}w")
        started = time.perf_counter()
        for pk in ids:
            generate_asset_enqueue(asset_id=pk, queue=queue)
        _wait(ids, desc=f"queue, {workers} worker(s)")
        return time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def _wait(ids: list[int], desc: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    with tqdm(total=len(ids), desc=desc, unit="asset") as bar:
        done = 0
        while done < len(ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"{desc}: timed out with {done}/{len(ids)} ready")
            now_done = Asset.objects.filter(
                pk__in=ids, status__in=[AssetStatus.READY, AssetStatus.FAILED]
            ).count()
            bar.update(now_done - done)
            done = now_done
            time.sleep(0.05)
    failed = Asset.objects.filter(pk__in=ids, status=AssetStatus.FAILED).count()
    if failed:
        raise SystemExit(f"{desc}: {failed} generations failed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=60)
    parser.add_argument("--format", default="png", choices=["png", "webp", "mp4", "webm"])
    args = parser.parse_args()
    migrate()
    log = Path(tempfile.mkdtemp(prefix="arena-bench-log-")) / "workers.log"
    run = uuid.uuid4().hex[:6]
    queue = f"gen.bench-{run}"

    direct_s = _direct(_assets(f"direct-{run}", args.assets, args.format, queue))
    one_s = _queued(_assets(f"q1-{run}", args.assets, args.format, queue), queue, 1, log)
    two_s = _queued(_assets(f"q2-{run}", args.assets, args.format, queue), queue, 2, log)

    n = args.assets
    broker = settings.CELERY_BROKER_URL.split("://")[0]
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"\nbuiltin {args.format}, {n} assets per run, broker={broker}, database={database}, {os.cpu_count()} CPUs"
    )
    print(f"{'path':<28}{'seconds':>10}{'assets/s':>10}{'ms/asset':>10}")
    for name, seconds in (
        ("direct (no queue)", direct_s),
        ("queue, 1 worker", one_s),
        ("queue, 2 workers", two_s),
    ):
        print(f"{name:<28}{seconds:>10.2f}{n / seconds:>10.1f}{1000 * seconds / n:>10.1f}")
    print(f"speed-up 2 workers / 1 worker: {one_s / two_s:.2f}x")
    print(f"overhead per task (queue 1 worker - direct): {1000 * (one_s - direct_s) / n:.1f} ms")
    print(f"queue 1 worker / direct time ratio: {one_s / direct_s:.2f}x")
    print(f"reference image (384 px, image-to-3D input): {_reference_ms():.0f} ms (target < 300)")


def _reference_ms(rounds: int = 5) -> float:
    """The best of ``rounds`` renders of a demo reference image (imports and caches warmed)."""
    render_reference(prompt="a toy robot", seed=3)
    timings = []
    for seed in range(4, 4 + rounds):
        started = time.perf_counter()
        render_reference(prompt="a toy robot", seed=seed)
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


if __name__ == "__main__":
    main()
