"""Campaigns, the clean consensus, noise-calibrated disagreement and the replayed scan pipeline."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ranking import PairCounts
from ranking.fraud import (
    CampaignFinding,
    Consensus,
    DetectorResult,
    FraudConfig,
    StepResult,
    VoteEvidence,
    clean_consensus,
    decide,
    replay_scans,
    scan,
    scan_step,
)
from ranking.fraud.evidence import DETECTORS
from tests.ranking.test_fraud import (
    CROWD,
    MODELS,
    SPREAD,
    Chooser,
    cast,
    honest,
    promoter,
    random_clicker,
    vote,
)

TARGET = "m7"  # weak in SPREAD: the crowd picks it against a random rival about 27% of the time


def sybils(
    n: int,
    *,
    votes_each: int = 6,
    target: str = TARGET,
    start: float = 0.0,
    seed: int = 0,
    models: list[str] = MODELS,
) -> list[VoteEvidence]:
    """Fresh identities, each on its own prefix, that only vote in battles showing ``target``
    (they abandon the others) and always choose it, at human pace, a few hours apart."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        voter = f"sybil{seed}-{i:03d}"
        t0 = start + i * 3 * 3600.0
        for j in range(votes_each):
            rival = rng.choice([m for m in models if m != target])
            slots = (target, rival) if rng.random() < 0.5 else (rival, target)
            out.append(
                vote(
                    f"{voter}-{j}",
                    voter,
                    t0 + 40.0 * j,
                    slots,
                    slots.index(target),
                    prefix=f"net-{voter}",
                    ua=f"ua{rng.randrange(5)}",
                    first_seen=t0 - 5.0,
                )
            )
    return out


def counted(votes: list[VoteEvidence]) -> PairCounts:
    return PairCounts.from_rankings(MODELS, [v.ranking for v in votes])


def step_on(votes: list[VoteEvidence], config: FraudConfig | None = None) -> StepResult:
    return scan_step(votes, counted(votes), recent=votes, config=config or FraudConfig())


# -- campaigns -----------------------------------------------------------------------------------


def test_it_finds_a_campaign_of_fresh_identities_on_their_own_prefixes_and_excludes_them() -> None:
    attack = sybils(30)
    step = step_on(CROWD + attack)
    assert [(f.model, f.direction) for f in step.campaigns] == [(TARGET, "promote")]
    finding = step.campaigns[0]
    attackers = {v.voter for v in attack}
    assert set(finding.members) == attackers
    for voter in attackers:
        report = step.reports[voter]
        assert report.verdict == "excluded"
        assert report.result("campaign").level == "strong"
        assert report.result("campaign").evidence["model"] == TARGET
    # Each identity alone is only a few votes: the individual detectors let most of them pass.
    alone = scan(CROWD + attack, SPREAD, config=FraudConfig(detectors=DETECTORS[:-1]))
    assert sum(alone[v].verdict == "excluded" for v in attackers) < len(attackers) // 2


def test_it_measures_how_far_the_campaign_moved_its_model() -> None:
    finding = step_on(CROWD + sybils(30)).campaigns[0]
    assert next(iter(finding.influence)) == TARGET  # the biggest move is the target's
    assert finding.influence[TARGET] > 0.5  # logits, ~90 Elo


def test_it_finds_a_campaign_that_demotes_a_model() -> None:
    rng = random.Random(3)
    attack = []
    for i in range(25):
        voter = f"d{i}"
        for j in range(6):
            rival = rng.choice([m for m in MODELS if m != "m1"])
            attack.append(
                vote(
                    f"{voter}-{j}", voter, i * 9000.0 + 30 * j, ("m1", rival), 1, prefix=f"n{voter}"
                )
            )
    step = step_on(CROWD + attack)
    assert [(f.model, f.direction) for f in step.campaigns] == [("m1", "demote")]


