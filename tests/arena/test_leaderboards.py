"""Tallies kept as votes arrive, rebuilt snapshots, exclusions, and no lost update under concurrency."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection

from arena.leaderboards import (
    REPLICATES,
    _vote_hash,
    leaderboard_current,
    leaderboard_rebuild,
    leaderboard_snapshots_thin,
    replicates_rebuild,
    trust_floor,
    vote_exclude,
    voters_trust_set,
    votes_exclude,
    votes_restore,
)
from arena.models import (
    Arena,
    ArenaTally,
    GenerativeModel,
    LeaderboardSnapshot,
    ModelRating,
    PairTally,
    Vote,
    Voter,
    VoterTrust,
)
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make
from tests.factories import VoterFactory, ready_arena


def _cast(arena: Arena, voter: Voter, mode: str, rng: random.Random, pick: Any) -> Vote:
    battle = battle_create(arena=arena, voter=voter, mode=mode, rng=rng)
    labels = {slot.model.name: slot.label for slot in battle.slots.select_related("model")}
    token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
    return vote_record(
        battle_public_id=str(battle.public_id), token=token, voter=voter, **pick(labels)
    )


def _best_name_wins(labels: dict[str, str]) -> dict[str, Any]:
    """The voter always prefers the model with the smallest number in its name."""
    order = sorted(labels, key=lambda name: int(name.split()[-1]))
    return {"ranks": {labels[name]: i + 1 for i, name in enumerate(order)}}


def _pairwise_first_wins(labels: dict[str, str]) -> dict[str, Any]:
    best = min(labels, key=lambda name: int(name.split()[-1]))
    return {"choice": labels[best]}


def vote_pairwise_outcomes(
    *, ranking: list[list[int]], is_partial: bool
) -> list[tuple[int, int, float]]:
    """An independent decomposition of one vote into (player, opponent, score) pairs.

    Written separately from ``ranking.Ranking.pairs`` (which the tallies use) so that the
    tallies are checked against a second implementation, not against themselves.
    """
    outcomes: list[tuple[int, int, float]] = []
    for gi, group in enumerate(ranking):
        tied_group = not (is_partial and gi == len(ranking) - 1)
        for i, a in enumerate(group):
            if tied_group:
                for b in group[i + 1 :]:
                    outcomes += [(a, b, 0.5), (b, a, 0.5)]
            for lower in ranking[gi + 1 :]:
                for b in lower:
                    outcomes += [(a, b, 1.0), (b, a, 0.0)]
    return outcomes


def counted_weight(vote: Vote) -> float:
    """The weight the leaderboards give a counted vote: its voter's earned trust in the arena
    (the trust floor for a voter the aggregator has not met yet)."""
    row = VoterTrust.objects.filter(arena_id=vote.arena_id, voter_id=vote.voter_id).first()
    return row.weight if row is not None else trust_floor()


Pairs = dict[tuple[int, int, float], float]


def _nonzero(out: dict[tuple[int, int, float], float]) -> Pairs:
    return {k: v for k, v in sorted(out.items()) if abs(v) > 1e-9}


def _brute_force_pairs(arena: Arena) -> Pairs:
    """The counted votes decomposed, each at its weight."""
    out: dict[tuple[int, int, float], float] = defaultdict(float)
    for vote in Vote.objects.filter(arena=arena, exclusion__isnull=True):
        weight = counted_weight(vote)
        for a, b, score in vote_pairwise_outcomes(ranking=vote.ranking, is_partial=vote.is_partial):
            if a < b:
                out[(a, b, score)] += weight
    return _nonzero(out)


def _tallied_pairs(arena: Arena) -> Pairs:
    out: dict[tuple[int, int, float], float] = defaultdict(float)
    for row in PairTally.objects.filter(arena=arena):
        out[(row.model_a_id, row.model_b_id, 1.0)] += row.a_wins
        out[(row.model_a_id, row.model_b_id, 0.0)] += row.b_wins
        out[(row.model_a_id, row.model_b_id, 0.5)] += row.ties
    return _nonzero(out)


def assert_pairs_match_the_log(arena: Arena) -> None:
    tallied, expected = _tallied_pairs(arena), _brute_force_pairs(arena)
    assert sorted(tallied) == sorted(expected)
    assert tallied == pytest.approx(expected)


def weighted_digest(votes: Any) -> str:
    """The digest of ``votes`` counted at their weights, computed here."""
    total = sum(_vote_hash(v.pk, counted_weight(v)) for v in votes)
    return f"{total % 2**128:032x}"


@pytest.mark.django_db
def test_the_pair_tallies_equal_the_vote_log_decomposed() -> None:
    arena = ready_arena(models=4)
    voter, rng = VoterFactory.create(), random.Random(3)
    for mode in ("rank_k", "best_of_k", "pairwise", "rank_k"):
        _cast(
            arena, voter, mode, rng, _best_name_wins if mode == "rank_k" else _pairwise_first_wins
        )

    assert_pairs_match_the_log(arena)
    tally = ArenaTally.objects.get(arena=arena)
    assert tally.votes == 4
    assert tally.digest == weighted_digest(Vote.objects.all())


@pytest.mark.django_db
def test_a_rebuild_ranks_the_consistently_preferred_model_first_by_every_method() -> None:
    arena = ready_arena(models=4)
    voter, rng = VoterFactory.create(), random.Random(5)
    for _ in range(30):
        _cast(arena, voter, "rank_k", rng, _best_name_wins)

    result = leaderboard_rebuild(arena=arena)

    assert [s.method for s in result.snapshots] == ["bayesian", "bradley_terry", "elo"]
    best = min(arena.generative_models.all(), key=lambda m: int(m.name.split()[-1]))
    for snapshot in result.snapshots:
        top = snapshot.standings[0]
        assert top["model"] == best.name, snapshot.method
        assert top["low"] <= top["score"] <= top["high"]
        assert snapshot.votes == 30
    bt = result.snapshots[1].standings
    # (12 did before the Laplace floor: unanimous votes leave little curvature at the
    # bias-reduced fit, and the intervals say so.)
    assert bt[0]["low"] > bt[-1]["high"], "30 unanimous votes separate best from worst"


@pytest.mark.django_db
def test_rebuilding_from_the_same_votes_gives_the_same_snapshot() -> None:
    arena = ready_arena(models=3)
    voter, rng = VoterFactory.create(), random.Random(1)
    _cast(arena, voter, "rank_k", rng, _best_name_wins)

    first = leaderboard_rebuild(arena=arena)
    again = leaderboard_rebuild(arena=arena)
    _cast(arena, voter, "rank_k", rng, _best_name_wins)
    after_a_vote = leaderboard_rebuild(arena=arena)

    assert (first.created, again.created, after_a_vote.created) == (3, 0, 3)
    assert [s.pk for s in again.snapshots] == [s.pk for s in first.snapshots]
    assert after_a_vote.snapshots[0].vote_set_hash != first.snapshots[0].vote_set_hash


@pytest.mark.django_db
def test_excluding_a_vote_removes_it_from_counts_and_vote_set() -> None:
    arena = ready_arena(models=2)
    voter, rng = VoterFactory.create(), random.Random(2)
    _cast(arena, voter, "pairwise", rng, _pairwise_first_wins)
    digest_before = ArenaTally.objects.get(arena=arena).digest
    bad = _cast(arena, voter, "pairwise", rng, _pairwise_first_wins)

    assert vote_exclude(vote=bad, reason="bot") is True
    assert vote_exclude(vote=bad, reason="bot") is False

    tally = ArenaTally.objects.get(arena=arena)
    assert (tally.votes, tally.digest) == (1, digest_before)
    assert_pairs_match_the_log(arena)
    assert Vote.objects.count() == 2, "the vote log keeps it"


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_lose_no_update() -> None:
    arena = ready_arena(models=2)
    voters = VoterFactory.create_batch(8)
    ready = []
    for voter in voters:
        battle = battle_create(arena=arena, voter=voter, mode="pairwise")
        ready.append(
            (
                battle,
                voter,
                battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
            )
        )
    barrier, errors = threading.Barrier(len(ready)), []

    def vote(battle: Any, voter: Voter, token: str) -> None:
        try:
            barrier.wait()
            vote_record(
                battle_public_id=str(battle.public_id), token=token, voter=voter, choice="A"
            )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=args) for args in ready]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert ArenaTally.objects.get(arena=arena).votes == 8
    assert sum(ModelRating.objects.filter(arena=arena).values_list("votes", flat=True)) == 16
    row = PairTally.objects.get(arena=arena)
    # Eight fresh voters, one vote each: eight votes at the trust floor.
    assert row.a_wins + row.b_wins + row.ties == pytest.approx(8 * trust_floor())


@pytest.mark.django_db
def test_a_new_arena_has_its_tally_row_from_the_start() -> None:
    arena = ready_arena(models=2)

    tally = ArenaTally.objects.get(arena=arena)
    assert (tally.votes, tally.digest) == (0, "0" * 32)


def _race_the_first_vote_with_a_read() -> tuple[Arena, list[Exception]]:
    """A fresh arena's first vote and a leaderboard read, released together."""
    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="pairwise")
    token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
    barrier, errors = threading.Barrier(2), []

    def vote() -> None:
        vote_record(battle_public_id=str(battle.public_id), token=token, voter=voter, choice="A")

    def read() -> None:
        leaderboard_current(arena=arena, method="bradley_terry")

    def run(action: Any) -> None:
        try:
            barrier.wait()
            action()
        except Exception as exc:  # collected and asserted by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(action,)) for action in (vote, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return arena, errors


