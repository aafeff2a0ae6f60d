"""Recompute an arena's leaderboard from a vote export alone: no Django, no database.

    python -m ranking.replay DIR

``DIR`` is what ``manage.py export_votes`` wrote: ``votes.jsonl`` (or ``.csv``, or ``.parquet``,
which needs pyarrow) and
``leaderboard.json`` (the live leaderboard at export time: its vote-set hash, the methods'
parameters, the models in the order the fits use, and the standings). The replay sums the
vote-set hash of the counted votes at their weights, rebuilds the pair counts and the online
ELO in vote order, fits every method with the exported parameters, prints the standings and
says whether the hash and every score match the live ones.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bayesian import BayesianRater
from .bradley_terry import BradleyTerryRater
from .core import Ranking, Standing
from .counts import PairCounts
from .elo import EloRater

__all__ = ["DIGEST_MOD", "Replayed", "replay_export", "standings_for", "vote_hash"]

DIGEST_MOD = 2**128  # the vote-set hash is the sum of the votes' terms modulo this


def vote_hash(vote_id: int, weight: float = 1.0) -> int:
    """One counted vote's term in the vote-set hash (the sum of the terms modulo 2**128)."""
    key = f"vote:{vote_id}" if weight == 1.0 else f"vote:{vote_id}@{round(weight * 10_000)}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "big")


def rater_for(
    method: str,
    counts: PairCounts,
    params: Mapping[str, Any],
    elo: Sequence[float] | None = None,
) -> EloRater | BradleyTerryRater | BayesianRater:
    """The rater of ``method`` ("elo", "bradley_terry" or "bayesian") over aggregated counts;
    ELO's ratings are the online ones (``elo``, in ``counts.players`` order)."""
    rater: EloRater | BradleyTerryRater | BayesianRater
    if method == "elo":
        rater = EloRater(counts.players, **params)
        if elo is not None:
            rater.ratings = np.asarray(elo, dtype=np.float64)
    elif method == "bradley_terry":
        rater = BradleyTerryRater(counts.players, **params)
    elif method == "bayesian":
        rater = BayesianRater(counts.players, **params)
    else:
        raise ValueError(f"method: unknown method {method!r}; use elo, bradley_terry, bayesian")
    rater.counts = counts
    rater.n_votes = int(counts.votes.sum())
    return rater


def standings_for(
    method: str,
    counts: PairCounts,
    params: Mapping[str, Any],
    elo: Sequence[float] | None = None,
) -> list[Standing]:
    """The standings of ``method`` from aggregated counts (see :func:`rater_for`)."""
    return rater_for(method, counts, params, elo).standings()


@dataclass
class Replayed:
    """What the replay computed, and how it compares with the exported leaderboard."""

    vote_set_hash: str
    votes: int
    standings: dict[str, list[Standing]]
    expected_hash: str
    mismatches: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.vote_set_hash == self.expected_hash and not self.mismatches


def _rows(folder: Path) -> Iterator[dict[str, Any]]:
    jsonl, table, parquet = folder / "votes.jsonl", folder / "votes.csv", folder / "votes.parquet"
    if parquet.exists():
        import pyarrow.parquet as pq  # only needed for Parquet exports

        columns = ["vote_id", "ranking", "is_partial", "counts", "weight"]
        for batch in pq.ParquetFile(parquet).iter_batches(columns=columns):
            yield from batch.to_pylist()
        return
    if jsonl.exists():
        with jsonl.open(encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)
        return
    if not table.exists():
        raise ValueError(f"{folder} holds no votes.jsonl, votes.csv or votes.parquet")
    with table.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {
                "vote_id": int(row["vote_id"]),
                "ranking": json.loads(row["ranking"]),
                "is_partial": row["is_partial"] == "True",
                "counts": row["counts"] == "True",
                "weight": float(row["weight"]),
            }


def _replicates(methods: dict[str, Any]) -> int:
    """How many vote-level bootstrap replicates the exported leaderboard used (0: none)."""
    bt = methods.get("bradley_terry", {}).get("params", {})
    bayes = methods.get("bayesian", {}).get("params", {})
    return max(
        int(bt["rounds"]) if bt.get("resample") == "vote" else 0,
        int(bayes.get("replicates", 0)),
    )


