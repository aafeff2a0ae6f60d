"""Earned trust: the weight a voter's votes carry, and the bound it puts on fresh identities."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ranking.fraud import Consensus, FraudConfig, VoteEvidence, replay_scans, trust_of, voter_trust
from tests.ranking.test_fraud import MODELS, cast, honest
from tests.ranking.test_fraud_campaign import TARGET, sybils

HOUR, DAY = 3600.0, 86_400.0
FLOOR = FraudConfig().trust_floor


def returning(voter: str, sessions: int, per_session: int, *, seed: int = 0) -> list[VoteEvidence]:
    """An honest voter who comes back: ``sessions`` sittings a day apart."""
    out: list[VoteEvidence] = []
    for s in range(sessions):
        out += [
            VoteEvidence(**{**v.__dict__, "vote_id": f"{v.vote_id}-s{s}"})
            for v in cast(voter, per_session, honest(), seed=seed * 100 + s, start=s * DAY)
        ]
    return out


# -- trust_of ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_votes", [1, 10, 500])
def test_one_sitting_earns_the_floor_however_many_votes(n_votes: int) -> None:
    assert trust_of(n_votes, 2 * HOUR) == FLOOR


def test_enough_votes_over_two_days_earn_full_trust() -> None:
    assert trust_of(10, 2 * DAY) == 1.0
    assert trust_of(400, 30 * DAY) == 1.0


def test_trust_grows_with_votes_and_with_their_spread_in_whole_steps() -> None:
    by_votes = [trust_of(n, 3 * DAY) for n in range(1, 12)]
    by_span = [trust_of(20, h * HOUR) for h in range(0, 60, 3)]
    for series in (by_votes, by_span):
        assert series == sorted(series)
        assert series[0] < series[-1] == 1.0
        assert all(round(t / 0.05, 9).is_integer() for t in series)
        assert all(FLOOR <= t <= 1.0 for t in series)
    assert trust_of(5, 3 * DAY) == pytest.approx(0.55)  # floor + 0.9 * 5/10, stepped


def test_a_floor_of_one_turns_the_bound_off() -> None:
    assert trust_of(1, 0.0, FraudConfig(trust_floor=1.0)) == 1.0


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("trust_floor", 0.0),
        ("trust_floor", 1.5),
        ("trust_full_votes", 0),
        ("trust_return_s", -1.0),
        ("trust_full_s", 3600.0),  # not beyond trust_return_s (6 h)
        ("trust_full_s", float("nan")),
    ],
)
def test_bad_trust_settings_are_refused_naming_them(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        FraudConfig(**{field: bad})  # type: ignore[arg-type]


def test_voter_trust_reads_each_voters_own_history() -> None:
    votes = returning("back", 3, 6) + cast("once", 30, honest())
    assert voter_trust(votes) == {"back": 1.0, "once": FLOOR}


# -- in the replayed leaderboard ------------------------------------------------------------------


def arena() -> tuple[list[VoteEvidence], list[VoteEvidence]]:
    """Forty returning honest voters over three days and, meanwhile, two hundred fresh
    identities in one sitting each (20 minutes apart) that only vote in battles showing
    TARGET and always choose it."""
    crowd = [v for i in range(40) for v in returning(f"h{i:02d}", 3, 8, seed=i)]
    push = [
        VoteEvidence(
            **{
                **v.__dict__,
                "time_s": DAY / 2 + v.time_s // (3 * HOUR) * 1200 + v.time_s % (3 * HOUR),
            }
        )
        for v in sybils(200, votes_each=6)
    ]
    return crowd, push


def test_fresh_identities_count_a_tenth_and_returning_voters_in_full() -> None:
    crowd, push = arena()
    result = replay_scans(crowd + push, scan_every_s=900)
    counted_push = [v for v in push if v.vote_id not in result.excluded]
    assert all(result.weights[v.vote_id] == FLOOR for v in counted_push)
    assert not any(v.vote_id in result.weights for v in crowd)
    assert {result.trust[v.voter] for v in crowd} == {1.0}


def test_the_floor_alone_keeps_forty_fresh_identities_from_moving_a_model() -> None:
    crowd, push = arena()
    push = push[: 40 * 6]
    # Detection off but for the speed test (which never excludes): the floor alone must hold.
    config = FraudConfig(detectors=("speed",))
    result = replay_scans(crowd + push, scan_every_s=900, config=config)
    assert result.excluded == frozenset()
    honest_only = Consensus.from_votes(crowd).scores
    unbounded = Consensus.from_votes(crowd + push).scores
    bounded = Consensus.from_votes(crowd + push, weights=result.weights).scores

    def rank(scores: Mapping[str, float]) -> int:
        return sorted(MODELS, key=lambda m: -scores[m]).index(TARGET)

    assert rank(unbounded) < rank(honest_only) - 2  # 240 votes for it buy places ...
    assert rank(bounded) >= rank(honest_only) - 1  # ... at a tenth, one at most


def test_a_mass_of_them_is_left_to_the_campaign_search() -> None:
    # Two hundred identities at a tenth are still 120 votes' worth: as a group their results
    # depart from the established voters', and the campaign search keeps them out.
    crowd, push = arena()
    result = replay_scans(crowd + push, scan_every_s=900)
    kept = [v for v in push if v.vote_id not in result.excluded]
    assert len(kept) <= 0.05 * len(push)
    assert not any(v.vote_id in result.excluded for v in crowd)


def test_replayed_weights_are_a_function_of_the_log() -> None:
    crowd, push = arena()
    a = replay_scans(crowd + push[:300], scan_every_s=900)
    b = replay_scans(list(reversed(crowd + push[:300])), scan_every_s=900)
    assert a.weights == b.weights and a.trust == b.trust


def test_consensus_weights_must_name_votes_with_a_weight() -> None:
    votes = cast("v", 12, honest())
    full = Consensus.from_votes(votes).scores
    assert Consensus.from_votes(votes, weights={}).scores == full
    halved = Consensus.from_votes(votes, weights={v.vote_id: 0.5 for v in votes}).scores
    assert halved != full  # the same data at half the weight: the prior pulls harder
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^weight: "):
            Consensus.from_votes(votes, weights={votes[0].vote_id: bad})


def test_the_attack_benchmark_takes_config_changes_and_refuses_bad_ones() -> None:
    from benchmarks.attack_sim import _config

    changed = _config(["targeting_strong_shift=4.5", "trust_full_votes=20"])
    assert (changed.targeting_strong_shift, changed.trust_full_votes) == (4.5, 20)
    assert _config(["targeting_scoped=false"]).targeting_scoped is False  # not bool("false")
    assert _config(["targeting_scoped=True"]).targeting_scoped is True
    assert _config([]) == FraudConfig()
    for bad in ("nope=1", "trust_floor", "trust_floor=2", "targeting_scoped=maybe"):
        with pytest.raises(ValueError):
            _config([bad])
