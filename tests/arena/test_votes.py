"""vote_record: every mode, ties, and every way a vote can be refused (with nothing stored)."""

from __future__ import annotations

import random
import time
from typing import Any
from unittest import mock

import pytest

from arena.errors import AlreadyVoted, ExpiredToken, InvalidToken, InvalidVote, NotYourBattle
from arena.models import Battle, BattleState, Vote, VoteOutcome, Voter
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db


def _serve(
    mode: str, k: int | None = None, voter: Voter | None = None
) -> tuple[Battle, str, Voter]:
    arena = ready_arena(models=4)
    voter = voter or VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode=mode, k=k, rng=random.Random(7))
    return (
        battle,
        battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
        voter,
    )


def _models_by_label(battle: Battle) -> dict[str, int]:
    return {slot.label: slot.model_id for slot in battle.slots.all()}


def _vote(battle: Battle, token: str, voter: Voter, **payload: Any) -> Vote:
    return vote_record(battle_public_id=str(battle.public_id), token=token, voter=voter, **payload)


def test_it_records_a_pairwise_win_as_winner_then_loser() -> None:
    battle, token, voter = _serve("pairwise")
    by_label = _models_by_label(battle)

    vote = _vote(battle, token, voter, choice="B", client_ip="203.0.113.9", user_agent="UA")

    assert vote.outcome == VoteOutcome.WIN
    assert vote.ranking == [[by_label["B"]], [by_label["A"]]]
    assert vote.slot_ranking == [["B"], ["A"]]
    battle.refresh_from_db()
    assert battle.state == BattleState.VOTED


@pytest.mark.parametrize(
    ("choice", "outcome"), [("tie", VoteOutcome.TIE), ("both_bad", VoteOutcome.BOTH_BAD)]
)
def test_it_records_pairwise_ties_and_both_bad_distinctly(choice: str, outcome: str) -> None:
    battle, token, voter = _serve("pairwise")

    vote = _vote(battle, token, voter, choice=choice)

    assert vote.outcome == outcome
    assert vote.slot_ranking == [["A", "B"]]
    assert not vote.is_partial


def test_it_records_best_of_k_as_a_partial_top1_ranking() -> None:
    battle, token, voter = _serve("best_of_k", k=4)
    by_label = _models_by_label(battle)

    vote = _vote(battle, token, voter, choice="C")

    assert vote.is_partial
    assert vote.slot_ranking == [["C"], ["A", "B", "D"]]
    assert vote.ranking[0] == [by_label["C"]]


def test_it_records_a_best_of_k_tie_as_one_group() -> None:
    battle, token, voter = _serve("best_of_k", k=3)

    vote = _vote(battle, token, voter, choice="tie")

    assert vote.outcome == VoteOutcome.TIE
    assert vote.slot_ranking == [["A", "B", "C"]]
    assert not vote.is_partial


def test_it_records_a_rank_k_ranking_with_ties() -> None:
    battle, token, voter = _serve("rank_k", k=4)
    by_label = _models_by_label(battle)

    vote = _vote(battle, token, voter, ranks={"A": 2, "B": 1, "C": 2, "D": 4})

    assert vote.outcome == VoteOutcome.RANKED
    assert vote.slot_ranking == [["B"], ["A", "C"], ["D"]]
    assert vote.ranking == [[by_label["B"]], [by_label["A"], by_label["C"]], [by_label["D"]]]


def test_it_accepts_rank_k_as_ordered_groups() -> None:
    battle, token, voter = _serve("rank_k", k=3)

    vote = _vote(battle, token, voter, ranking=[["C"], ["A", "B"]])

    assert vote.slot_ranking == [["C"], ["A", "B"]]


def test_it_stores_hashes_never_the_raw_client_address() -> None:
    battle, token, voter = _serve("pairwise")

    vote = _vote(
        battle, token, voter, choice="A", client_ip="198.51.100.23", user_agent="Mozilla/5.0 test"
    )

    assert "198.51.100.23" not in vote.client_hash
    assert len(vote.client_hash) == 64
    assert vote.client_hash != vote.user_agent_hash


def test_it_counts_the_vote_on_the_voter() -> None:
    battle, token, voter = _serve("pairwise")

    _vote(battle, token, voter, choice="tie")

    voter.refresh_from_db()
    assert (voter.battles_served, voter.votes_cast, voter.ties_cast) == (1, 1, 1)


def test_it_refuses_a_second_vote_on_the_same_battle() -> None:
    battle, token, voter = _serve("pairwise")
    _vote(battle, token, voter, choice="A")

    with pytest.raises(AlreadyVoted) as caught:
        _vote(battle, token, voter, choice="B")

    assert caught.value.status == 409
    assert Vote.objects.get().slot_ranking == [["A"], ["B"]]


