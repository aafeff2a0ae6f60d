"""Stress the embedded (filesystem) broker: several producer and consumer processes at once.

    python benchmarks/broker_stress.py [--producers 4] [--consumers 4] [--messages 1000]

Every producer process publishes its share of uniquely numbered messages (padded to
``--size`` bytes, which widens the window a half-written file is visible in) while every
consumer process drains the queue. Afterwards every message must have been received exactly
once, and no process may have crashed. It runs kombu's stock filesystem transport and ours
(``workers.broker``) on the same load and prints lost, doubled and crashed for each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kombu import Connection
from tqdm import tqdm

QUEUE = "stress"


@dataclass
class StressResult:
    transport: str
    sent: int
    received: int
    lost: int
    doubled: int
    crashed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and not self.crashed


def _options(root: Path) -> dict[str, Any]:
    for sub in ("queue", "control", "processed"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "control_folder": str(root / "control"),
        "processed_folder": str(root / "processed"),
        "store_processed": False,
        "polling_interval": 0.01,
    }


def _produce(transport: str, options: dict[str, Any], first: int, count: int, size: int) -> None:
    with Connection(transport=transport, transport_options=options) as connection:
        queue = connection.SimpleQueue(QUEUE)
        pad = "x" * size
        for n in range(first, first + count):
            queue.put({"n": n, "pad": pad})
        queue.close()


def _consume(transport: str, options: dict[str, Any], out: str, idle_s: float) -> None:
    received: list[int] = []
    with Connection(transport=transport, transport_options=options) as connection:
        queue = connection.SimpleQueue(QUEUE)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_s:
            try:
                message = queue.get(timeout=0.05)
            except queue.Empty:
                continue
            message.ack()
            received.append(int(message.payload["n"]))
            idle_since = time.monotonic()
        queue.close()
    Path(out).write_text(json.dumps(received))


def run_stress(
    *,
    transport: str,
    producers: int = 4,
    consumers: int = 4,
    messages: int = 1000,
    size: int = 4096,
    idle_s: float = 5.0,
    progress: bool = False,
) -> StressResult:
    """Send ``messages`` through ``transport`` with the given processes; count what arrived."""
    context = multiprocessing.get_context("fork")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="broker-stress-") as tmp:
        root = Path(tmp)
        options = _options(root)
        outs = [str(root / f"received-{i}.json") for i in range(consumers)]
        readers = [
            context.Process(target=_consume, args=(transport, options, out, idle_s)) for out in outs
        ]
        share = -(-messages // producers)
        writers = [
            context.Process(
                target=_produce,
                args=(transport, options, i * share, min(share, messages - i * share), size),
            )
            for i in range(producers)
        ]
        for process in [*readers, *writers]:
            process.start()
        for process in tqdm(writers, desc=f"{transport}: producers", disable=not progress):
            process.join()
        for process in readers:
            process.join(timeout=idle_s + 120)
            if process.is_alive():  # stuck: reported as crashed below
                process.terminate()
                process.join()
        crashed = [
            f"{role} {i}: exit {p.exitcode}"
            for role, group in (("producer", writers), ("consumer", readers))
            for i, p in enumerate(group)
            if p.exitcode != 0
        ]
        counts: Counter[int] = Counter()
        for out in outs:
            if Path(out).exists():
                counts.update(json.loads(Path(out).read_text()))
    expected = set(range(messages))
    return StressResult(
        transport=transport,
        sent=messages,
        received=sum(counts.values()),
        lost=len(expected - set(counts)),
        doubled=sum(c - 1 for c in counts.values() if c > 1),
        crashed=crashed,
        seconds=time.monotonic() - started,
    )


TRANSPORTS = {"kombu filesystem": "filesystem", "ours (workers.broker)": "workers.broker:Transport"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096, help="bytes of padding per message")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if min(args.producers, args.consumers, args.messages, args.rounds) < 1:
        parser.error("--producers, --consumers, --messages and --rounds must be at least 1")
    print(
        f"{args.producers} producers, {args.consumers} consumers, {args.messages} messages of "
        f"{args.size} B, {args.rounds} rounds per transport"
    )
    print(f"{'transport':<24} {'round':>5} {'received':>9} {'lost':>5} {'doubled':>8} "
          f"{'crashed':>8} {'msg/s':>7}")  # fmt: skip
    failures = {name: 0 for name in TRANSPORTS}
    for name, transport in TRANSPORTS.items():
        for round_ in range(1, args.rounds + 1):
            r = run_stress(
                transport=transport,
                producers=args.producers,
                consumers=args.consumers,
                messages=args.messages,
                size=args.size,
                progress=True,
            )
            failures[name] += not r.ok
            print(f"{name:<24} {round_:>5} {r.received:>9} {r.lost:>5} {r.doubled:>8} "
                  f"{len(r.crashed):>8} {r.sent / r.seconds:>7.0f}")  # fmt: skip
    for name, failed in failures.items():
        print(f"{name}: {failed} of {args.rounds} rounds lost, doubled or crashed")
    return 1 if failures["ours (workers.broker)"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
