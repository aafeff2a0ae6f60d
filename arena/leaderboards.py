"""Leaderboards from the vote log: incremental tallies, online ratings and rebuilt snapshots.

As votes arrive (inside ``vote_record``'s transaction) ``tally_vote`` updates, per arena:
the vote-set digest, the aggregated pair counts (``PairTally``) and the online ELO and Bayesian
ratings (``ModelRating``). All of it happens under a row lock on the arena's ``ArenaTally``, so
concurrent votes in one arena are applied one after another and no update is lost.

``leaderboard_rebuild`` turns the pair counts into snapshots (Bradley-Terry with bootstrap
intervals, the Bayesian MAP refit, and ELO) without reading per-vote rows: its cost depends on
the number of models, not of votes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

import ranking
from arena.models import (
    Arena,
    ArenaTally,
    GenerativeModel,
    LeaderboardSnapshot,
    ModelRating,
    PairTally,
    Vote,
    VoteExclusion,
    VoterFlag,
)

logger = logging.getLogger(__name__)

# Bump when the maths or its parameters change: snapshots are stamped with it.
LEADERBOARD_VERSION = "1"
METHODS = ("bayesian", "bradley_terry", "elo")
METHOD_LABELS = {"bayesian": "Bayesian (K-wise)", "bradley_terry": "Bradley-Terry", "elo": "ELO"}
PARAMS: dict[str, dict[str, Any]] = {
    "bradley_terry": {"l2": 0.1, "rounds": 100, "level": 0.95, "seed": 0},
    "bayesian": {"display": "map", "level": 0.95},
    "elo": {"k_factor": 16.0, "scale": 400.0, "base": 10.0, "init": 1000.0},
}
_DIGEST_MOD = 2**128
BETA = 25.0 / 6.0  # openskill's default performance noise, shared with ranking.bayesian


def _vote_hash(vote_id: int) -> int:
    return int.from_bytes(hashlib.sha256(f"vote:{vote_id}".encode()).digest()[:16], "big")


def _ranking_of(vote: Vote) -> ranking.Ranking:
    groups = tuple(tuple(str(model_id) for model_id in group) for group in vote.ranking)
    return ranking.Ranking(groups, partial=bool(vote.is_partial) and len(groups) > 1)


def _locked_tally(arena_id: int) -> ArenaTally:
    ArenaTally.objects.get_or_create(arena_id=arena_id)
    return ArenaTally.objects.select_for_update().get(arena_id=arena_id)


def _add_pairs(arena_id: int, vote_ranking: ranking.Ranking, sign: int) -> None:
    """Add (sign=1) or remove (sign=-1) one vote's pairwise outcomes to the pair tallies."""
    _add_pairs_many(arena_id, [vote_ranking], sign)


def _add_pairs_many(arena_id: int, rankings: Iterable[ranking.Ranking], sign: int) -> None:
    """Add or remove many votes' outcomes: summed first, then one UPDATE per model pair."""
    deltas: dict[tuple[int, int], list[float]] = {}
    for vote_ranking in rankings:
        for a_str, b_str, score in vote_ranking.pairs():
            a, b = int(a_str), int(b_str)
            low, high = (a, b) if a < b else (b, a)
            row = deltas.setdefault((low, high), [0.0, 0.0, 0.0])
            if score == 0.5:
                row[2] += 1
            elif a == low:
                row[0] += 1
            else:
                row[1] += 1
    PairTally.objects.bulk_create(
        [PairTally(arena_id=arena_id, model_a_id=low, model_b_id=high) for low, high in deltas],
        ignore_conflicts=True,
    )
    for (low, high), (a_wins, b_wins, ties) in sorted(deltas.items()):
        PairTally.objects.filter(arena_id=arena_id, model_a_id=low, model_b_id=high).update(
            a_wins=F("a_wins") + sign * a_wins,
            b_wins=F("b_wins") + sign * b_wins,
            ties=F("ties") + sign * ties,
        )


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


