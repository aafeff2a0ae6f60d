"""Vote datasets: an arena's vote log as JSON Lines or CSV, with a dataset card and checksums.

Streaming (the log is read in batches of ``BATCH`` votes in id order), so memory stays flat
whatever the log's size. Each row is one vote: the arena, mode, prompt, the models in slot order,
the ranking (best first; ties share a group), the outcome, when and how fast it was cast, whether
the leaderboard counts it, its weight (the voter's earned trust) and why it is excluded if it is.

Voters appear as a pseudonym: an HMAC of their id under a key drawn for this export and never
stored, so a voter's votes can be grouped within one export but not linked across exports. No
address, network prefix, user agent or hash of them is exported.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import importlib.util
import io
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from django.db.models import Max
from django.utils import timezone

from arena.errors import ArenaError
from arena.leaderboards import PARAMS, leaderboard_rebuild, trust_floor
from arena.models import (
    Arena,
    ArenaTally,
    BattleSlot,
    GenerativeModel,
    ModelRating,
    PendingVote,
    Prompt,
    Vote,
    VoterTrust,
)
from arena.services import USER_PROMPT_SET

FORMATS = ("jsonl", "csv", "parquet")
BATCH = 2000

#: The columns, in order, with what each holds (the dataset card lists them).
FIELDS: dict[str, str] = {
    "vote_id": "the vote's id in this arena's log (increasing with time)",
    "arena": "the arena's slug",
    "mode": "pairwise, best_of_k or rank_k",
    "prompt_id": "the prompt's id",
    "prompt": "the prompt's text",
    "models": "the models shown, by slug, in slot order (A, B, ...)",
    "ranking": "groups of model slugs, best first; models in one group tied (the last group of "
    "a best-of-K vote is unordered: the winner beat each, they were not compared)",
    "outcome": "the vote as cast: a, b, tie, both_bad, best or ranked",
    "is_partial": "true for best-of-K votes (only the winner is known)",
    "created_at": "when the vote was cast (UTC, ISO 8601)",
    "time_to_vote_ms": "from the battle being shown to the vote",
    "too_fast": "cast before the media's minimum viewing time",
    "counts": "whether the leaderboard counts the vote",
    "weight": "the weight a counted vote carries: its voter's earned trust (0 when not counted)",
    "excluded_because": "the detectors (or admin) behind an exclusion; empty when counted",
    "voter": "a pseudonym, stable within this export only",
}


class InvalidExport(ArenaError):
    """The export cannot be made as asked (bad format, folder not empty)."""


@dataclass
class ExportSummary:
    arena: str
    fmt: str
    votes: int = 0
    counted: int = 0
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256


def _pseudonym(key: bytes) -> Callable[[str], str]:
    def name(voter_public_id: str) -> str:
        return hmac.new(key, voter_public_id.encode(), hashlib.sha256).hexdigest()[:16]

    return name


def vote_rows(
    *,
    arena: Arena,
    since: datetime | None = None,
    key: bytes | None = None,
    through: int | None = None,
    public: bool = False,
) -> Iterator[dict[str, Any]]:
    """Every vote of ``arena`` (cast at or after ``since``, with an id up to ``through``) as an
    export row, in id order.

    ``public`` (the download anyone may take when the arena publishes its votes): the text of
    prompts voters typed themselves is left out, an exclusion says only "excluded" and
    ``too_fast`` is null, so the file is no oracle for tuning a campaign against the checks."""
    pseudonym = _pseudonym(key or secrets.token_bytes(32))
    votes = Vote.objects.filter(arena=arena).order_by("pk")
    if through is not None:
        votes = votes.filter(pk__lte=through)
    if since is not None:
        votes = votes.filter(created_at__gte=since)
    slugs = dict(GenerativeModel.objects.values_list("pk", "slug"))  # removed models too
    typed = (
        set(
            Prompt.objects.filter(prompt_set__slug__startswith=USER_PROMPT_SET).values_list(
                "pk", flat=True
            )
        )
        if public
        else set()
    )
    last = 0
    while True:
        batch = list(
            votes.filter(pk__gt=last)
            .select_related("battle__prompt", "voter", "exclusion")
            .only(
                "id", "mode", "outcome", "ranking", "is_partial", "created_at",
                "time_to_vote_ms", "too_fast", "is_named", "voter__public_id", "voter_id",
                "battle__prompt__id", "battle__prompt__text", "battle__prompt__prompt_set_id",
                "exclusion__reasons",
            )[:BATCH]
        )  # fmt: skip
        if not batch:
            return
        last = batch[-1].pk
        for row in _rows(arena, batch, slugs, pseudonym):
            yield _public(row, typed) if public else row


def _public(row: dict[str, Any], typed: set[int]) -> dict[str, Any]:
    return {
        **row,
        "prompt": "" if row["prompt_id"] in typed else row["prompt"],
        "excluded_because": ["excluded"] if row["excluded_because"] else [],
        "too_fast": None,
    }


def _rows(
    arena: Arena, batch: list[Vote], slugs: dict[int, str], pseudonym: Callable[[str], str]
) -> Iterator[dict[str, Any]]:
    shown: dict[int, list[int]] = {}
    for battle_id, model_id in (
        BattleSlot.objects.filter(battle_id__in=[v.battle_id for v in batch])
        .order_by("battle_id", "position")
        .values_list("battle_id", "model_id")
    ):
        shown.setdefault(battle_id, []).append(model_id)
    weights = dict(
        VoterTrust.objects.filter(
            arena=arena, voter_id__in={v.voter_id for v in batch}
        ).values_list("voter_id", "weight")
    )
    floor = trust_floor()  # a voter without a trust row yet counts at the floor
    pending = set(
        PendingVote.objects.filter(vote_id__in=[v.pk for v in batch]).values_list(
            "vote_id", flat=True
        )
    )
    for vote in batch:
        exclusion = getattr(vote, "exclusion", None)
        counts = exclusion is None and not vote.is_named and vote.pk not in pending
        reasons = list(exclusion.reasons) if exclusion is not None else []
        if vote.is_named:
            reasons.append("named battle (the voter chose the models)")
        yield {
            "vote_id": vote.pk,
            "arena": arena.slug,
            "mode": vote.mode,
            "prompt_id": vote.battle.prompt.pk,
            "prompt": vote.battle.prompt.text,
            "models": [slugs.get(m, str(m)) for m in shown.get(vote.battle_id, [])],
            "ranking": [[slugs.get(m, str(m)) for m in group] for group in vote.ranking],
            "outcome": vote.outcome,
            "is_partial": vote.is_partial,
            "created_at": vote.created_at.astimezone(UTC).isoformat(),
            "time_to_vote_ms": vote.time_to_vote_ms,
            "too_fast": vote.too_fast,
            "counts": counts,
            "weight": float(weights.get(vote.voter_id, floor)) if counts else 0.0,
            "excluded_because": reasons,
            "voter": pseudonym(str(vote.voter.public_id)),
        }


def _parquet_schema() -> Any:
    import pyarrow as pa

    text, names = pa.string(), pa.list_(pa.string())
    return pa.schema(
        [
            ("vote_id", pa.int64()), ("arena", text), ("mode", text), ("prompt_id", pa.int64()),
            ("prompt", text), ("models", names), ("ranking", pa.list_(names)),
            ("outcome", text), ("is_partial", pa.bool_()), ("created_at", text),
            ("time_to_vote_ms", pa.int64()), ("too_fast", pa.bool_()), ("counts", pa.bool_()),
            ("weight", pa.float64()), ("excluded_because", names), ("voter", text),
        ]
    )  # fmt: skip


def _write_parquet(rows: Iterator[dict[str, Any]], path: Path) -> Iterator[bool]:
    """Write rows to a Parquet file in row groups of ``BATCH``; yields each row's ``counts``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            yield bool(row["counts"])
            if len(batch) == BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def _write_rows(rows: Iterator[dict[str, Any]], fmt: str, handle: TextIO) -> Iterator[bool]:
    """Write rows to ``handle``; yields each row's ``counts`` (for progress and totals)."""
    if fmt == "jsonl":
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            yield bool(row["counts"])
        return
    writer = csv.DictWriter(handle, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {
            k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
            for k, v in row.items()
        }
        writer.writerow(flat)
        yield bool(row["counts"])


def export_votes(
    *,
    arena: Arena,
    out_dir: Path,
    fmt: str,
    since: datetime | None = None,
    licence: str = "cc-by-4.0",
    progress: Callable[[int], object] | None = None,
) -> ExportSummary:
    """Write ``votes.<fmt>``, a dataset card (``README.md``) and ``SHA256SUMS`` into
    ``out_dir`` (created; it must be empty). Raises InvalidExport before writing anything."""
    if fmt not in FORMATS:
        raise InvalidExport(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InvalidExport(
            "Parquet needs pyarrow, which this install does not have: "
            "pip install 'genai-arena[export]' (or use jsonl or csv)."
        )
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InvalidExport(f"{out_dir} exists and is not an empty folder; pick a new one.")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(arena=arena.slug, fmt=fmt)
    live, through = _live_leaderboard(arena)
    board = out_dir / "leaderboard.json"
    if since is None:  # a partial export cannot be replayed into the whole leaderboard
        board.write_text(json.dumps(live, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    data = out_dir / f"votes.{fmt}"
    rows = vote_rows(arena=arena, since=since, through=through)
    with contextlib.ExitStack() as stack:
        if fmt == "parquet":
            written = _write_parquet(rows, data)
        else:
            handle = stack.enter_context(data.open("w", encoding="utf-8", newline=""))
            written = _write_rows(rows, fmt, handle)
        for counts in written:
            summary.votes += 1
            summary.counted += counts
            if progress is not None:
                progress(1)
    card = out_dir / "README.md"
    card.write_text(_card(arena, summary, since, licence), encoding="utf-8")
    for path in (data, card, board):
        if path.exists():
            summary.files[path.name] = _sha256(path)
    (out_dir / "SHA256SUMS").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in sorted(summary.files.items())),
        encoding="utf-8",
    )
    return summary


def _live_leaderboard(arena: Arena) -> tuple[dict[str, Any], int]:
    """The leaderboard the export is checked against (``python -m ranking.replay``): rebuilt
    now (pending votes drained first), with the highest vote id the tallies hold. Read again if
    votes were counted between the rebuild and the read (the snapshots' hash must be the
    tally's)."""
    high = Vote.objects.filter(arena=arena).aggregate(high=Max("pk"))["high"] or 0
    for _ in range(5):
        snapshots = leaderboard_rebuild(arena=arena).snapshots
        tally = ArenaTally.objects.get(arena=arena)
        if all(s.vote_set_hash == tally.digest for s in snapshots):
            break
    slugs = dict(GenerativeModel.objects.filter(arenas=arena).values_list("pk", "slug"))
    rated = sorted(ModelRating.objects.filter(arena=arena).values_list("model_id", flat=True))
    rated_slugs = dict(GenerativeModel.objects.filter(pk__in=rated).values_list("pk", "slug"))
    return {
        "arena": arena.slug,
        "vote_set_hash": tally.digest,
        "votes": tally.votes,
        # The models the standings rank, and every model the online ratings follow (these
        # include models removed from the arena since: their votes still moved the others).
        "players": [slugs[pk] for pk in sorted(slugs)],
        "rated": [rated_slugs[pk] for pk in rated],
        "methods": {
            s.method: {
                "params": PARAMS[s.method],
                "standings": [
                    {"model": r["slug"], "score": r["score"], "low": r["low"], "high": r["high"]}
                    for r in s.standings
                ],
            }
            for s in snapshots
        },
        # Every vote up to ``high`` was drained by the rebuild; the tallies may hold later ones.
    }, max(high, tally.applied_through)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _card(arena: Arena, summary: ExportSummary, since: datetime | None, licence: str) -> str:
    tally = ArenaTally.objects.filter(arena=arena).first()
    out = io.StringIO()
    out.write(
        "---\n"
        f"license: {json.dumps(licence)}\n"  # JSON strings are valid YAML scalars
        f"pretty_name: {json.dumps(arena.name + ' votes', ensure_ascii=False)}\n"
        "task_categories:\n- other\n"
        "tags:\n- human-preference\n- arena\n- pairwise-comparison\n"
        "configs:\n- config_name: default\n"
        f"  data_files: votes.{summary.fmt}\n"
        "---\n\n"
    )
    out.write(f"# {arena.name}: human preference votes\n\n{arena.description}\n\n")
    out.write(
        f"- Arena: `{arena.slug}` (task {arena.task})\n"
        f"- Votes: {summary.votes}, of which the leaderboard counts {summary.counted}\n"
        f"- Cast since: {since.isoformat() if since else 'the first vote'}"
        f"{' (a partial export: it cannot be replayed into the leaderboard)' if since else ''}\n"
        f"- Exported: {timezone.now().astimezone(UTC).isoformat()}\n"
        f"- Vote-set hash of the counted votes at export time: "
        f"`{tally.digest if tally else '0' * 32}` ({tally.votes if tally else 0} votes)\n"
        f"- Licence: {licence}\n\n"
    )
    out.write("## Fields\n\n| field | meaning |\n|---|---|\n")
    for name, meaning in FIELDS.items():
        out.write(f"| `{name}` | {meaning} |\n")
    out.write(
        "\n## Privacy\n\nVoters appear as a pseudonym (an HMAC under a key drawn for this export "
        "and discarded), stable within this export and unlinkable across exports. No address, "
        "network prefix, user agent or hash of them is included.\n\n"
        "## Integrity\n\n`SHA256SUMS` holds the SHA-256 of every file (`sha256sum -c SHA256SUMS`).\n"
    )
    return out.getvalue()
