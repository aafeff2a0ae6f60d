"""Leaderboards from the vote log: an aggregator for the tallies, and snapshots for readers.

A vote's transaction only appends it to the log and to ``PendingVote`` (``tally_defer``); nothing
arena-wide is locked. The aggregator (``tallies_drain``, a task on the light queue asked for on
commit and run by beat as a safety net) applies pending votes in id order and in batches under
a row lock on the arena's ``ArenaTally``, so it is the one writer of, per arena: the vote-set
digest, the aggregated pair counts (``PairTally``) and the online ELO and Bayesian ratings
(``ModelRating``). After draining, these equal a replay of the counted votes: counts and digest
are order-free, and a vote that commits after a later one was applied marks the ratings stale,
which the drain fixes with ``ratings_replay``. It then refreshes the matchmaker's cached beliefs.

``leaderboard_rebuild`` turns the pair counts into snapshots (Bradley-Terry with bootstrap
intervals, the Bayesian MAP refit, and ELO) without reading per-vote rows: its cost depends on
the number of models, not of votes. Readers only ever get snapshots.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, Min, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from numpy.typing import NDArray
from redis.exceptions import RedisError

import ranking
from arena import localcache
from arena.models import (
    Arena,
    ArenaTally,
    GenerativeModel,
    LeaderboardSnapshot,
    ModelRating,
    PairTally,
    PendingVote,
    Vote,
    VoteExclusion,
    VoterFlag,
    VoterTrust,
)
from ranking import replay as ranking_replay

logger = logging.getLogger(__name__)

# Bump when the maths or its parameters change: snapshots are stamped with it.
LEADERBOARD_VERSION = "2"  # 2: intervals resample votes, not pairs
METHODS = ("bayesian", "bradley_terry", "elo")
METHOD_LABELS = {"bayesian": "Bayesian (K-wise)", "bradley_terry": "Bradley-Terry", "elo": "ELO"}
# Vote-level bootstrap replicates kept in the pair tallies (PairTally.replicates).
REPLICATES = 100
PARAMS: dict[str, dict[str, Any]] = {
    "bradley_terry": {
        "l2": 0.1,
        "rounds": REPLICATES,
        "level": 0.95,
        "seed": 0,
        "resample": "vote",
        "bias_reduction": "firth",
    },
    "bayesian": {"display": "map", "level": 0.95, "replicates": REPLICATES},
    "elo": {"k_factor": 16.0, "scale": 400.0, "base": 10.0, "init": 1000.0},
}
_DIGEST_MOD = ranking_replay.DIGEST_MOD  # one vote-set hash, live and in the replay
BETA = 25.0 / 6.0  # openskill's default performance noise, shared with ranking.bayesian


def _vote_hash(vote_id: int, weight: float = 1.0) -> int:
    """The digest's term for one vote counted at ``weight`` (a full vote's term is unchanged
    since before weights, so digests of unweighted vote sets stay what they were); the same
    function ``python -m ranking.replay`` checks an export with."""
    return ranking_replay.vote_hash(vote_id, weight)


def trust_floor() -> float:
    """The weight of a vote from an identity that has earned no trust yet (settings)."""
    return float(settings.FRAUD_TRUST_FLOOR_PCT) / 100.0


def voter_weights(
    *, arena_id: int, voter_ids: Iterable[int], create: bool = False
) -> dict[int, float]:
    """The weight each voter's tallied votes carry in the arena (``VoterTrust``); a voter
    without a row (none of its votes tallied yet) weighs the trust floor, and with ``create``
    gets a row at it (the aggregator, under the arena's tally lock)."""
    ids = sorted(set(voter_ids))
    out: dict[int, float] = {}
    for chunk in _chunks(ids):
        out |= dict(
            VoterTrust.objects.filter(arena_id=arena_id, voter_id__in=chunk).values_list(
                "voter_id", "weight"
            )
        )
    floor = trust_floor()
    missing = [v for v in ids if v not in out]
    if create and missing:
        VoterTrust.objects.bulk_create(
            [VoterTrust(arena_id=arena_id, voter_id=v, weight=floor) for v in missing],
            ignore_conflicts=True,
            batch_size=1000,
        )
    return out | dict.fromkeys(missing, floor)


def _ranking_of(vote: Vote) -> ranking.Ranking:
    groups = tuple(tuple(str(model_id) for model_id in group) for group in vote.ranking)
    return ranking.Ranking(groups, partial=bool(vote.is_partial) and len(groups) > 1)


def _locked_tally(arena_id: int) -> ArenaTally:
    ArenaTally.objects.get_or_create(arena_id=arena_id)
    return ArenaTally.objects.select_for_update().get(arena_id=arena_id)


Weighted = tuple[ranking.Ranking, float, int]  # a vote's ranking, weight and id


def _pair_deltas(
    weighted: Sequence[Weighted], replicates: int, *, reweigh: bool
) -> tuple[dict[tuple[int, int], list[float]], dict[tuple[int, int], NDArray[np.float64]]]:
    """Per model pair (low id first): [a_wins, b_wins, ties, comparisons], and the replicates'
    (R, 3) sums of the same three (each vote at weight x its Poisson(1) draws)."""
    deltas: dict[tuple[int, int], list[float]] = {}
    reps: dict[tuple[int, int], NDArray[np.float64]] = {}
    draws = (
        ranking.vote_weights([vote_id for _, _, vote_id in weighted], replicates)
        if replicates
        else None
    )
    for v, (vote_ranking, weight, _) in enumerate(weighted):
        for a_str, b_str, score in vote_ranking.pairs():
            a, b = int(a_str), int(b_str)
            low, high = (a, b) if a < b else (b, a)
            row = deltas.setdefault((low, high), [0.0, 0.0, 0.0, 0.0])
            row[3] += 0 if reweigh else 1
            column = 2 if score == 0.5 else 0 if a == low else 1
            row[column] += weight
            if draws is not None:
                rep = reps.setdefault((low, high), np.zeros((replicates, 3)))
                rep[:, column] += weight * draws[v]
    return deltas, reps


def _replicates_of(blob: bytes | memoryview | None, replicates: int) -> NDArray[np.float64]:
    data = bytes(blob or b"")
    if not data:
        return np.zeros((replicates, 3))
    return np.frombuffer(data, dtype="<f8").reshape(replicates, 3).copy()


def _add_pairs_many(
    arena_id: int,
    weighted: Iterable[Weighted],
    sign: int,
    *,
    reweigh: bool = False,
    replicates: int = 0,
) -> None:
    """Add (sign=1) or remove (sign=-1) votes' outcomes, each at its weight: summed first,
    then one UPDATE per model pair. ``reweigh``: the votes are counted already and only their
    weight changes (by the weights given): the comparison counts stay. ``replicates``: the
    arena's tallies keep that many vote-level bootstrap replicates (``ArenaTally.replicates``),
    moved with the counts (the caller holds the tally lock, so read-modify-write is safe)."""
    deltas, reps = _pair_deltas(list(weighted), replicates, reweigh=reweigh)
    if not deltas:
        return
    # Read the pairs' rows, then write every pair in one upsert (new pairs inserted, the others
    # set to their sums): two statements whatever the number of pairs, where an UPDATE per pair
    # cost the aggregator most of its time.
    lows, highs = {low for low, _ in deltas}, {high for _, high in deltas}
    columns = ("model_a_id", "model_b_id", "a_wins", "b_wins", "ties", "comparisons", "replicates")
    stored = {
        (row[0], row[1]): row[2:]
        for row in PairTally.objects.filter(
            arena_id=arena_id, model_a_id__in=lows, model_b_id__in=highs
        ).values_list(*columns)
        if (row[0], row[1]) in deltas
    }
    rows = []
    for (low, high), (a_wins, b_wins, ties, n) in sorted(deltas.items()):
        old_a, old_b, old_ties, old_n, blob = stored.get((low, high), (0.0, 0.0, 0.0, 0, b""))
        row = PairTally(
            arena_id=arena_id,
            model_a_id=low,
            model_b_id=high,
            a_wins=old_a + sign * a_wins,
            b_wins=old_b + sign * b_wins,
            ties=old_ties + sign * ties,
            comparisons=old_n + sign * int(n),
            replicates=bytes(blob or b""),
        )
        if replicates:
            now = _replicates_of(blob, replicates) + sign * reps[low, high]
            row.replicates = now.astype("<f8").tobytes()
        rows.append(row)
    PairTally.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["arena", "model_a", "model_b"],
        update_fields=["a_wins", "b_wins", "ties", "comparisons", "replicates"],
    )