def test_it_finds_no_campaign_among_honest_voters() -> None:
    crowd = [v for i in range(120) for v in cast(f"h{i}", 15, honest(), seed=i, start=i * 500.0)]
    assert step_on(crowd).campaigns == ()


def fan_of(model: str, strength: float = 0.8) -> Chooser:
    """An honest fan: picks ``model`` 80% of the times it is shown, like the crowd otherwise."""

    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if model in slots and rng.random() < strength:
            return slots.index(model)
        return honest()(slots, rng)

    return choose


def test_it_does_not_take_fans_of_a_model_for_a_campaign() -> None:
    fans = [v for i in range(40) for v in cast(f"fan{i}", 30, fan_of(TARGET), seed=i)]
    step = step_on(CROWD + fans)
    assert step.campaigns == ()
    assert all(step.reports[f"fan{i}"].verdict != "excluded" for i in range(40))


def test_a_campaign_needs_more_identities_than_chance_allows() -> None:
    step = step_on(CROWD + sybils(2))
    assert step.campaigns == ()


def test_a_finding_round_trips_through_json_and_drops_cleared_members() -> None:
    finding = step_on(CROWD + sybils(10)).campaigns[0]
    again = CampaignFinding.from_dict(finding.to_dict())
    assert again.members == finding.members
    assert again.influence == pytest.approx(finding.influence, abs=1e-4)
    cleared = again.without([finding.members[0]])
    assert finding.members[0] not in cleared.members
    assert len(cleared.members) == len(finding.members) - 1
    with pytest.raises(ValueError, match="not a campaign finding"):
        CampaignFinding.from_dict({"model": "m1"})


def test_campaigns_in_force_keep_their_members_when_they_stop_voting() -> None:
    first = step_on(CROWD + sybils(20))
    later = scan_step(
        CROWD + sybils(20),
        counted(CROWD),
        judge={"sybil0-000"},
        campaigns=first.campaigns,
    )
    assert later.reports["sybil0-000"].verdict == "excluded"
    assert later.campaigns == first.campaigns


# -- the clean consensus, noise and the verdict rules ------------------------------------------------


def test_the_consensus_leaves_out_the_voters_under_judgement() -> None:
    burst = sybils(40, votes_each=8)
    everything = counted(CROWD + burst)
    dirty = clean_consensus(everything, [])
    clean = clean_consensus(everything, burst)
    assert dirty.score(TARGET) > clean.score(TARGET) + 0.5
    assert clean.score(TARGET) == pytest.approx(Consensus.from_votes(CROWD).score(TARGET), abs=0.05)


def test_judged_votes_stay_in_the_consensus_when_they_are_most_of_it() -> None:
    few = CROWD[:40]
    counts = counted(few)
    assert clean_consensus(counts, few).scores == clean_consensus(counts, []).scores


def noisy(lapse: float) -> Chooser:
    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if rng.random() < lapse:
            return rng.randrange(len(slots))
        return honest()(slots, rng)

    return choose


def test_a_heavy_noisy_honest_voter_is_not_excluded_for_volume_but_a_random_clicker_is() -> None:
    for seed in range(5):
        heavy = cast("heavy", 400, noisy(0.25), seed=seed)
        assert scan(CROWD + heavy, SPREAD)["heavy"].result("crowd_disagreement").level == "ok"
    clicker = cast("clicker", 200, random_clicker)
    assert scan(CROWD + clicker, SPREAD)["clicker"].verdict == "excluded"


def test_without_the_noise_allowance_the_same_honest_voter_would_be_excluded() -> None:
    strict = FraudConfig(disagreement_lapse=0.0)
    caught = sum(
        scan(CROWD + cast("heavy", 400, noisy(0.25), seed=s), SPREAD, config=strict)[
            "heavy"
        ].verdict
        == "excluded"
        for s in range(5)
    )
    assert caught >= 3


