"""The crowd_echo detector: an identity choosing with the board more reliably than the crowd's
odds allow is capped at the trust floor, never excluded on that alone."""

from __future__ import annotations

import math
import random

import pytest

from ranking.fraud import (
    Consensus,
    FraudConfig,
    VoteEvidence,
    capping,
    decide,
    replay_scans,
    scan,
)
from ranking.fraud.consensus import _prepare
from ranking.fraud.echo import echo_z
from tests.ranking.test_fraud import CROWD, MODELS, SPREAD, Chooser, cast, results, vote

DAY = 86_400.0
SPREAD_MODELS = list(MODELS)


def sharp(beta: float, consensus: Consensus = SPREAD) -> Chooser:
    """Chooses with the consensus odds raised to ``beta`` (1: like the crowd)."""

    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        weights = [p**beta for p in consensus.probs(slots)]
        return rng.choices(range(len(slots)), weights=weights)[0]

    return choose


def board(slots: tuple[str, ...], rng: random.Random) -> int | None:
    """Picks whichever model the public board ranks higher, always."""
    probs = SPREAD.probs(slots)
    return probs.index(max(probs))


def camouflaged(model: str) -> Chooser:
    """Copies the board, except that it picks ``model`` in close contests (the rival within
    a logit, so the upsets look like taste)."""

    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if model in slots:
            rival = slots[1 - slots.index(model)]
            if abs(SPREAD.scores[rival] - SPREAD.scores[model]) <= 1.0:
                return slots.index(model)
        return board(slots, rng)

    return choose


def over_days(voter: str, n: int, choose: Chooser, *, days: int = 4) -> list[VoteEvidence]:
    """``n`` votes spread over ``days`` daily sittings (enough history for full trust)."""
    per = math.ceil(n / days)
    out: list[VoteEvidence] = []
    for d in range(days):
        for v in cast(voter, per, choose, seed=d, start=d * DAY):
            out.append(VoteEvidence(**{**v.__dict__, "vote_id": f"{v.vote_id}-d{d}"}))
    return out[:n]


def z_of(votes: list[VoteEvidence], beta0: float = 1.5) -> float:
    return echo_z([p for p in (_prepare(v, SPREAD) for v in votes) if p.decided], beta0)


def test_the_score_is_centred_at_the_tested_sharpness_and_negative_for_the_crowd() -> None:
    at_bound = [z_of(cast(f"b{i}", 200, sharp(1.5), seed=i)) for i in range(30)]
    like_crowd = [z_of(cast(f"c{i}", 200, sharp(1.0), seed=i)) for i in range(30)]
    assert abs(sum(at_bound) / 30) < 0.6  # ~N(0, 1) at the boundary
    assert max(like_crowd) < 0.0  # every crowd-like voter well inside


def test_it_caps_a_voter_who_copies_the_board_without_excluding_it() -> None:
    rep = scan(CROWD + cast("copier", 100, board), SPREAD)["copier"]
    echo = rep.result("crowd_echo")
    assert echo.level == "strong"
    assert echo.evidence["z"] >= 3.0
    assert "sharper than 1.5x the crowd's odds" in echo.summary
    assert rep.verdict == "suspicious" and rep.reasons == ("crowd_echo",)
    assert rep.trust_capped and rep.kept_out == ()


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.2])
def test_it_leaves_honest_voters_alone_however_many_votes_they_cast(beta: float) -> None:
    """Flatter than the crowd (lapses), like it, or a fifth sharper (consistent taste)."""
    votes = CROWD + [v for i in range(10) for v in cast(f"h{i}", 300, sharp(beta), seed=i)]
    reports = scan(votes, SPREAD)
    for i in range(10):
        rep = reports[f"h{i}"]
        assert rep.result("crowd_echo").level == "ok", rep.result("crowd_echo").summary
        assert not rep.trust_capped