def replicates_rebuild(*, arena_id: int, batch: int = 20_000) -> int:
    """Build the arena's vote-level bootstrap replicates from its vote log (every tallied,
    counted vote at its voter's weight), under the tally lock; returns the votes read.

    Needed once per arena (tallies from before replicates existed, ``ArenaTally.replicates``
    0); after that the aggregator, exclusions, restores and trust changes keep them current.
    Reads the whole log (about 30 us a vote) while drains of the arena wait.
    """
    with transaction.atomic():
        tally = _locked_tally(arena_id)
        pairs = list(PairTally.objects.filter(arena_id=arena_id).order_by("pk"))
        players = sorted({p.model_a_id for p in pairs} | {p.model_b_id for p in pairs})
        counts = ranking.PairCounts([str(m) for m in players], replicates=REPLICATES)
        weights = dict(
            VoterTrust.objects.filter(arena_id=arena_id).values_list("voter_id", "weight")
        )
        floor, read, chunk = trust_floor(), 0, []
        tallied = counted_votes(arena_id=arena_id).filter(pending__isnull=True)
        for pk, groups, is_partial, voter_id in tallied.values_list(
            "pk", "ranking", "is_partial", "voter_id"
        ).iterator(chunk_size=batch):
            ranked = ranking.Ranking(
                tuple(tuple(str(m) for m in g) for g in groups),
                partial=bool(is_partial) and len(groups) > 1,
            )
            chunk.append((ranked, weights.get(voter_id, floor), pk))
            if len(chunk) >= batch:
                read += _replicates_add(counts, chunk)
                chunk = []
        read += _replicates_add(counts, chunk)
        index = {m: i for i, m in enumerate(players)}
        for row in pairs:
            i, j = index[row.model_a_id], index[row.model_b_id]
            rep = np.stack(
                [counts.rep_wins[:, i, j], counts.rep_wins[:, j, i], counts.rep_ties[:, i, j]],
                axis=1,
            )
            row.replicates = rep.astype("<f8").tobytes()
        PairTally.objects.bulk_update(pairs, ["replicates"], batch_size=500)
        tally.replicates = REPLICATES
        tally.save(update_fields=["replicates", "updated_at"])
    return read


def _replicates_add(counts: ranking.PairCounts, chunk: list[Weighted]) -> int:
    known = [c for c in chunk if all(p in counts for p in c[0].players)]
    if known:
        counts.add_many([c[0] for c in known], [c[1] for c in known], [c[2] for c in known])
    return len(chunk)


# SQLite caps a statement at 32,766 parameters: long id lists are sent in chunks.
IN_CHUNK = 10_000


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]


def _excluded_ids(ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids):
        found |= set(VoteExclusion.objects.filter(vote__in=chunk).values_list("vote_id", flat=True))
    return found


def tally_defer(*, vote: Vote) -> None:
    """Queue a new vote for the aggregator; call inside the vote's transaction.

    Votes on named battles never count and are not queued. Once the transaction commits the
    aggregator is asked to drain the arena (see ``TALLY_DRAIN_SENDER``).
    """
    if vote.is_named:
        return
    PendingVote.objects.create(vote=vote, arena_id=vote.arena_id)
    tally_drain_after_commit(arena_id=vote.arena_id)


def tally_drain_after_commit(*, arena_id: int) -> None:
    """Ask the aggregator to drain the arena once the current transaction commits (at once
    with ``TALLY_DRAIN_ON_COMMIT`` off): the request that queued a vote calls this."""
    if settings.TALLY_DRAIN_ON_COMMIT:
        transaction.on_commit(lambda: tally_drain_request(arena_id=arena_id))
    else:
        tally_drain_request(arena_id=arena_id)


def _drain_key(arena_id: int) -> str:
    return f"arena:tally-drain:{arena_id}"


def tally_drain_request(*, arena_id: int) -> bool:
    """Ask the aggregator to drain the arena, unless a request of the last
    ``TALLY_DRAIN_DEBOUNCE_S`` seconds is still waiting; returns whether one was sent.

    The sender runs the drain no sooner than that window after sending (the Celery sender
    sends it with that countdown), so it takes every vote that found the request waiting; the
    first vote after the window sends the next. With the cache down every commit sends one;
    with the broker down too, beat's ``tallies_drain_all`` catches up.
    """
    return _send_debounced(
        key=_drain_key(arena_id),
        window_s=settings.TALLY_DRAIN_DEBOUNCE_S,
        sender=settings.TALLY_DRAIN_SENDER,
        arena_id=arena_id,
        what="a tally drain",
        without_cache=True,
    )


def _send_debounced(
    *, key: str, window_s: int, sender: str, arena_id: int, what: str, without_cache: bool
) -> bool:
    """Call the function named ``sender`` with ``arena_id`` unless ``key`` shows a call within
    the last ``window_s``; returns whether it was called. With the cache unreachable it is
    called anyway when ``without_cache``. A failing sender (the broker is down) is logged: the
    request's caller must still answer, and beat catches up.

    The key holds the time the call was sent and lives ``window_s``: until then (less a quarter
    of the window, for clocks that differ between machines) every ask would be refused, so this
    process remembers that and asks the cache no more; most votes of a busy arena make no round
    trip here at all. (A drain is sent with that window as its countdown, so it takes every vote
    refused this way.)
    """
    if localcache.held(key):
        return False
    now = time.time()
    try:
        first = cache.add(key, now, timeout=window_s)
        sent_at = now if first else cache.get(key)
    except RedisError:
        first, sent_at = without_cache, None
    if window_s > 0 and isinstance(sent_at, float):
        localcache.hold(key, until=sent_at + 0.75 * window_s)
    if not first:
        return False
    try:
        import_string(sender)(arena_id=arena_id)
    except Exception:
        localcache.release(key)
        logger.warning("could not ask for %s of arena %s", what, arena_id, exc_info=True)
        return False
    return True