def test_it_refuses_a_vote_on_a_battle_served_to_another_voter() -> None:
    battle, token, _owner = _serve("pairwise")
    intruder = VoterFactory.create()

    with pytest.raises(NotYourBattle) as caught:
        _vote(battle, token, intruder, choice="A")

    assert caught.value.status == 403
    assert not Vote.objects.exists()
    intruder.refresh_from_db()
    assert intruder.rejected_votes == 1


def test_it_refuses_a_tampered_token() -> None:
    battle, token, voter = _serve("pairwise")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    with pytest.raises(InvalidToken):
        _vote(battle, tampered, voter, choice="A")

    assert not Vote.objects.exists()


def test_it_refuses_a_token_issued_for_another_battle() -> None:
    battle, _token, voter = _serve("pairwise")
    other = battle_create(arena=battle.arena, voter=voter, mode="pairwise")
    other_token = battle_token_make(battle_public_id=str(other.public_id), nonce=other.nonce)

    with pytest.raises(InvalidToken):
        _vote(battle, other_token, voter, choice="A")

    assert not Vote.objects.exists()


def test_it_refuses_a_token_with_the_wrong_nonce() -> None:
    battle, _token, voter = _serve("pairwise")
    forged = battle_token_make(battle_public_id=str(battle.public_id), nonce="0" * 32)

    with pytest.raises(InvalidToken):
        _vote(battle, forged, voter, choice="A")


def test_it_refuses_an_expired_token(settings: object) -> None:
    battle, _token, voter = _serve("pairwise")
    an_hour_ago = time.time() - 3600
    with mock.patch("django.core.signing.time.time", return_value=an_hour_ago):
        old_token = battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)
    settings.BATTLE_TOKEN_MAX_AGE_S = 600  # type: ignore[attr-defined]

    with pytest.raises(ExpiredToken) as caught:
        _vote(battle, old_token, voter, choice="A")

    assert caught.value.status == 410
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    ("mode", "payload", "message"),
    [
        ("pairwise", {"choice": "C"}, "'choice' must be one of A, B, tie, both_bad"),
        ("pairwise", {"choice": None}, "'choice' must be one of"),
        ("pairwise", {"ranks": {"A": 1, "B": 2}}, "takes a 'choice'"),
        ("best_of_k", {"choice": "E"}, "'choice' must be one of A, B, C, D, tie"),
        ("rank_k", {"ranks": {"A": 1, "B": 2, "C": 3}}, "missing D"),
        ("rank_k", {"ranks": {"A": 1, "B": 2, "C": 3, "D": 4, "E": 1}}, "Unknown slot(s): E"),
        ("rank_k", {"ranks": {"A": 0, "B": 2, "C": 3, "D": 4}}, "between 1 and 4"),
        ("rank_k", {"ranks": {"A": 5, "B": 2, "C": 3, "D": 4}}, "between 1 and 4"),
        ("rank_k", {"ranks": {"A": "first", "B": 2, "C": 3, "D": 4}}, "whole number"),
        ("rank_k", {"ranks": {"A": True, "B": 2, "C": 3, "D": 4}}, "whole number"),
        ("rank_k", {"ranking": [["A", "B"], ["A", "C", "D"]]}, "appears more than once"),
        ("rank_k", {"ranking": [["A"], [], ["B", "C", "D"]]}, "empty group"),
        ("rank_k", {"ranking": [["A"], ["B"]]}, "missing C, D"),
        ("rank_k", {"choice": "A"}, "not a single choice"),
        ("rank_k", {}, "exactly one of 'ranks' or 'ranking'"),
    ],
)
def test_it_rejects_a_malformed_submission_and_stores_nothing(
    mode: str, payload: dict[str, object], message: str
) -> None:
    battle, token, voter = _serve(mode, k=None if mode == "pairwise" else 4)

    with pytest.raises(InvalidVote) as caught:
        _vote(battle, token, voter, **payload)

    assert message in caught.value.message
    assert caught.value.status == 400
    assert not Vote.objects.exists()
    battle.refresh_from_db()
    assert battle.state == BattleState.SERVED


def test_the_vote_log_is_append_only() -> None:
    battle, token, voter = _serve("pairwise")
    vote = _vote(battle, token, voter, choice="A")

    with pytest.raises(TypeError):
        vote.save()
    with pytest.raises(TypeError):
        vote.delete()
    with pytest.raises(TypeError):
        Vote.objects.all().update(outcome="tie")
    with pytest.raises(TypeError):
        Vote.objects.all().delete()
    assert Vote.objects.get().outcome == VoteOutcome.WIN