def _add_chunk(counts: PairCounts, chunk: list[tuple[Ranking, float, int]]) -> None:
    if chunk:
        counts.add_many([c[0] for c in chunk], [c[1] for c in chunk], [c[2] for c in chunk])
        chunk.clear()


def _feed(
    rows: Iterator[dict[str, Any]], every: PairCounts, elo: EloRater | None
) -> tuple[int, int]:
    """Count the exported votes into ``every`` and ``elo``; returns (digest, counted votes)."""
    chunk: list[tuple[Ranking, float, int]] = []
    digest = votes = 0
    known = set(every.players)
    last = -1
    for row in rows:  # streamed: the export writes votes in id order
        if int(row["vote_id"]) <= last:
            raise ValueError(f"votes are not in id order at vote {row['vote_id']} (after {last})")
        last = int(row["vote_id"])
        if not row["counts"]:
            continue
        weight = float(row["weight"])
        digest = (digest + vote_hash(int(row["vote_id"]), weight)) % DIGEST_MOD
        votes += 1
        groups = tuple(tuple(group) for group in row["ranking"])
        vote = Ranking(groups, partial=bool(row["is_partial"]) and len(groups) > 1)
        if elo is None or not set(vote.players) <= known:
            continue  # a model no longer in the arena
        elo.record(vote, weight)
        chunk.append((vote, weight, int(row["vote_id"])))
        if len(chunk) >= 10_000:
            _add_chunk(every, chunk)
    _add_chunk(every, chunk)
    return digest, votes


def replay_export(folder: Path, *, tolerance: float = 1e-6) -> Replayed:
    """Replay ``folder`` (see the module docstring); raises ValueError for a folder that is not
    an export."""
    try:
        live = json.loads((folder / "leaderboard.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder}/leaderboard.json cannot be read: {exc}") from None
    players: list[str] = list(live["players"])
    # The online ratings follow every model that was ever rated here, removed ones too; the
    # standings rank the arena's models now, from the counts among them.
    rated: list[str] = list(live.get("rated") or players)
    rated += [p for p in players if p not in set(rated)]
    every = PairCounts(rated, replicates=_replicates(live["methods"]))
    elo = EloRater(rated, **live["methods"]["elo"]["params"]) if rated else None
    digest, votes = _feed(_rows(folder), every, elo)
    at = [every.players.index(p) for p in players]
    counts = every.subset(players)
    online = elo.ratings[at].tolist() if elo is not None else None
    standings = {
        method: standings_for(
            method,
            counts,
            spec["params"],
            online if method == "elo" else None,
        )
        for method, spec in live["methods"].items()
    }
    result = Replayed(f"{digest:032x}", votes, standings, live["vote_set_hash"])
    for method, spec in live["methods"].items():
        got = {s.player: s for s in standings[method]}
        for row in spec["standings"]:
            mine = got.get(row["model"])
            for key in ("score", "low", "high"):
                # The live leaderboard shows two decimals.
                value = None if mine is None else round(float(getattr(mine, key)), 2)
                if value is None or abs(value - row[key]) > tolerance:
                    result.mismatches.append(
                        f"{method} {row['model']} {key}: {value} vs {row[key]}"
                    )
    return result


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder written by manage.py export_votes")
    args = parser.parse_args(argv)
    try:
        result = replay_export(args.folder)
    except (ValueError, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    for method, rows in result.standings.items():
        _say(f"\n{method}")
        for rank, s in enumerate(rows, 1):
            _say(f"  {rank:>2}. {s.player:<32} {s.score:10.2f}  [{s.low:.2f}, {s.high:.2f}]")
    _say(
        f"\n{result.votes} counted votes; vote-set hash {result.vote_set_hash} "
        f"(live: {result.expected_hash})"
    )
    if result.matches:
        _say("the replay matches the live leaderboard")
        return 0
    for line in result.mismatches[:20]:
        _say(f"mismatch: {line}")
    if result.vote_set_hash != result.expected_hash:
        _say("mismatch: the vote-set hash differs")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