def test_a_few_sharp_votes_are_only_suspicious() -> None:
    rep = scan(CROWD + cast("few", 20, board), SPREAD, config=FraudConfig(echo_z=1.0))["few"]
    assert rep.result("crowd_echo").level == "suspicious"
    assert not rep.trust_capped


def test_echo_with_a_second_family_of_evidence_excludes() -> None:
    assert decide(results(crowd_echo="strong")) == ("suspicious", ("crowd_echo",))
    assert decide(results(crowd_echo="strong", speed="suspicious"))[0] == "excluded"
    both = decide(results(crowd_echo="strong", model_targeting="strong"))
    assert both == ("excluded", ("crowd_echo", "model_targeting"))
    assert capping(FraudConfig(targeting_scoped=False)) == frozenset({"crowd_echo"})


def test_a_few_deliberate_upsets_do_not_hide_a_camouflaged_promoter() -> None:
    rep = scan(CROWD + over_days("camo", 200, camouflaged("m8")), SPREAD)["camo"]
    assert rep.result("crowd_echo").level == "strong"
    assert rep.trust_capped or rep.verdict == "excluded"


def test_the_replay_weighs_a_copier_at_the_floor_and_an_honest_regular_in_full() -> None:
    votes = [v for i in range(12) for v in over_days(f"reg{i}", 40, sharp(1.0))]
    votes += over_days("copier", 120, board)
    votes.sort(key=lambda v: (v.time_s, v.vote_id))

    result = replay_scans(votes, scan_every_s=DAY)

    floor = FraudConfig().trust_floor
    assert result.trust["copier"] == pytest.approx(floor)
    assert all(result.trust[f"reg{i}"] == 1.0 for i in range(12))
    copier_votes = [v.vote_id for v in votes if v.voter == "copier"]
    assert all(result.weights[i] == pytest.approx(floor) for i in copier_votes)
    assert not result.excluded & set(copier_votes)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("echo_sharpness", 1.0),
        ("echo_sharpness", float("nan")),
        ("echo_z", 0.0),
        ("echo_min_votes", 0),
    ],
)
def test_bad_echo_settings_are_refused_naming_them(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        FraudConfig(**{field: bad})  # type: ignore[arg-type]


def test_evenly_matched_slots_have_no_favourite_to_echo() -> None:
    """Slot A 60% of the time among equal models is a position habit, not echoing the board."""
    even = Consensus({m: 0.0 for m in SPREAD.scores})
    votes = cast("habit", 500, lambda slots, rng: 0 if rng.random() < 0.6 else 1)
    rep = scan(votes, even)["habit"]
    assert rep.result("crowd_echo").evidence["z"] == 0.0
    assert rep.result("crowd_echo").level == "ok"


def test_a_fans_votes_for_its_model_are_left_out_of_the_echo_test() -> None:
    """A fan of the crowd's #1, shown it against its close rivals in half its battles, picks
    it every time (and is a little sharper than the crowd elsewhere): on all its votes it
    reads as sharper than the crowd, but the targeting test judges that taste, so echo leaves
    those votes out and one habit stays one family of evidence."""
    rng = random.Random(3)
    votes = []
    for i in range(300):
        rival = rng.choice(SPREAD_MODELS[1:3])
        pair = ["m0", rival]
        rng.shuffle(pair)  # the arena shuffles the slots
        slots = tuple(pair) if i % 2 else tuple(rng.sample(SPREAD_MODELS[1:], 2))
        pick = slots.index("m0") if "m0" in slots else sharp(1.2)(slots, rng)
        votes.append(vote(f"fan-{i}", "fan", (i // 75) * DAY + 60.0 * i, slots, pick))
    assert z_of(votes) >= 3.0  # on all its votes ...

    rep = scan(CROWD + votes, SPREAD)["fan"]
    assert rep.result("model_targeting").level != "ok"
    echo = rep.result("crowd_echo")
    assert echo.evidence["left_out_model"] == "m0"
    assert "without the votes showing m0" in echo.summary
    assert echo.level == "ok"  # ... but not without its favourite's
    assert rep.verdict != "excluded"