def _update_online(arena_id: int, vote_ranking: ranking.Ranking) -> None:
    """Online ELO (pairwise decomposition) and Weng-Lin Bayesian update for one vote."""
    players = [int(p) for p in vote_ranking.players]
    ModelRating.objects.bulk_create(
        [ModelRating(arena_id=arena_id, model_id=p) for p in players], ignore_conflicts=True
    )
    rows = {
        r.model_id: r
        for r in ModelRating.objects.select_for_update()
        .filter(arena_id=arena_id, model_id__in=players)
        .order_by("pk")  # a fixed lock order
    }
    # The ranking library's own Elo step, over just the models of this vote.
    elo = ranking.EloRater([str(p) for p in players], **PARAMS["elo"])
    elo.ratings = np.array([rows[p].elo for p in players])
    elo.record(vote_ranking)
    skills = _skills_step(
        vote_ranking,
        mu={str(p): rows[p].mu for p in players},
        sigma={str(p): rows[p].sigma for p in players},
    )
    for i, p in enumerate(players):
        row = rows[p]
        row.elo = float(elo.ratings[i])
        row.mu, row.sigma = skills[str(p)]
        row.votes += 1
    ModelRating.objects.bulk_update(list(rows.values()), ["elo", "mu", "sigma", "votes"])


def _skills_step(
    vote_ranking: ranking.Ranking, *, mu: dict[str, float], sigma: dict[str, float]
) -> dict[str, tuple[float, float]]:
    """The Weng-Lin (Plackett-Luce) update of one vote: new (mu, sigma) per model shown."""
    shown = list(vote_ranking.players)
    group_of = {p: gi for gi, group in enumerate(vote_ranking.groups) for p in group}
    new_mu, new_sigma = ranking.weng_lin_update(
        np.array([mu[p] for p in shown]),
        np.array([sigma[p] for p in shown]),
        [group_of[p] for p in shown],
        partial=vote_ranking.partial,
        beta=BETA,
    )
    return {p: (float(new_mu[i]), float(new_sigma[i])) for i, p in enumerate(shown)}


def tally_vote(*, vote: Vote) -> None:
    """Count a new vote everywhere a leaderboard needs it, unless it must not count.

    Call inside the vote's transaction. Votes on named battles never count. A voter whose votes
    fraud review keeps out of this arena has the new vote excluded at once, with the same
    reasons; the flag is read under the tally lock (the lock order of scans and reviews), so a
    review deciding on this voter right now is wholly before this vote or wholly after it.
    """
    if vote.is_named:
        return
    tally = _locked_tally(vote.arena_id)
    flag = VoterFlag.objects.filter(arena_id=vote.arena_id, voter_id=vote.voter_id).first()
    if flag is not None and flag.is_excluding:
        reasons = list(flag.reasons) or ["admin"]
        VoteExclusion.objects.create(
            vote=vote, reason=f"voter excluded: {', '.join(reasons)}"[:200], reasons=reasons
        )
        return
    vote_ranking = _ranking_of(vote)
    tally.votes += 1
    tally.digest = _digest_step(tally.digest, vote.pk, +1)
    tally.save(update_fields=["votes", "digest", "updated_at"])
    _add_pairs(vote.arena_id, vote_ranking, +1)
    _update_online(vote.arena_id, vote_ranking)


def _digest_step(digest: str, vote_id: int, sign: int) -> str:
    return f"{(int(digest, 16) + sign * _vote_hash(vote_id)) % _DIGEST_MOD:032x}"


def votes_exclude(
    *, arena_id: int, votes: Sequence[Vote], reason: str, reasons: Sequence[str] = ()
) -> int:
    """Take counted votes of one arena out of the leaderboards; returns how many were taken.

    Votes already excluded are skipped. The pair counts and the vote-set digest drop them at
    once; the online ratings keep their effect until ``ratings_replay`` (an online update cannot
    be undone exactly), which the fraud scan and the review actions call after changing votes.
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
        for vote in fresh:
            tally.digest = _digest_step(tally.digest, vote.pk, -1)
        _add_pairs_many(arena_id, (_ranking_of(v) for v in fresh), -1)
        tally.votes -= len(fresh)
        tally.save(update_fields=["votes", "digest", "updated_at"])
    return len(fresh)


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
        for vote in back:
            tally.digest = _digest_step(tally.digest, vote.pk, +1)
        _add_pairs_many(arena_id, (_ranking_of(v) for v in back), +1)
        tally.votes += len(back)
        tally.save(update_fields=["votes", "digest", "updated_at"])
    return len(back)


def counted_votes(*, arena_id: int) -> QuerySet[Vote]:
    """The arena's votes that count on its leaderboards, oldest first."""
    return Vote.objects.filter(arena_id=arena_id, is_named=False, exclusion__isnull=True).order_by(
        "pk"
    )