@pytest.mark.django_db(transaction=True)
def test_the_first_vote_and_a_concurrent_leaderboard_read_both_succeed() -> None:
    """Both used to insert the arena's tally row; on PostgreSQL one of them deadlocked."""
    for _ in range(3):  # a fresh arena each round: the race is on its first vote
        arena, errors = _race_the_first_vote_with_a_read()

        assert errors == []
        assert ArenaTally.objects.get(arena=arena).votes == 1


@pytest.mark.django_db
def test_simulated_votes_put_the_higher_tier_on_top() -> None:
    from django.core.management import call_command

    arena = ready_arena(models=4)
    models = list(arena.generative_models.order_by("pk"))
    for tier, model in zip((1, 2, 3, 4), models, strict=True):
        GenerativeModel.objects.filter(pk=model.pk).update(backend_config={"quality": tier})

    call_command("simulate_votes", "--arena", arena.slug, "--votes", "60", verbosity=0)

    snapshot = leaderboard_rebuild(arena=arena).snapshots[1]  # bradley_terry
    assert snapshot.votes == 60
    assert snapshot.standings[0]["model_id"] == models[3].pk


@pytest.mark.django_db
def test_the_online_elo_equals_a_replay_of_the_vote_log() -> None:
    import ranking

    arena = ready_arena(models=4)
    voter, rng = VoterFactory.create(), random.Random(11)
    for mode in ("rank_k", "best_of_k", "pairwise", "rank_k", "best_of_k"):
        _cast(
            arena, voter, mode, rng, _best_name_wins if mode == "rank_k" else _pairwise_first_wins
        )

    players = [
        str(pk) for pk in arena.generative_models.order_by("pk").values_list("pk", flat=True)
    ]
    replay = ranking.EloRater(players, k_factor=16.0)
    for vote in Vote.objects.filter(arena=arena).order_by("pk"):
        groups = tuple(tuple(str(p) for p in g) for g in vote.ranking)
        replay.record(ranking.Ranking(groups, partial=vote.is_partial), counted_weight(vote))
    online = dict(ModelRating.objects.filter(arena=arena).values_list("model_id", "elo"))

    for player, expected in zip(players, replay.ratings, strict=True):
        assert online[int(player)] == pytest.approx(expected)