# How many pending votes one drain transaction applies (the tally lock is held that long).
DRAIN_BATCH = 2000


@dataclass(frozen=True)
class DrainResult:
    counted: int  # applied to the tallies
    excluded: int  # kept out at once: their voter's votes are excluded in this arena
    replayed: int  # votes replayed to put the online ratings back in vote order (0: not needed)
    settling: bool = False  # votes younger than TALLY_SETTLE_S were left for the next drain

    @property
    def drained(self) -> int:
        return self.counted + self.excluded


def tallies_drain_requested(*, arena_id: int) -> DrainResult:
    """The task behind ``tally_drain_request``: drain, then refit the matchmaker's beliefs for
    the battles to come if the counts changed since they were cached (by this drain, or by a
    rebuild's drain, an exclusion or a replay, which drop the cached beliefs)."""
    result = tallies_drain(arena_id=arena_id)
    if _beliefs_cached(arena_id=arena_id) is None:
        matchmaker_beliefs_refresh(arena_id=arena_id)
    if result.settling:
        # The votes left behind need a drain: the one already waiting (a vote sent it) takes
        # them, else this request sends one. (Sent past the debounce, every drain would start a
        # chain of its own.)
        tally_drain_request(arena_id=arena_id)
    return result


def tallies_drain(*, arena_id: int, batch: int = DRAIN_BATCH) -> DrainResult:
    """Apply the arena's pending votes to its tallies, in id order; the aggregator's one step.

    Each batch is one transaction under the tally lock (one drainer per arena at a time; votes
    do not wait for it). Votes younger than ``TALLY_SETTLE_S`` wait for the next drain: on
    PostgreSQL a vote's id is handed out before it commits, and a vote applied before an older
    one commits puts the online ratings out of vote order (a full replay fixes that; waiting
    makes it rare). Afterwards the online ratings are replayed if they are stale.
    """
    counted = excluded = 0
    while True:
        with transaction.atomic():
            tally = _locked_tally(arena_id)
            step = _drain_batch(tally, batch, settle_s=float(settings.TALLY_SETTLE_S))
        counted, excluded = counted + step.counted, excluded + step.excluded
        if step.counted + step.excluded < batch:
            break
    replayed = 0
    if tally.ratings_stale:  # as the last batch left it, under the lock
        replayed = ratings_replay(arena_id=arena_id)
    elif counted:
        _beliefs_drop(arena_id=arena_id)
    return DrainResult(
        counted=counted, excluded=excluded, replayed=replayed, settling=step.settling
    )


def tallies_drain_all() -> dict[int, DrainResult]:
    """Drain every arena with pending votes or stale ratings (beat's safety net). An arena
    whose drain fails is logged and left for the next run; the others still drain."""
    arena_ids = set(PendingVote.objects.values_list("arena_id", flat=True).distinct())
    arena_ids |= set(
        ArenaTally.objects.filter(ratings_stale=True).values_list("arena_id", flat=True)
    )
    results = {}
    for arena_id in sorted(arena_ids):
        try:
            results[arena_id] = tallies_drain_requested(arena_id=arena_id)
        except Exception:
            logger.exception("draining the tallies of arena %s failed", arena_id)
    return results


class _Batch(NamedTuple):
    counted: int
    excluded: int
    settling: bool  # younger votes were left for the next drain


def _drain_batch(tally: ArenaTally, batch: int, *, settle_s: float = 0.0) -> _Batch:
    """One locked batch. Flags are read under the tally lock, the lock order of scans and
    reviews, so a review deciding on a voter now is wholly before or after. With ``settle_s``,
    only votes below the first one younger than that are taken."""
    arena_id = tally.arena_id
    pending = PendingVote.objects.filter(arena_id=arena_id)
    young = None
    if settle_s > 0:
        cutoff = timezone.now() - timedelta(seconds=settle_s)
        young = pending.filter(vote__created_at__gt=cutoff).aggregate(low=Min("vote_id"))["low"]
        if young is not None:
            pending = pending.filter(vote_id__lt=young)
    ids = list(pending.order_by("vote_id").values_list("vote_id", flat=True)[:batch])
    if not ids:
        return _Batch(0, 0, young is not None)
    votes = list(
        Vote.objects.filter(pk__in=ids)
        .order_by("pk")
        .only("pk", "voter_id", "ranking", "is_partial")
    )
    flags = {
        f.voter_id: f
        for f in VoterFlag.objects.filter(
            arena_id=arena_id, voter_id__in={v.voter_id for v in votes}
        )
    }
    excluding = {voter_id for voter_id, flag in flags.items() if flag.is_excluding}
    kept_out = [v for v in votes if v.voter_id in excluding]
    counted = [v for v in votes if v.voter_id not in excluding]
    VoteExclusion.objects.bulk_create(_voter_exclusion(v, flags[v.voter_id]) for v in kept_out)
    if counted:
        weights = voter_weights(
            arena_id=arena_id, voter_ids=(v.voter_id for v in counted), create=True
        )
        replay = _Replay.resume(arena_id, sorted({int(p) for v in counted for p in _players(v)}))
        for vote in counted:
            replay.add(vote.pk, vote.ranking, vote.is_partial, weights[vote.voter_id])
        replay.store()
        _add_pairs_many(
            arena_id,
            ((_ranking_of(v), weights[v.voter_id], v.pk) for v in counted),
            +1,
            replicates=tally.replicates,
        )
        tally.digest = f"{(int(tally.digest, 16) + replay.hash_sum) % _DIGEST_MOD:032x}"
        tally.votes += len(counted)
        if counted[0].pk < tally.applied_through:
            tally.ratings_stale = True  # committed after a later vote was applied
        tally.applied_through = max(tally.applied_through, counted[-1].pk)
    for chunk in _chunks(ids):
        PendingVote.objects.filter(vote_id__in=chunk).delete()
    tally.save(update_fields=["votes", "digest", "applied_through", "ratings_stale", "updated_at"])
    return _Batch(len(counted), len(kept_out), young is not None)


def _players(vote: Vote) -> list[int]:
    return [int(m) for group in vote.ranking for m in group]


def _voter_exclusion(vote: Vote, flag: VoterFlag) -> VoteExclusion:
    reasons = list(flag.reasons) or ["admin"]
    return VoteExclusion(
        vote=vote, reason=f"voter excluded: {', '.join(reasons)}"[:200], reasons=reasons
    )


