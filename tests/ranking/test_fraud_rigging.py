"""Rank rigging (Min et al., ICML 2025, "omnipresent" rigging): a model lifted through battles it
is not in, by voting against the models ranked just above it. ``model_targeting`` joins the
target's near all-or-nothing choices with its rank neighbours' to see it where each model alone
is shown too rarely for significance."""

from __future__ import annotations

import random

import pytest

from ranking.fraud import Consensus, FraudConfig, VoteEvidence, scan
from tests.ranking.test_fraud import CROWD, SPREAD, Chooser, cast, crowd, honest

#: Twenty models 0.2 logits apart, r00 the best: in 100 votes each is shown about ten times, too
#: rarely (in the seeded case below) for one model's all-or-nothing record to be significant
#: after 40 tests.
WIDE = [f"r{i:02d}" for i in range(20)]
WIDE_CONSENSUS = Consensus({m: 1.9 - 0.2 * i for i, m in enumerate(WIDE)})


def wide_crowd(n_voters: int = 40, n_votes: int = 30) -> list[VoteEvidence]:
    out: list[VoteEvidence] = []
    for i in range(n_voters):
        out += cast(f"w{i:03d}", n_votes, honest(WIDE_CONSENSUS), start=i * 12_000.0, models=WIDE)
    return out


WIDE_CROWD = wide_crowd()


def rigger(target: str, hurt: tuple[str, ...], consensus: Consensus) -> Chooser:
    """Chooses ``target`` whenever shown; otherwise never one of ``hurt``; else like the crowd."""
    crowd_choice = honest(consensus)

    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if target in slots:
            return slots.index(target)
        spared = [i for i, m in enumerate(slots) if m not in hurt]
        if len(spared) < len(slots) and spared:
            return spared[0]
        return crowd_choice(slots, rng)

    return choose


def test_a_rigger_lifting_its_model_past_the_two_above_is_caught_as_one_finding() -> None:
    votes = cast("rig", 100, rigger("r12", ("r11", "r10"), WIDE_CONSENSUS), seed=7, models=WIDE)

    rep = scan(WIDE_CROWD + votes, WIDE_CONSENSUS)["rig"]
    res = rep.result("model_targeting")

    assert res.level == "strong", res.summary
    assert res.evidence["model"] == "r12" and res.evidence["direction"] == "promote"
    neighbours = res.evidence["rigging"]["neighbours"]
    assert {n["model"] for n in neighbours} == {"r11", "r10"}
    assert all(n["chosen"] == 0 and n["direction"] == "demote" for n in neighbours)
    assert res.summary.startswith("rank rigging: chose r12 in")
    # Its say on the rigged models is kept out: the votes that showed any of them.
    rigged = {"r12", "r11", "r10"}
    assert set(rep.kept_out) == {v.vote_id for v in votes if rigged & set(v.slots)}
    assert rep.verdict == "suspicious"


def test_without_the_rank_test_the_same_rigger_is_not_strong() -> None:
    votes = cast("rig", 100, rigger("r12", ("r11", "r10"), WIDE_CONSENSUS), seed=7, models=WIDE)

    config = FraudConfig(rigging_window=0)
    rep = scan(WIDE_CROWD + votes, WIDE_CONSENSUS, config=config)["rig"]

    assert rep.result("model_targeting").level == "ok"
    assert rep.kept_out == ()


def test_a_demoter_holding_a_model_under_the_two_below_it_is_caught() -> None:
    def sink(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if "m2" in slots:
            return 1 - slots.index("m2")
        lifted = [i for i, m in enumerate(slots) if m in ("m3", "m4")]
        return lifted[0] if lifted else honest()(slots, rng)

    votes = cast("sink", 30, sink, seed=3)
    res = scan(CROWD + votes, SPREAD)["sink"].result("model_targeting")
    alone = scan(CROWD + votes, SPREAD, config=FraudConfig(rigging_window=0))["sink"]

    assert res.level == "strong", res.summary
    assert res.evidence["model"] == "m2" and res.evidence["direction"] == "demote"
    neighbours = res.evidence["rigging"]["neighbours"]
    assert {n["model"] for n in neighbours} == {"m3", "m4"}
    assert all(n["direction"] == "promote" and n["chosen"] == n["shown"] for n in neighbours)
    assert alone.result("model_targeting").level == "ok"  # m2's 0 wins alone are too few


def test_a_fan_of_one_model_is_not_a_rigger() -> None:
    # Loves m6 (picks it 85% of the time) and otherwise chooses like the crowd.
    def fan(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if "m6" in slots and rng.random() < 0.85:
            return slots.index("m6")
        return honest()(slots, rng)

    reports = scan(CROWD + cast("fan", 60, fan, seed=1), SPREAD)

    assert reports["fan"].result("model_targeting").evidence.get("rigging") is None
    assert reports["fan"].verdict != "excluded"


def _taster(sd: float, seed: int) -> Chooser:
    """An honest voter with a taste of its own: every model's score moved by N(0, sd) logits."""
    rng = random.Random(seed)
    own = Consensus({m: s + rng.gauss(0.0, sd) for m, s in WIDE_CONSENSUS.scores.items()})
    return honest(own)


def test_honest_voters_with_tastes_of_their_own_are_not_rank_riggers() -> None:
    votes: list[VoteEvidence] = []
    for i in range(300):
        votes += cast(f"t{i:03d}", 80, _taster(1.0, i), seed=i, models=WIDE, start=i * 5e3)

    reports = scan(WIDE_CROWD + votes, WIDE_CONSENSUS)

    rigging = [
        r.summary
        for v, rep in reports.items()
        if v.startswith("t") and (r := rep.result("model_targeting")).evidence.get("rigging")
    ]
    assert rigging == []


@pytest.mark.parametrize(
    ("votes", "consensus"),
    [(crowd(n_voters=120, n_votes=60), SPREAD), (wide_crowd(200, 80), WIDE_CONSENSUS)],
    ids=["10 models", "20 models"],
)
def test_honest_voters_of_the_crowd_are_never_strong_rank_riggers(
    votes: list[VoteEvidence], consensus: Consensus
) -> None:
    reports = scan(votes, consensus)

    levels = [r.result("model_targeting") for r in reports.values()]
    assert [r.summary for r in levels if r.level == "strong"] == []
    assert sum(r.level == "suspicious" for r in levels) <= 0.01 * len(levels)


@pytest.mark.parametrize("window", [-1, 7, True])
def test_it_refuses_a_bad_rigging_window(window: object) -> None:
    with pytest.raises(ValueError, match=r"^rigging_window: "):
        FraudConfig(rigging_window=window)  # type: ignore[arg-type]