def _snapshot_at(arena: Arena, method: str, at: datetime, n: int) -> int:
    snapshot = LeaderboardSnapshot.objects.create(
        arena=arena,
        method=method,
        code_version="v1",
        vote_set_hash=f"{n:032x}",
        votes=n,
        standings=[],
    )
    LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(created_at=at)
    return snapshot.pk


@pytest.mark.django_db
def test_thinning_keeps_the_last_hour_then_hourly_for_a_week_then_daily() -> None:
    arena = ready_arena(models=2)
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    recent = [_snapshot_at(arena, "elo", now - timedelta(minutes=m), m) for m in (1, 20, 50)]
    # Three in one hour two days ago: only the newest of them stays.
    hour = [
        _snapshot_at(arena, "elo", now - timedelta(days=2, minutes=m), 100 + m) for m in (5, 25, 45)
    ]
    # Two on one day a month ago, and one on the day before: one per day stays.
    day = [_snapshot_at(arena, "elo", now - timedelta(days=30, hours=h), 200 + h) for h in (1, 3)]
    older_day = _snapshot_at(arena, "elo", now - timedelta(days=31, hours=13), 300)
    other_method = _snapshot_at(arena, "bayesian", now - timedelta(days=30, hours=5), 400)

    deleted = leaderboard_snapshots_thin(arena=arena, now=now)

    kept = set(LeaderboardSnapshot.objects.filter(arena=arena).values_list("pk", flat=True))
    assert deleted == 3
    assert kept == {*recent, hour[0], day[0], older_day, other_method}