def _skills_step(
    vote_ranking: ranking.Ranking,
    *,
    mu: dict[str, float],
    sigma: dict[str, float],
    weight: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """The Weng-Lin (Plackett-Luce) update of one vote at ``weight``: new (mu, sigma) per
    model shown."""
    shown = list(vote_ranking.players)
    group_of = {p: gi for gi, group in enumerate(vote_ranking.groups) for p in group}
    old_mu, old_sigma = np.array([mu[p] for p in shown]), np.array([sigma[p] for p in shown])
    new_mu, new_sigma = ranking.weng_lin_update(
        old_mu,
        old_sigma,
        [group_of[p] for p in shown],
        partial=vote_ranking.partial,
        beta=BETA,
    )
    if weight != 1.0:
        new_mu, new_sigma = ranking.weighted_step(old_mu, old_sigma, new_mu, new_sigma, weight)
    return {p: (float(new_mu[i]), float(new_sigma[i])) for i, p in enumerate(shown)}


def _digest_step(digest: str, vote_id: int, sign: int, weight: float = 1.0) -> str:
    return f"{(int(digest, 16) + sign * _vote_hash(vote_id, weight)) % _DIGEST_MOD:032x}"


def votes_exclude(
    *, arena_id: int, votes: Sequence[Vote], reason: str, reasons: Sequence[str] = ()
) -> int:
    """Take counted votes of one arena out of the leaderboards; returns how many were taken.

    Votes already excluded are skipped. The pair counts and the vote-set digest drop them at
    once (a vote still pending is just dropped from the aggregator's queue); the online ratings
    keep their effect until ``ratings_replay`` (an online update cannot be undone exactly),
    which the fraud scan and the review actions call after changing votes, and the next drain
    runs if they did not (the tally is marked ``ratings_stale``).
    """
    if not votes:
        return 0
    with transaction.atomic():
        tally = _locked_tally(arena_id)
        already = _excluded_ids([v.pk for v in votes])
        fresh = [v for v in votes if v.pk not in already and not v.is_named]
        if not fresh:
            return 0
        VoteExclusion.objects.bulk_create(
            (VoteExclusion(vote=v, reason=reason[:200], reasons=list(reasons)) for v in fresh),
            batch_size=1000,
        )
        # A vote the aggregator has not applied yet is only taken out of its queue.
        pending = _pending_ids([v.pk for v in fresh])
        for chunk in _chunks(sorted(pending)):
            PendingVote.objects.filter(vote_id__in=chunk).delete()
        tallied = [v for v in fresh if v.pk not in pending]
        weights = voter_weights(arena_id=arena_id, voter_ids=(v.voter_id for v in tallied))
        for vote in tallied:
            tally.digest = _digest_step(tally.digest, vote.pk, -1, weights[vote.voter_id])
        _add_pairs_many(
            arena_id,
            ((_ranking_of(v), weights[v.voter_id], v.pk) for v in tallied),
            -1,
            replicates=tally.replicates,
        )
        tally.votes -= len(tallied)
        tally.ratings_stale = tally.ratings_stale or bool(tallied)
        tally.save(update_fields=["votes", "digest", "ratings_stale", "updated_at"])
    if tallied:
        _beliefs_drop(arena_id=arena_id)
    return len(fresh)


def _pending_ids(ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids):
        found |= set(PendingVote.objects.filter(vote__in=chunk).values_list("vote_id", flat=True))
    return found


def vote_exclude(*, vote: Vote, reason: str, reasons: Sequence[str] = ()) -> bool:
    """Take one vote out of the leaderboards; false if it was already excluded."""
    return votes_exclude(arena_id=vote.arena_id, votes=[vote], reason=reason, reasons=reasons) == 1


def votes_restore(*, arena_id: int, votes: Sequence[Vote]) -> int:
    """Count excluded votes again (a reviewer cleared their voter); returns how many."""
    if not votes:
        return 0
    with transaction.atomic():
        tally = _locked_tally(arena_id)
        excluded = _excluded_ids([v.pk for v in votes])
        back = [v for v in votes if v.pk in excluded]
        if not back:
            return 0
        for chunk in _chunks([v.pk for v in back]):
            VoteExclusion.objects.filter(vote__in=chunk).delete()
        weights = voter_weights(arena_id=arena_id, voter_ids=(v.voter_id for v in back))
        for vote in back:
            tally.digest = _digest_step(tally.digest, vote.pk, +1, weights[vote.voter_id])
        _add_pairs_many(
            arena_id,
            ((_ranking_of(v), weights[v.voter_id], v.pk) for v in back),
            +1,
            replicates=tally.replicates,
        )
        tally.votes += len(back)
        tally.ratings_stale = True
        tally.save(update_fields=["votes", "digest", "ratings_stale", "updated_at"])
    _beliefs_drop(arena_id=arena_id)
    return len(back)


def voters_trust_set(*, arena_id: int, trust: dict[int, float]) -> int:
    """Give voters new weights (earned trust) and move their tallied votes to it.

    The pair tallies and the digest move at once; the online ratings are marked stale for
    ``ratings_replay``. Returns how many tallied votes changed weight.
    """
    if not trust:
        return 0
    with transaction.atomic():
        tally = _locked_tally(arena_id)
        rows: dict[int, VoterTrust] = {}
        for chunk in _chunks(sorted(trust)):
            rows |= {
                r.voter_id: r
                for r in VoterTrust.objects.filter(arena_id=arena_id, voter_id__in=chunk)
            }
        floor = trust_floor()
        current = {v: rows[v].weight if v in rows else floor for v in trust}
        changed = {v: float(w) for v, w in sorted(trust.items()) if w != current[v]}
        if not changed:
            return 0
        moved = 0
        tallied = counted_votes(arena_id=arena_id).filter(pending__isnull=True)
        for chunk in _chunks(list(changed)):
            votes = list(
                tallied.filter(voter_id__in=chunk).only("pk", "voter_id", "ranking", "is_partial")
            )
            for vote in votes:
                old, new = current[vote.voter_id], changed[vote.voter_id]
                tally.digest = _digest_step(tally.digest, vote.pk, -1, old)
                tally.digest = _digest_step(tally.digest, vote.pk, +1, new)
            _add_pairs_many(
                arena_id,
                ((_ranking_of(v), changed[v.voter_id] - current[v.voter_id], v.pk) for v in votes),
                +1,
                reweigh=True,
                replicates=tally.replicates,
            )
            moved += len(votes)
        updated = [rows[v] for v in changed if v in rows]
        for row in updated:
            row.weight, row.updated_at = changed[row.voter_id], timezone.now()
        VoterTrust.objects.bulk_update(updated, ["weight", "updated_at"], batch_size=1000)
        VoterTrust.objects.bulk_create(  # voters none of whose votes are tallied yet
            [
                VoterTrust(arena_id=arena_id, voter_id=v, weight=w)
                for v, w in changed.items()
                if v not in rows
            ],
            batch_size=1000,
        )
        if moved:
            tally.ratings_stale = True
            tally.save(update_fields=["digest", "ratings_stale", "updated_at"])
    if moved:
        _beliefs_drop(arena_id=arena_id)
    return moved


def counted_votes(*, arena_id: int) -> QuerySet[Vote]:
    """The arena's votes that count on its leaderboards, oldest first."""
    return Vote.objects.filter(arena_id=arena_id, is_named=False, exclusion__isnull=True).order_by(
        "pk"
    )


class _Replay:
    """Online ELO and Weng-Lin ratings applied vote by vote, in the order given.

    ``_Replay(players)`` starts from the priors (a full replay); ``_Replay.resume`` from the
    stored ratings of some models (the aggregator's step). Both apply the same steps.
    """

    def __init__(self, players: list[str]) -> None:
        self.players = players
        self.elo = ranking.EloRater(players, **PARAMS["elo"]) if players else None
        self.mu = {p: 25.0 for p in players}
        self.sigma = {p: 25.0 / 3.0 for p in players}
        self.votes = dict.fromkeys(players, 0)
        self.replayed = 0
        self.hash_sum = 0  # of every vote seen: checked against the tally's digest
        self.high = 0  # the highest vote id seen
        self.rows: list[ModelRating] = []

    @classmethod
    def resume(cls, arena_id: int, model_ids: Sequence[int]) -> _Replay:
        """Continue from the stored ratings of ``model_ids`` (rows created and locked here)."""
        ModelRating.objects.bulk_create(
            [ModelRating(arena_id=arena_id, model_id=m) for m in model_ids], ignore_conflicts=True
        )
        rows = list(
            ModelRating.objects.select_for_update()
            .filter(arena_id=arena_id, model_id__in=model_ids)
            .order_by("pk")  # a fixed lock order
        )
        replay = cls([str(r.model_id) for r in rows])
        if replay.elo is not None:
            replay.elo.ratings = np.array([r.elo for r in rows])
        for row in rows:
            p = str(row.model_id)
            replay.mu[p], replay.sigma[p], replay.votes[p] = row.mu, row.sigma, row.votes
        replay.rows = rows
        return replay

    def add(self, vote_id: int, vote_groups: Any, is_partial: bool, weight: float = 1.0) -> None:
        self.hash_sum = (self.hash_sum + _vote_hash(vote_id, weight)) % _DIGEST_MOD
        self.high = max(self.high, vote_id)
        groups = tuple(tuple(str(m) for m in group) for group in vote_groups)
        vote_ranking = ranking.Ranking(groups, partial=bool(is_partial) and len(groups) > 1)
        shown = list(vote_ranking.players)
        if self.elo is None or any(p not in self.votes for p in shown):
            return  # a model no longer in the arena: nothing to replay into
        self.elo.record(vote_ranking, weight)
        step = _skills_step(vote_ranking, mu=self.mu, sigma=self.sigma, weight=weight)
        for p, (mu, sigma) in step.items():
            self.mu[p], self.sigma[p] = mu, sigma
            self.votes[p] += 1
        self.replayed += 1

    def feed(self, votes: QuerySet[Vote], batch: int, weights: dict[int, float]) -> None:
        """Add ``votes`` in order, each at its voter's weight (``VoterTrust``)."""
        floor = trust_floor()
        for pk, vote_groups, is_partial, voter_id in votes.values_list(
            "pk", "ranking", "is_partial", "voter_id"
        ).iterator(chunk_size=batch):
            self.add(pk, vote_groups, is_partial, weights.get(voter_id, floor))

    def store(self, rows: list[ModelRating] | None = None) -> None:
        """Write the ratings into ``rows`` (default: the rows ``resume`` locked)."""
        rows = self.rows if rows is None else rows
        index = {p: i for i, p in enumerate(self.players)}
        for row in rows:
            p = str(row.model_id)
            elo = self.elo
            row.elo = float(elo.ratings[index[p]]) if elo else PARAMS["elo"]["init"]
            row.mu, row.sigma, row.votes = self.mu[p], self.sigma[p], self.votes[p]
        # One upsert of rows that exist (ON CONFLICT ... DO UPDATE): one statement, where
        # bulk_update's CASE per column costs a compile as large as the batch.
        ModelRating.objects.bulk_create(
            [
                ModelRating(
                    arena_id=r.arena_id,
                    model_id=r.model_id,
                    elo=r.elo,
                    mu=r.mu,
                    sigma=r.sigma,
                    votes=r.votes,
                )
                for r in rows
            ],
            update_conflicts=True,
            unique_fields=["arena", "model"],
            update_fields=["elo", "mu", "sigma", "votes"],
        )


def ratings_replay(*, arena_id: int, batch: int = 5000) -> int:
    """Recompute the online ELO and Bayesian ratings from the tallied votes, in vote order.

    Needed after votes were excluded or restored (online updates cannot be undone one by one)
    and after the aggregator applied a vote that committed late (``ratings_stale``). Returns
    the number of votes replayed. Votes still pending are left to the aggregator.

    The long part runs without the arena's tally lock, so voting and draining go on meanwhile
    (about 70 us per vote: seconds at 100k votes). Then, under the lock, it replays the votes
    tallied since and checks that the votes it replayed are exactly the counted set (the sum of
    their hashes equals the tally's digest); if the set changed otherwise meanwhile it replays
    again under the lock. An ELO snapshot built from the ratings before the replay is dropped.
    """
    ModelRating.objects.bulk_create(  # a restored vote may be a model's first
        [
            ModelRating(arena_id=arena_id, model_id=pk)
            for pk in GenerativeModel.objects.filter(arenas=arena_id).values_list("pk", flat=True)
        ],
        ignore_conflicts=True,
    )

    def start() -> _Replay:
        model_ids = ModelRating.objects.filter(arena_id=arena_id).values_list("model_id", flat=True)
        return _Replay([str(pk) for pk in sorted(set(model_ids))])

    def weights() -> dict[int, float]:
        return dict(VoterTrust.objects.filter(arena_id=arena_id).values_list("voter_id", "weight"))

    tallied = counted_votes(arena_id=arena_id).filter(pending__isnull=True)
    high = Vote.objects.filter(arena_id=arena_id).aggregate(high=Max("pk"))["high"] or 0
    replay = start()
    replay.feed(tallied.filter(pk__lte=high), batch, weights())
    with transaction.atomic():
        tally = _locked_tally(arena_id)
        replay.feed(tallied.filter(pk__gt=high), batch, weights())
        rows = list(ModelRating.objects.filter(arena_id=arena_id).order_by("pk"))
        models_changed = {str(r.model_id) for r in rows} != set(replay.players)
        if models_changed or replay.hash_sum != int(tally.digest, 16):
            # The counted set (or the arena's models) changed meanwhile: replay it all, locked.
            replay = start()
            replay.feed(tallied, batch, weights())
        replay.store(rows)
        tally.ratings_stale = False
        # Every tallied vote is in the ratings now: a pending one below this came late.
        tally.applied_through = max(tally.applied_through, replay.high)
        tally.save(update_fields=["ratings_stale", "applied_through", "updated_at"])
        # An ELO snapshot is keyed by the digest but made from the online ratings: one built
        # for this digest before the replay holds the old ratings.
        LeaderboardSnapshot.objects.filter(
            arena_id=arena_id, method="elo", vote_set_hash=tally.digest
        ).delete()
    _beliefs_drop(arena_id=arena_id)
    return replay.replayed


# --- rebuild ----------------------------------------------------------------------------------


def arena_pair_counts(
    *, arena: Arena, model_ids: Sequence[int], replicates: int = 0
) -> ranking.PairCounts:
    """The arena's aggregated counts as a ``ranking.PairCounts`` over ``model_ids`` (as str),
    with ``replicates`` vote-level bootstrap replicates (the tallies must keep them)."""
    counts = ranking.PairCounts([str(pk) for pk in model_ids], replicates=replicates)
    index = {pk: i for i, pk in enumerate(model_ids)}
    fields = ["model_a_id", "model_b_id", "a_wins", "b_wins", "ties"]
    for row in PairTally.objects.filter(arena=arena).values_list(
        *fields, *(["replicates"] if replicates else [])
    ):
        a, b, a_wins, b_wins, ties = row[:5]
        if a in index and b in index:
            # Weighted sums drift by float rounding as votes come and go: dust is zero.
            a_wins, b_wins, ties = (x if x > 1e-9 else 0.0 for x in (a_wins, b_wins, ties))
            i, j = index[a], index[b]
            counts.wins[i, j] += a_wins
            counts.wins[j, i] += b_wins
            counts.ties[i, j] += ties
            counts.ties[j, i] += ties
            if replicates:
                rep = _replicates_of(row[5], replicates)
                rep[rep < 1e-9] = 0.0
                counts.rep_wins[:, i, j] += rep[:, 0]
                counts.rep_wins[:, j, i] += rep[:, 1]
                counts.rep_ties[:, i, j] += rep[:, 2]
                counts.rep_ties[:, j, i] += rep[:, 2]
    for model_id, votes in ModelRating.objects.filter(arena=arena).values_list("model_id", "votes"):
        if model_id in index:
            counts.votes[index[model_id]] = votes
    return counts


def _standing_dict(row: ranking.Standing, models: dict[int, GenerativeModel]) -> dict[str, Any]:
    model = models[int(row.player)]
    games = row.wins + row.losses + row.ties
    return {
        "model_id": model.pk,
        "model": model.name,
        "slug": model.slug,
        "organisation": model.organisation,
        "rank": row.rank,
        "score": round(row.score, 2),
        "low": round(row.low, 2),
        "high": round(row.high, 2),
        "votes": row.votes,
        "wins": row.wins,
        "losses": row.losses,
        "ties": row.ties,
        "win_rate": round((row.wins + 0.5 * row.ties) / games, 4) if games else None,
        "provisional": bool(row.provisional),
    }


def _rater(method: str, counts: ranking.PairCounts, elo: dict[str, float]) -> ranking.Rater:
    """The rater of ``method`` over aggregated counts (ELO: the online ratings), as
    ``python -m ranking.replay`` builds it from an export. Counts without vote-level
    replicates (the fraud review's what-if boards) get the pair bootstrap."""
    online = [elo.get(p, PARAMS["elo"]["init"]) for p in counts.players]
    params = PARAMS[method]
    if method == "bradley_terry" and counts.replicates != params["rounds"]:
        params = {**params, "resample": "poisson", "bias_reduction": "none"}
    return ranking_replay.rater_for(method, counts, params, online if method == "elo" else None)


def _standings(
    method: str, counts: ranking.PairCounts, elo: dict[str, float]
) -> list[ranking.Standing]:
    return _rater(method, counts, elo).standings()


def _settle_rows(
    *, arena: Arena, rater: ranking.BayesianRater, standings: list[dict[str, Any]]
) -> None:
    """Add "votes to settle" to the Bayesian standings (``ranking.settle``): per model, votes
    until it is separated from both neighbours at 95% (``votes_to_settle``) and from the one
    above (``settle_above``); None: not in sight. Rates are the matchmaker's, at the arena's
    largest battle size; the fit is the one the standings came from."""
    from arena.sampling import arena_sampling  # sampling asks this module for the matchmaker

    sampling = arena_sampling(arena=arena)
    if not sampling.sizes:
        return
    size = sampling.sizes[-1]
    counts = rater.counts
    share = np.array([size.rates.get(int(p), 0.0) / size.k for p in counts.players])
    score, _ = rater.posterior()
    estimate = ranking.votes_to_settle(
        score, rater.covariance(), counts.votes.astype(float), share, size.k
    )
    index = {int(p): i for i, p in enumerate(counts.players)}
    for row in standings:
        i = index[row["model_id"]]
        row["votes_to_settle"] = estimate.own[i]
        row["settle_above"] = estimate.above[i]


def top_votes_to_settle(standings: list[dict[str, Any]], top: int = 10) -> int | None:
    """Votes until the order of the board's ``top`` places is settled at 95% (0: it is), from
    a Bayesian snapshot's rows (best first); None when some gap is not in sight or the
    snapshot predates the estimate."""
    pairs = [row.get("settle_above", -1) for row in standings[1:top]]
    if any(p is None or p == -1 for p in pairs):
        return None
    return max((int(p) for p in pairs), default=0)


@dataclass(frozen=True)
class RebuildResult:
    snapshots: list[LeaderboardSnapshot]
    created: int


def leaderboard_rebuild(*, arena: Arena, methods: Iterable[str] = METHODS) -> RebuildResult:
    """Snapshots of every method for the arena's counted votes (reused if already built).

    Votes still pending are drained into the tallies first, so the snapshot holds them too.
    """
    tallies_drain(arena_id=arena.pk)
    ArenaTally.objects.get_or_create(arena=arena)
    if not ArenaTally.objects.filter(arena=arena, replicates=REPLICATES).exists():
        replicates_rebuild(arena_id=arena.pk)  # once: tallies from before replicates existed
    models = {m.pk: m for m in GenerativeModel.objects.filter(arenas=arena).order_by("pk")}
    model_ids = sorted(models)
    with transaction.atomic():
        tally = ArenaTally.objects.get(arena=arena)
        counts = arena_pair_counts(arena=arena, model_ids=model_ids, replicates=REPLICATES)
        elo = {
            str(m): e
            for m, e in ModelRating.objects.filter(arena=arena).values_list("model_id", "elo")
        }
    snapshots, created = [], 0
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"methods: unknown method {method!r}; use {', '.join(METHODS)}")
        # ELO is order-dependent: its snapshot is the online state, so it is keyed by the digest too.
        existing = LeaderboardSnapshot.objects.filter(
            arena=arena, method=method, code_version=LEADERBOARD_VERSION, vote_set_hash=tally.digest
        ).first()
        if existing is not None:
            snapshots.append(existing)
            continue
        rater = _rater(method, counts, elo)
        standings = [_standing_dict(r, models) for r in rater.standings()] if model_ids else []
        if isinstance(rater, ranking.BayesianRater) and len(standings) > 1:
            _settle_rows(arena=arena, rater=rater, standings=standings)
        snapshot, was_created = LeaderboardSnapshot.objects.get_or_create(
            arena=arena,
            method=method,
            code_version=LEADERBOARD_VERSION,
            vote_set_hash=tally.digest,
            defaults={"params": PARAMS[method], "votes": tally.votes, "standings": standings},
        )
        snapshots.append(snapshot)
        created += was_created
    return RebuildResult(snapshots=snapshots, created=created)