def test_a_busy_network_prefix_alone_never_adds_a_family_of_evidence() -> None:
    def result(detector: str, evidence: dict[str, object]) -> DetectorResult:
        return DetectorResult(detector, "suspicious", 1.0, "", evidence)

    ok = [DetectorResult(d, "ok", 0.0, "", {}) for d in DETECTORS]
    prefix = [r if r.detector != "rate" else result("rate", {"prefix_only": True}) for r in ok]
    both = [r if r.detector != "model_targeting" else result("model_targeting", {}) for r in prefix]
    assert decide(both) == ("suspicious", ("rate", "model_targeting"))
    own = [r if r.detector != "rate" else result("rate", {"prefix_only": False}) for r in both]
    assert decide(own)[0] == "excluded"


# -- the replayed pipeline ------------------------------------------------------------------------


def world() -> list[VoteEvidence]:
    crowd = [v for i in range(60) for v in cast(f"h{i}", 20, honest(), seed=i, start=i * 1800.0)]
    return crowd + sybils(20, start=3600.0)


def test_replaying_the_log_excludes_the_campaign_and_no_honest_voter() -> None:
    votes = world()
    result = replay_scans(votes, scan_every_s=600)
    attackers = {v.voter for v in votes if v.voter.startswith("sybil")}
    assert {v for v, verdict in result.verdicts.items() if verdict == "excluded"} == attackers
    assert result.excluded == {v.vote_id for v in votes if v.voter in attackers}
    assert [f.model for f in result.campaigns] == [TARGET]
    # Everybody here voted in one sitting: every counted vote weighs the trust floor.
    counted = {v.vote_id for v in votes} - result.excluded
    assert result.weights == dict.fromkeys(sorted(counted), FraudConfig().trust_floor)
    assert result.scans > 10


def test_replaying_keeps_out_a_lone_promoters_votes_on_its_model_and_counts_the_rest() -> None:
    crowd = [v for i in range(60) for v in cast(f"h{i}", 20, honest(), seed=i, start=i * 1800.0)]
    # One established identity, back every few hours for days, always choosing m7 when shown.
    fan = [
        v
        for day in range(6)
        for v in cast("fan", 25, promoter(TARGET), seed=100 + day, start=day * 86_400.0, gap=60.0)
    ]
    fan = [VoteEvidence(**{**v.__dict__, "vote_id": f"fan{i}"}) for i, v in enumerate(fan)]

    result = replay_scans(crowd + fan, scan_every_s=900)

    assert result.verdicts["fan"] == "suspicious"
    on_target = {v.vote_id for v in fan if TARGET in v.slots}
    assert result.excluded == on_target == set(result.reports["fan"].kept_out)
    # Its other votes count, at the trust floor while the finding stands (six days of
    # returning would otherwise have earned it full trust).
    floor = FraudConfig().trust_floor
    assert result.trust["fan"] == floor
    assert {result.weights[v.vote_id] for v in fan if v.vote_id not in on_target} == {floor}


def test_replaying_is_deterministic_whatever_the_order_of_the_log() -> None:
    votes = world()
    a = replay_scans(votes, scan_every_s=900)
    b = replay_scans(list(reversed(votes)), scan_every_s=900)
    assert a.excluded == b.excluded
    assert a.verdicts == b.verdicts


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "300", True])
def test_replay_rejects_a_bad_scan_interval_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^scan_every_s: "):
        replay_scans(CROWD[:10], scan_every_s=bad)  # type: ignore[arg-type]