class _Replay:
    """Online ELO and Weng-Lin ratings rebuilt vote by vote (the same steps as ``tally_vote``)."""

    def __init__(self, players: list[str]) -> None:
        self.players = players
        self.elo = ranking.EloRater(players, **PARAMS["elo"]) if players else None
        self.mu = {p: 25.0 for p in players}
        self.sigma = {p: 25.0 / 3.0 for p in players}
        self.votes = dict.fromkeys(players, 0)
        self.replayed = 0
        self.hash_sum = 0  # of every vote seen: checked against the tally's digest

    def add(self, vote_id: int, vote_groups: Any, is_partial: bool) -> None:
        self.hash_sum = (self.hash_sum + _vote_hash(vote_id)) % _DIGEST_MOD
        groups = tuple(tuple(str(m) for m in group) for group in vote_groups)
        vote_ranking = ranking.Ranking(groups, partial=bool(is_partial) and len(groups) > 1)
        shown = list(vote_ranking.players)
        if self.elo is None or any(p not in self.votes for p in shown):
            return  # a model no longer in the arena: nothing to replay into
        self.elo.record(vote_ranking)
        for p, (mu, sigma) in _skills_step(vote_ranking, mu=self.mu, sigma=self.sigma).items():
            self.mu[p], self.sigma[p] = mu, sigma
            self.votes[p] += 1
        self.replayed += 1

    def feed(self, votes: QuerySet[Vote], batch: int) -> None:
        for pk, vote_groups, is_partial in votes.values_list(
            "pk", "ranking", "is_partial"
        ).iterator(chunk_size=batch):
            self.add(pk, vote_groups, is_partial)


def ratings_replay(*, arena_id: int, batch: int = 5000) -> int:
    """Recompute the online ELO and Bayesian ratings from the counted votes, in vote order.

    Needed after votes were excluded or restored, since online updates cannot be undone one by
    one. Returns the number of votes replayed.

    The long part runs without the arena's tally lock, so voting goes on meanwhile (about 70 us
    per vote: seconds at 100k votes). Then, under the lock, it replays the votes that arrived
    since and checks that the votes it replayed are exactly the counted set (the sum of their
    hashes equals the tally's digest); if exclusions changed meanwhile it replays again under
    the lock. An ELO snapshot built from the ratings before the replay is dropped.
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

    high = Vote.objects.filter(arena_id=arena_id).aggregate(high=Max("pk"))["high"] or 0
    replay = start()
    replay.feed(counted_votes(arena_id=arena_id).filter(pk__lte=high), batch)
    with transaction.atomic():
        tally = _locked_tally(arena_id)
        replay.feed(counted_votes(arena_id=arena_id).filter(pk__gt=high), batch)
        if replay.hash_sum != int(tally.digest, 16):
            replay = start()  # the counted set changed meanwhile: replay it all, locked
            replay.feed(counted_votes(arena_id=arena_id), batch)
        ratings = list(ModelRating.objects.filter(arena_id=arena_id).order_by("pk"))
        for row in ratings:
            p = str(row.model_id)
            elo = replay.elo
            row.elo = float(elo.ratings[replay.players.index(p)]) if elo else PARAMS["elo"]["init"]
            row.mu, row.sigma, row.votes = replay.mu[p], replay.sigma[p], replay.votes[p]
        ModelRating.objects.bulk_update(ratings, ["elo", "mu", "sigma", "votes"])
        # An ELO snapshot is keyed by the digest but made from the online ratings: one built
        # for this digest before the replay holds the old ratings.
        LeaderboardSnapshot.objects.filter(
            arena_id=arena_id, method="elo", vote_set_hash=tally.digest
        ).delete()
    return replay.replayed


# --- rebuild ----------------------------------------------------------------------------------


def arena_pair_counts(*, arena: Arena, model_ids: Sequence[int]) -> ranking.PairCounts:
    """The arena's aggregated counts as a ``ranking.PairCounts`` over ``model_ids`` (as str)."""
    counts = ranking.PairCounts([str(pk) for pk in model_ids])
    index = {pk: i for i, pk in enumerate(model_ids)}
    for a, b, a_wins, b_wins, ties in PairTally.objects.filter(arena=arena).values_list(
        "model_a_id", "model_b_id", "a_wins", "b_wins", "ties"
    ):
        if a in index and b in index:
            i, j = index[a], index[b]
            counts.wins[i, j] += a_wins
            counts.wins[j, i] += b_wins
            counts.ties[i, j] += ties
            counts.ties[j, i] += ties
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