# Snapshot history stays bounded: everything from the last hour, then the newest snapshot of each
# hour for a week, then the newest of each day.
KEEP_ALL_S = 3600
KEEP_HOURLY_S = 7 * 86400


def _thinning_bucket(age_s: float, created: datetime) -> tuple[str, str] | None:
    """The bucket a snapshot competes in (its newest one is kept); ``None``: always kept."""
    if age_s < KEEP_ALL_S:
        return None
    if age_s < KEEP_HOURLY_S:
        return "hour", created.strftime("%Y-%m-%d %H")
    return "day", created.strftime("%Y-%m-%d")


def leaderboard_snapshots_thin(*, arena: Arena, now: datetime | None = None) -> int:
    """Delete the snapshots history no longer needs; returns how many were deleted.

    Per method and code version: every snapshot of the last hour, the newest of each hour for a
    week, the newest of each day before that; the newest snapshot of each method is always kept.
    """
    now = now or timezone.now()
    rows = LeaderboardSnapshot.objects.filter(arena=arena).order_by("-created_at", "-pk")
    seen: set[tuple[Any, ...]] = set()
    doomed: list[int] = []
    for pk, method, version, created in rows.values_list(
        "pk", "method", "code_version", "created_at"
    ):
        series = (method, version)
        bucket = _thinning_bucket((now - created).total_seconds(), created)
        key = (*series, *bucket) if bucket is not None else None
        if series not in seen:
            seen.add(series)  # the newest of its method: the current leaderboard
        elif key is not None and key in seen:
            doomed.append(pk)
            continue
        if key is not None:
            seen.add(key)
    for chunk in _chunks(doomed):
        LeaderboardSnapshot.objects.filter(pk__in=chunk).delete()
    return len(doomed)