def test_scan_step_rejects_bad_arguments_naming_them() -> None:
    with pytest.raises(ValueError, match=r"^counted: "):
        scan_step(CROWD, SPREAD)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^campaigns: "):
        scan_step(CROWD, counted(CROWD), campaigns=["x"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"^campaigns: must be a sequence of CampaignFinding"):
        scan_step(CROWD, counted(CROWD), campaigns="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^votes: "):
        replay_scans("votes")  # type: ignore[arg-type]


# -- the light-identity influence bound ------------------------------------------------------------


def light_pushers(n: int, *, target: str = TARGET) -> list[VoteEvidence]:
    """Identities of three votes each in whatever battles they get (no abandoning), choosing
    ``target`` when it is shown and like the crowd otherwise: nothing to see per identity."""
    out: list[VoteEvidence] = []
    for i in range(n):
        choose: Chooser = lambda slots, rng: (  # noqa: E731
            slots.index(target) if target in slots else honest()(slots, rng)
        )
        out += cast(f"light{i:03d}", 3, choose, seed=i, start=5000.0 + 600.0 * i)
    return out


def test_light_identities_pushing_a_model_as_a_whole_lose_their_votes_on_it_not_their_standing() -> (
    None
):
    attack = light_pushers(300)
    step = step_on(CROWD + attack)
    light = [f for f in step.campaigns if f.kind == "light"]
    assert [(f.model, f.direction) for f in light] == [(TARGET, "promote")]
    assert light[0].members == ()
    # Every light vote showing the model is cut, whatever it chose; the others stay.
    assert set(step.excluded_votes) == {v.vote_id for v in attack if TARGET in v.slots}
    assert all(r.verdict != "excluded" for v, r in step.reports.items() if v.startswith("light"))


def test_honest_light_identities_keep_their_votes() -> None:
    newcomers = [v for i in range(300) for v in cast(f"new{i}", 3, honest(), seed=i)]
    assert step_on(CROWD + newcomers).excluded_votes == frozenset()


def returning_promoters(n: int, *, seed: int = 5) -> list[VoteEvidence]:
    """Identities with a history of their own (three days, 12 votes each): on each day three
    votes for ``TARGET`` in battles showing it and one honest vote elsewhere."""
    rng = random.Random(seed)
    others = [m for m in MODELS if m != TARGET]
    out = []
    for i in range(n):
        voter = f"back{i:03d}"
        for day in range(3):
            t0 = 40_000.0 + day * 86_400.0 + i * 600.0
            for j in range(4):
                slots: tuple[str, ...]
                if j < 3:
                    rival = rng.choice(others)
                    slots = (TARGET, rival) if rng.random() < 0.5 else (rival, TARGET)
                    win = slots.index(TARGET)
                else:
                    slots = tuple(rng.sample(others, 2))
                    win = honest()(slots, rng) or 0
                out.append(
                    vote(
                        f"{voter}-{day}-{j}", voter, t0 + 40.0 * j, slots, win, prefix=f"n-{voter}"
                    )
                )
    return out


def test_a_campaign_member_with_a_history_of_its_own_loses_its_say_on_the_model_not_itself() -> (
    None
):
    """Returning identities can be people with a strong taste swept into a campaign on their
    favourite: their votes showing the model go and their trust is held at the floor, but they
    are not excluded. Fresh identities in the same campaign are."""
    back = returning_promoters(16)
    fresh = sybils(16, start=50_000.0)
    step = step_on(CROWD + back + fresh)
    (finding,) = [f for f in step.campaigns if f.kind == "identities"]
    assert finding.model == TARGET
    for voter in {v.voter for v in back}:
        report = step.reports[voter]
        assert report.result("campaign").evidence["scoped"] is True
        assert report.verdict == "suspicious" and report.trust_capped
        theirs = [v for v in back if v.voter == voter]
        assert set(report.kept_out) == {v.vote_id for v in theirs if TARGET in v.slots}
        assert len(report.kept_out) < len(theirs)  # the honest votes elsewhere stay in
    for voter in {v.voter for v in fresh}:
        assert step.reports[voter].verdict == "excluded"
        assert step.reports[voter].result("campaign").evidence["scoped"] is False


def test_a_returning_members_campaign_and_targeting_on_one_model_are_one_family() -> None:
    def on(model: str) -> list[DetectorResult]:
        evidence: dict[str, dict[str, Any]] = {
            "model_targeting": {"model": "m7"},
            "campaign": {"model": model, "scoped": True},
        }
        return [
            DetectorResult(d, "strong" if d in evidence else "ok", 0.0, "", evidence.get(d, {}))
            for d in DETECTORS
        ]

    assert decide(on("m7"))[0] == "suspicious"  # one habit, read twice
    assert decide(on("m3"))[0] == "excluded"  # two models: two pieces of evidence


def slow_promoters(n: int, *, seed: int = 9) -> list[VoteEvidence]:
    """Identities voting 4 times a day for 4 days, honestly except that they pick ``TARGET``
    whenever it is shown and abandon half the battles without it (a third of their votes show
    it): too little each to be a campaign candidate."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        voter = f"slow{i:03d}"
        for day in range(4):
            t0 = 30_000.0 + day * 86_400.0 + i * 900.0
            j = 0
            while j < 4:
                slots = tuple(rng.sample(MODELS, 2))
                if TARGET not in slots and rng.random() < 0.5:
                    continue  # abandoned: ask for another battle
                win = slots.index(TARGET) if TARGET in slots else (honest()(slots, rng) or 0)
                out.append(vote(f"{voter}-{day}-{j}", voter, t0 + 40.0 * j, slots, win))
                j += 1
    return out


def test_a_unanimous_group_too_weak_to_be_candidates_is_found_and_loses_its_say() -> None:
    attack = slow_promoters(40)
    attackers = {v.voter for v in attack}
    step = step_on(CROWD + attack)
    unanimous = [f for f in step.campaigns if f.kind == "unanimous"]
    assert [(f.model, f.direction) for f in unanimous] == [(TARGET, "promote")]
    finding = unanimous[0]
    assert len(finding.members) >= 2 * finding.expected_members and len(finding.members) >= 10
    assert set(finding.members) <= attackers | {v.voter for v in CROWD}
    assert "unanimously promoting m7" in finding.summary
    for voter in finding.members:
        report = step.reports[voter]
        assert report.verdict != "excluded", "membership alone never excludes"
        assert report.trust_capped
        mine = [v for v in CROWD + attack if v.voter == voter]
        assert set(report.kept_out) == {v.vote_id for v in mine if TARGET in v.slots}


def test_once_a_campaign_is_found_unanimous_identities_pushing_its_model_join_it() -> None:
    """Ten slow promoters are too few to be a unanimous group on their own (the test is one of
    4 x models); once fresh sybils have made the campaign on the same model, whether more
    identities are with it is one question asked in advance, and the slow ones lose their say."""
    slow = slow_promoters(10)
    slow_ids = {v.voter for v in slow}
    assert not [f for f in step_on(CROWD + slow).campaigns if f.kind == "unanimous"]

    step = step_on(CROWD + sybils(16, start=50_000.0) + slow)

    (joined,) = [f for f in step.campaigns if f.kind == "unanimous"]
    assert (joined.model, joined.direction) == (TARGET, "promote")
    assert set(joined.members) <= slow_ids and len(joined.members) >= 7
    assert joined.p_adjusted == joined.p_value <= FraudConfig().campaign_join_p
    for voter in joined.members:
        report = step.reports[voter]
        assert report.trust_capped and report.verdict != "excluded"


def test_a_campaign_found_on_one_model_does_not_pull_in_unanimous_fans_of_another() -> None:
    fans = [v for i in range(20) for v in cast(f"fan{i}", 30, fan_of("m4"), seed=i)]
    step = step_on(CROWD + sybils(16, start=50_000.0) + fans)
    assert [(f.model, f.kind) for f in step.campaigns] == [(TARGET, "identities")]
    assert not any(step.reports[f"fan{i}"].trust_capped for i in range(20))


def test_an_honest_crowd_has_no_unanimous_group() -> None:
    from ranking.fraud.campaign import find_unanimous
    from ranking.fraud.consensus import _prepare

    preps = [_prepare(v, SPREAD) for v in CROWD]
    assert find_unanimous(preps, FraudConfig(), len(MODELS)) == []