def _standings(
    method: str, counts: ranking.PairCounts, elo: dict[str, float]
) -> list[ranking.Standing]:
    """Standings of ``method`` from aggregated counts (ELO: from the online ratings)."""
    players = counts.players
    rater: ranking.EloRater | ranking.BradleyTerryRater | ranking.BayesianRater
    if method == "elo":
        rater = ranking.EloRater(players, **PARAMS["elo"])
        rater.ratings = np.array([elo.get(p, PARAMS["elo"]["init"]) for p in players])
    elif method == "bradley_terry":
        rater = ranking.BradleyTerryRater(players, **PARAMS["bradley_terry"])
    else:
        rater = ranking.BayesianRater(players, **PARAMS["bayesian"])
    rater.counts = counts
    rater.n_votes = int(counts.votes.sum())
    return rater.standings()


@dataclass(frozen=True)
class RebuildResult:
    snapshots: list[LeaderboardSnapshot]
    created: int


def leaderboard_rebuild(*, arena: Arena, methods: Iterable[str] = METHODS) -> RebuildResult:
    """Snapshots of every method for the arena's counted votes (reused if already built)."""
    models = {m.pk: m for m in GenerativeModel.objects.filter(arenas=arena).order_by("pk")}
    model_ids = sorted(models)
    with transaction.atomic():
        tally, _ = ArenaTally.objects.get_or_create(arena=arena)
        counts = arena_pair_counts(arena=arena, model_ids=model_ids)
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
        rows = _standings(method, counts, elo) if model_ids else []
        snapshot, was_created = LeaderboardSnapshot.objects.get_or_create(
            arena=arena,
            method=method,
            code_version=LEADERBOARD_VERSION,
            vote_set_hash=tally.digest,
            defaults={
                "params": PARAMS[method],
                "votes": tally.votes,
                "standings": [_standing_dict(r, models) for r in rows],
            },
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
    key = f"arena:lb-rebuild:{arena.pk}"
    try:
        first = cache.add(key, 1, timeout=settings.LEADERBOARD_REBUILD_DEBOUNCE_S)
    except RedisError:
        return False
    if not first:
        return False
    try:
        import_string(settings.LEADERBOARD_REBUILD_SENDER)(arena_id=arena.pk)
    except Exception:  # e.g. the broker is down: a read must still answer; beat rebuilds later
        logger.warning(
            "could not ask for a leaderboard rebuild of arena %s", arena.pk, exc_info=True
        )
        return False
    return True


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


def matchmaker_for(
    *, arena: Arena, model_ids: Sequence[int], weights: dict[int, float], seed: int
) -> ranking.Matchmaker:
    """The arena's matchmaker over ``model_ids``: ranking's default (overlap sampling).

    Beliefs come from the aggregated pair counts (MAP refit) and the online mu/sigma; admin
    weights boost (>1) or damp (<1) a model. Stateless per request, so concurrent battle
    requests need no lock and still differ (each draws with its own seed).
    """
    players = [str(pk) for pk in model_ids]
    rater = ranking.BayesianRater(players, **PARAMS["bayesian"])
    rater.counts = arena_pair_counts(arena=arena, model_ids=model_ids)
    rater.n_votes = int(rater.counts.votes.sum())
    online = {
        m: (mu, sigma)
        for m, mu, sigma in ModelRating.objects.filter(
            arena=arena, model_id__in=model_ids
        ).values_list("model_id", "mu", "sigma")
    }
    rater.mu = np.array([online.get(pk, (rater.mu0, rater.sigma0))[0] for pk in model_ids])
    rater.sigma = np.array([online.get(pk, (rater.mu0, rater.sigma0))[1] for pk in model_ids])
    matchmaker = ranking.make_matchmaker("default", rater, seed=seed)
    for pk in model_ids:
        weight = weights.get(pk, 1.0)
        if weight != 1.0:
            matchmaker.boost(str(pk), weight)
    return matchmaker
