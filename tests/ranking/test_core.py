"""Ranking validation and decomposition, PairCounts bookkeeping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ranking import PairCounts, Ranking, as_ranking, rank_by_intervals


def test_it_decomposes_a_full_ranking_with_ties_into_pairs() -> None:
    r = as_ranking([["a"], ["b", "c"], ["d"]])
    assert sorted(r.pairs()) == sorted(
        [
            ("a", "b", 1.0),
            ("a", "c", 1.0),
            ("a", "d", 1.0),
            ("b", "c", 0.5),
            ("b", "d", 1.0),
            ("c", "d", 1.0),
        ]
    )


def test_it_decomposes_a_best_of_k_vote_into_winner_vs_each_only() -> None:
    r = Ranking.best_of("a", ["b", "c", "d"])
    assert r.partial
    assert sorted(r.pairs()) == [("a", "b", 1.0), ("a", "c", 1.0), ("a", "d", 1.0)]


def test_it_keeps_earlier_groups_ordered_in_a_longer_partial_ranking() -> None:
    r = Ranking((("a",), ("b",), ("c", "d")), partial=True)
    pairs = sorted(r.pairs())
    assert ("a", "b", 1.0) in pairs and ("b", "c", 1.0) in pairs
    assert not any({x, y} == {"c", "d"} for x, y, _ in pairs)


def test_it_reads_a_pairwise_tie_as_a_tie() -> None:
    assert list(Ranking.tie(["a", "b"]).pairs()) == [("a", "b", 0.5)]


def test_it_normalises_lists_to_tuples_and_is_hashable() -> None:
    r = Ranking([["a"], ["b"]])  # type: ignore[arg-type]
    assert r.groups == (("a",), ("b",))
    assert hash(r) == hash(Ranking((("a",), ("b",))))
    assert as_ranking(r) is r


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([["a"], ["a"]], "ranking: player 'a' appears twice"),
        ([["a", "b", "a"]], "ranking: player 'a' appears twice"),
        ([["a"], []], "ranking: group 1 is empty"),
        ([], "ranking: is empty"),
        ([["a"]], "ranking: needs at least two players"),
        ([["a"], [""]], "ranking: player ids must be non-empty str"),
        ([["a"], [3]], "ranking: player ids must be non-empty str"),
        (["ab", "c"], "ranking: group 0 must be a sequence of player ids"),
        ("ab", "ranking: must be a sequence of groups"),
    ],
)
def test_it_rejects_bad_rankings(groups: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        as_ranking(groups)  # type: ignore[arg-type]


def test_it_rejects_a_partial_ranking_with_one_group() -> None:
    with pytest.raises(ValueError, match="ranking: a partial ranking needs at least two groups"):
        Ranking((("a", "b"),), partial=True)


def test_it_rejects_a_string_for_best_of_others() -> None:
    with pytest.raises(ValueError, match="others"):
        Ranking.best_of("a", "bc")


def test_it_counts_wins_ties_and_votes() -> None:
    c = PairCounts(["a", "b", "c"])
    c.add([["a"], ["b", "c"]])
    c.add(Ranking.best_of("c", ["a", "b"]))
    i = {p: c.index(p) for p in c.players}
    assert c.wins[i["a"], i["b"]] == 1 and c.wins[i["a"], i["c"]] == 1
    assert c.ties[i["b"], i["c"]] == 1 and c.ties[i["c"], i["b"]] == 1
    assert c.wins[i["c"], i["a"]] == 1 and c.wins[i["c"], i["b"]] == 1
    assert c.wins[i["a"], i["c"]] == 1  # the best-of vote did not compare a and b
    assert c.comparisons()[i["a"], i["b"]] == 1
    assert c.votes.tolist() == [2, 2, 2]
    np.testing.assert_allclose(c.effective_wins(), c.wins + 0.5 * c.ties)


def test_it_leaves_counts_untouched_when_a_vote_names_an_unknown_player() -> None:
    c = PairCounts(["a", "b"])
    with pytest.raises(ValueError, match="ranking: unknown player 'x'"):
        c.add([["a"], ["b"], ["x"]])
    assert c.wins.sum() == 0 and c.votes.sum() == 0


def test_it_merges_counts_over_the_union_of_players() -> None:
    left = PairCounts.from_rankings(["a", "b"], [[["a"], ["b"]]])
    right = PairCounts.from_rankings(["c", "a"], [[["c"], ["a"]], [["a", "c"]]])
    both = left.merge(right)
    assert both.players == ["a", "b", "c"]
    assert both == PairCounts.from_rankings(
        ["a", "b", "c"], [[["a"], ["b"]], [["c"], ["a"]], [["a", "c"]]]
    )
    assert left.players == ["a", "b"]  # inputs untouched


def test_it_round_trips_counts_through_json() -> None:
    c = PairCounts.from_rankings(["a", "b", "c"], [[["a"], ["b", "c"]], [["c"], ["a"]]])
    again = PairCounts.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c


def test_it_rejects_malformed_count_dicts() -> None:
    with pytest.raises(ValueError, match="data"):
        PairCounts.from_dict({"players": ["a"]})
    with pytest.raises(ValueError, match="data: wins/ties/votes shapes"):
        PairCounts.from_dict({"players": ["a"], "wins": [[0, 1]], "ties": [[0]], "votes": [0]})


def test_players_added_together_grow_the_counts_once_and_all_or_nothing() -> None:
    c = PairCounts(["a", "b"], replicates=3)
    c.add([["a"], ["b"]], key=1)
    c.add_players(["c", "d"])
    assert c.players == ["a", "b", "c", "d"]
    assert c.wins.shape == c.ties.shape == (4, 4) and c.rep_wins.shape == (3, 4, 4)
    assert c.votes.tolist() == [1, 1, 0, 0] and c.wins[0, 1] == 1 and c.wins.sum() == 1
    with pytest.raises(ValueError, match="player: 'e' is already present"):
        c.add_players(["e", "f", "e"])
    with pytest.raises(ValueError, match="player: 'a' is already present"):
        c.add_players(["g", "a"])
    assert c.players == ["a", "b", "c", "d"] and c.wins.shape == (4, 4)  # nothing of either


def test_it_rejects_duplicate_and_bad_players_and_weights() -> None:
    c = PairCounts(["a"])
    with pytest.raises(ValueError, match="player: 'a' is already present"):
        c.add_player("a")
    with pytest.raises(ValueError, match="player: player ids must be non-empty str"):
        c.add_player("")
    with pytest.raises(ValueError, match="player: unknown player 'z'"):
        c.index("z")
    c.add_player("b")
    with pytest.raises(ValueError, match="weight"):
        c.add([["a"], ["b"]], weight=0)


def test_it_ranks_by_non_overlapping_intervals() -> None:
    low = np.array([10.0, 8.0, 0.0, -5.0])
    high = np.array([20.0, 12.0, 9.0, 1.0])
    # b overlaps a; c overlaps b but not a; d overlaps c only.
    assert rank_by_intervals(low, high).tolist() == [1, 1, 2, 3]