@pytest.mark.django_db
def test_thinning_never_deletes_the_newest_snapshot_of_a_method() -> None:
    arena = ready_arena(models=2)
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    only = _snapshot_at(arena, "bradley_terry", now - timedelta(days=90), 1)

    assert leaderboard_snapshots_thin(arena=arena, now=now) == 0
    assert LeaderboardSnapshot.objects.filter(pk=only).exists()


def _stored_replicates(arena: Arena) -> dict[tuple[int, int], Any]:
    return {
        (a, b): np.frombuffer(bytes(blob), dtype="<f8").reshape(REPLICATES, 3)
        for a, b, blob in PairTally.objects.filter(arena=arena).values_list(
            "model_a_id", "model_b_id", "replicates"
        )
    }


@pytest.mark.django_db
def test_the_kept_replicates_equal_a_rebuild_from_the_vote_log_through_exclusions_and_trust() -> (
    None
):
    arena = ready_arena(models=4)
    voters, rng = VoterFactory.create_batch(3), random.Random(8)
    _cast(arena, voters[0], "rank_k", rng, _best_name_wins)
    leaderboard_rebuild(arena=arena)  # builds the replicates once; the tallies keep them after
    votes = [
        _cast(
            arena, voter, mode, rng, _best_name_wins if mode == "rank_k" else _pairwise_first_wins
        )
        for voter in voters
        for mode in ("rank_k", "best_of_k", "pairwise", "rank_k")
    ]
    votes_exclude(arena_id=arena.pk, votes=votes[:3], reason="test")
    votes_restore(arena_id=arena.pk, votes=votes[1:2])
    voters_trust_set(arena_id=arena.pk, trust={voters[1].pk: 0.6, voters[2].pk: 1.0})
    kept = _stored_replicates(arena)

    replicates_rebuild(arena_id=arena.pk)

    rebuilt = _stored_replicates(arena)
    assert kept.keys() == rebuilt.keys() and len(kept) == 6
    for pair, value in rebuilt.items():
        assert np.allclose(kept[pair], value), pair
    # The replicates average to the counts themselves (each vote counts Poisson(1) times).
    assert any(value.sum() > 0 for value in rebuilt.values())


@pytest.mark.django_db
def test_an_arena_tallied_before_replicates_gets_them_at_its_next_rebuild() -> None:
    arena = ready_arena(models=3)
    voter, rng = VoterFactory.create(), random.Random(9)
    for _ in range(4):
        _cast(arena, voter, "rank_k", rng, _best_name_wins)
    assert ArenaTally.objects.get(arena=arena).replicates == 0  # nothing built yet
    assert set(PairTally.objects.values_list("replicates", flat=True)) == {b""}

    result = leaderboard_rebuild(arena=arena)

    assert ArenaTally.objects.get(arena=arena).replicates == REPLICATES
    assert all(
        len(bytes(b)) == REPLICATES * 3 * 8
        for b in PairTally.objects.values_list("replicates", flat=True)
    )
    bt = next(s for s in result.snapshots if s.method == "bradley_terry")
    assert bt.params["resample"] == "vote"
    assert all(row["low"] <= row["score"] <= row["high"] for row in bt.standings)