def _newest_snapshot(*, arena: Arena, method: str) -> LeaderboardSnapshot | None:
    return (
        LeaderboardSnapshot.objects.filter(
            arena=arena, method=method, code_version=LEADERBOARD_VERSION
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def arena_digest(*, arena: Arena) -> str:
    """The vote-set digest of the arena's counted votes now (one indexed read)."""
    digest = ArenaTally.objects.filter(arena=arena).values_list("digest", flat=True).first()
    return digest or "0" * 32


def leaderboard_rebuild_request(*, arena: Arena) -> bool:
    """Ask for a rebuild of the arena's leaderboards, at most once per debounce window.

    The request goes through the function named by ``LEADERBOARD_REBUILD_SENDER`` (``config``
    wires in a Celery task on the light queue), so no reader ever pays for a fit. Returns whether
    a request was sent; with the cache unreachable none is (the beat task rebuilds anyway).
    """
    return _send_debounced(
        key=f"arena:lb-rebuild:{arena.pk}",
        window_s=settings.LEADERBOARD_REBUILD_DEBOUNCE_S,
        sender=settings.LEADERBOARD_REBUILD_SENDER,
        arena_id=arena.pk,
        what="a leaderboard rebuild",
        without_cache=False,
    )


def leaderboard_rebuild_by_id(*, arena_id: int) -> int:
    """Rebuild one arena's leaderboards now (the task behind ``leaderboard_rebuild_request``);
    returns how many snapshots were created."""
    arena = Arena.objects.filter(pk=arena_id).first()
    return leaderboard_rebuild(arena=arena).created if arena is not None else 0


@dataclass(frozen=True)
class CurrentLeaderboard:
    """What a reader is served: the newest snapshot, and whether newer votes are not in it yet."""

    snapshot: LeaderboardSnapshot
    stale: bool


def leaderboard_current(*, arena: Arena, method: str) -> CurrentLeaderboard:
    """The read side's one way to an arena's standings by ``method``: its newest snapshot.

    Never fits on the reader's path. When votes arrived since the snapshot (its vote-set hash
    differs from the tally's), a debounced rebuild is requested and the reader gets the newest
    snapshot there is, marked ``stale``. Before any snapshot exists, an unsaved empty one.
    """
    return leaderboards_current(arena=arena, methods=[method])[0]


def leaderboards_current(
    *, arena: Arena, methods: Sequence[str] = METHODS
) -> list[CurrentLeaderboard]:
    """``leaderboard_current`` for several methods: one digest read and one rebuild request."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods: unknown method {unknown[0]!r}; use {', '.join(METHODS)}")
    digest = arena_digest(arena=arena)
    newest = {m: _newest_snapshot(arena=arena, method=m) for m in methods}
    stale = any(s is None or s.vote_set_hash != digest for s in newest.values())
    # (A sender that rebuilds at once, as the tests' does, leaves fresh snapshots behind.)
    if stale and leaderboard_rebuild_request(arena=arena):
        newest = {m: _newest_snapshot(arena=arena, method=m) or newest[m] for m in methods}
    out = []
    for method in methods:
        snapshot = newest[method] or _unbuilt_snapshot(arena=arena, method=method)
        out.append(CurrentLeaderboard(snapshot=snapshot, stale=snapshot.vote_set_hash != digest))
    return out


@dataclass(frozen=True)
class CurrentHead:
    """What a cached read needs to find its answer: the newest snapshot's id (None before the
    first rebuild) and whether votes arrived since it (see ``leaderboard_current``)."""

    snapshot_id: int | None
    stale: bool


def _head_read(arena_id: int, method: str) -> tuple[str, int | None, str]:
    quote = connection.ops.quote_name
    tally, snapshots = quote(ArenaTally._meta.db_table), quote(LeaderboardSnapshot._meta.db_table)
    newest = (
        f"FROM {snapshots} WHERE arena_id = %s AND method = %s AND code_version = %s "
        "ORDER BY created_at DESC, id DESC LIMIT 1"
    )
    sql = (
        f"SELECT (SELECT digest FROM {tally} WHERE arena_id = %s), "
        f"(SELECT id {newest}), (SELECT vote_set_hash {newest})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [arena_id] + [arena_id, method, LEADERBOARD_VERSION] * 2)
        digest, snapshot_id, vote_set_hash = cursor.fetchone()
    return digest or "0" * 32, snapshot_id, vote_set_hash or ""


def leaderboard_current_head(*, arena: Arena, method: str) -> CurrentHead:
    """``leaderboard_current`` without loading the snapshot: one query (the read side's cached
    answers are keyed by it; ``leaderboard_snapshot`` loads one on a miss). A stale snapshot
    asks for a rebuild, as ``leaderboard_current`` does."""
    if method not in METHODS:
        raise ValueError(f"method: unknown method {method!r}; use {', '.join(METHODS)}")
    digest, snapshot_id, vote_set_hash = _head_read(arena.pk, method)
    stale = snapshot_id is None or vote_set_hash != digest
    if stale and leaderboard_rebuild_request(arena=arena):
        digest, newer_id, vote_set_hash = _head_read(arena.pk, method)
        if newer_id is not None:
            snapshot_id, stale = newer_id, vote_set_hash != digest
    return CurrentHead(snapshot_id=snapshot_id, stale=stale)


def leaderboard_snapshot(
    *, arena: Arena, method: str, snapshot_id: int | None
) -> LeaderboardSnapshot:
    """The snapshot a head named (an unsaved empty one for None, or one thinned away since)."""
    found = (
        LeaderboardSnapshot.objects.filter(pk=snapshot_id, arena=arena).first()
        if snapshot_id is not None
        else None
    )
    return (
        found
        or _newest_snapshot(arena=arena, method=method)
        or _unbuilt_snapshot(arena=arena, method=method)
    )


def _unbuilt_snapshot(*, arena: Arena, method: str) -> LeaderboardSnapshot:
    """What a reader sees before the first rebuild: an unsaved, empty snapshot."""
    return LeaderboardSnapshot(
        arena=arena,
        method=method,
        params=PARAMS[method],
        code_version=LEADERBOARD_VERSION,
        vote_set_hash="",
        votes=0,
        standings=[],
        created_at=timezone.now(),
    )


def _beliefs_key(arena_id: int) -> str:
    return f"arena:beliefs:{arena_id}"


def _beliefs_fit(*, arena_id: int, model_ids: Sequence[int]) -> ranking.Beliefs:
    """The Bayesian MAP refit over the aggregated pair counts of ``model_ids`` (one fit)."""
    arena = Arena(pk=arena_id)
    rater = ranking.BayesianRater([str(pk) for pk in model_ids], **PARAMS["bayesian"])
    rater.counts = arena_pair_counts(arena=arena, model_ids=model_ids)
    rater.n_votes = int(rater.counts.votes.sum())
    return ranking.Beliefs.of(rater)


def matchmaker_beliefs_refresh(*, arena_id: int) -> ranking.Beliefs:
    """Fit the matchmaker's beliefs over all the arena's models and cache them for battles.

    The aggregator calls this after applying votes; a battle request only reads the cache
    (``matchmaker_for``), and fits only when the cache is empty, unreachable, or lacks a model.
    """
    return _beliefs_refit(arena_id=arena_id)[0]


def _beliefs_refit(*, arena_id: int) -> tuple[ranking.Beliefs, bool]:
    """``matchmaker_beliefs_refresh``, and whether the cache took the fit."""
    model_ids = sorted(GenerativeModel.objects.filter(arenas=arena_id).values_list("pk", flat=True))
    beliefs = _beliefs_fit(arena_id=arena_id, model_ids=model_ids)
    try:
        cache.set(_beliefs_key(arena_id), beliefs.to_dict(), timeout=None)
    except RedisError:
        logger.warning("could not cache the matchmaker beliefs of arena %s", arena_id)
        return beliefs, False
    return beliefs, True


def _beliefs_drop(*, arena_id: int) -> None:
    """The pair counts changed: the cached beliefs go, now and once the change commits (a battle
    between the two would cache a fit of the counts before it). The next drain task, or else
    the next battle, refits them."""

    def drop() -> None:
        with contextlib.suppress(RedisError):
            cache.delete(_beliefs_key(arena_id))

    drop()
    transaction.on_commit(drop)


def _beliefs_cached(*, arena_id: int) -> ranking.Beliefs | None:
    try:
        data = cache.get(_beliefs_key(arena_id))
    except RedisError:
        return None
    if data is None:
        return None
    try:
        return ranking.Beliefs.from_dict(data)
    except ValueError:
        return None


def matchmaker_for(
    *, arena: Arena, model_ids: Sequence[int], weights: dict[int, float], seed: int
) -> ranking.Matchmaker:
    """The arena's matchmaker over ``model_ids``: ranking's default (overlap sampling).

    Beliefs are the aggregator's cached MAP refit of the pair counts (a fit happens here only
    when the cache cannot answer; a process reads the cache at most once per
    ``ARENA_LOCAL_CACHE_S``); admin weights boost (>1) or damp (<1) a model. Stateless per
    request, so concurrent battle requests need no lock and still differ (each its own seed).
    """
    players = [str(pk) for pk in model_ids]
    # The cached beliefs are held per process for ARENA_LOCAL_CACHE_S too (priors for
    # matchmaking, which the aggregator refreshes about as often). A fit made here is held too
    # when the cache cannot take it: with Redis down a process fits once per window, not once
    # per battle.
    key = ("beliefs", arena.pk)
    held = localcache.cached(key, lambda: _beliefs_cached(arena_id=arena.pk))
    beliefs = held
    if beliefs is None or not beliefs.knows(players):
        beliefs, shared = _beliefs_refit(arena_id=arena.pk)
        if not shared or held is not None:  # (else the next battle reads the cache's copy)
            localcache.cached(key, lambda: beliefs, fresh=True)
        if not beliefs.knows(players):  # e.g. a model shown here that has left the arena
            beliefs = _beliefs_fit(arena_id=arena.pk, model_ids=model_ids)
    boosts = tuple(weights.get(pk, 1.0) for pk in model_ids)

    def build() -> tuple[ranking.Beliefs, ranking.Matchmaker]:
        matchmaker = ranking.make_matchmaker("default", beliefs.subset(players))
        for player, weight in zip(players, boosts, strict=True):
            if weight != 1.0:
                matchmaker.boost(player, weight)
        return beliefs, matchmaker

    if held is not beliefs:  # beliefs this process does not keep (yet): nor their matchmaker
        return build()[1].reseeded(seed)
    # The matchmaker over the kept beliefs is kept with them: a battle takes a reseeded copy
    # (its own random stream) instead of narrowing the beliefs and building one again.
    kept = ("matchmaker", arena.pk, tuple(players), boosts)
    built_on, matchmaker = localcache.cached(kept, build)
    if built_on is not beliefs:  # the beliefs were read again since
        _, matchmaker = localcache.cached(kept, build, fresh=True)
    return matchmaker.reseeded(seed)
