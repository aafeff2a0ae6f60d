"""Fraud detection: crafted voters for each detector, the verdict rules, argument checks."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence

import pytest
from scipy.stats import binom

from ranking import Ranking
from ranking.fraud import (
    DETECTORS,
    Consensus,
    DetectorResult,
    FraudConfig,
    TrafficBaseline,
    VoteEvidence,
    choice_series,
    decide,
    poisson_binomial_sf,
    replay_scans,
    scan,
    taste_shift,
)

MODELS = [f"m{i}" for i in range(10)]
#: A spread leaderboard: m0 best (+2.25), m9 worst (-2.25), 0.5 logits apart.
SPREAD = Consensus({m: 2.25 - 0.5 * i for i, m in enumerate(MODELS)})

Chooser = Callable[[tuple[str, ...], random.Random], int | None]


def honest(consensus: Consensus = SPREAD) -> Chooser:
    """Chooses like the crowd: the consensus Plackett-Luce probabilities."""

    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        return rng.choices(range(len(slots)), weights=consensus.probs(slots))[0]

    return choose


def promoter(model: str) -> Chooser:
    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        return slots.index(model) if model in slots else honest()(slots, rng)

    return choose


def demoter(model: str) -> Chooser:
    def choose(slots: tuple[str, ...], rng: random.Random) -> int | None:
        if model in slots:
            return 1 - slots.index(model)
        return honest()(slots, rng)

    return choose


def random_clicker(slots: tuple[str, ...], rng: random.Random) -> int | None:
    return rng.randrange(len(slots))


def always_a(slots: tuple[str, ...], rng: random.Random) -> int | None:
    return 0


def vote(
    vote_id: str,
    voter: str,
    t: float,
    slots: tuple[str, ...],
    win: int | None,
    *,
    ttv: int = 6000,
    prefix: str = "",
    ua: str = "",
    first_seen: float | None = None,
) -> VoteEvidence:
    if win is None:
        ranking = Ranking.tie(slots)
    else:
        ranking = Ranking.best_of(slots[win], [m for i, m in enumerate(slots) if i != win])
    return VoteEvidence(
        vote_id=vote_id,
        voter=voter,
        time_s=t,
        slots=slots,
        ranking=ranking,
        time_to_vote_ms=ttv,
        prefix=prefix,
        user_agent=ua,
        first_seen_s=first_seen,
    )


def cast(
    voter: str,
    n: int,
    choose: Chooser,
    *,
    seed: int = 0,
    start: float = 0.0,
    gap: float = 12.0,
    ttv: int = 6000,
    prefix: str = "",
    ua: str = "ua",
    first_seen: float | None = -1e6,
    models: Sequence[str] = MODELS,
) -> list[VoteEvidence]:
    """``n`` pairwise votes of random pairs, ``gap`` seconds apart."""
    rng = random.Random(f"{voter}-{seed}")
    out = []
    for i in range(n):
        slots = tuple(rng.sample(list(models), 2))
        out.append(
            vote(
                f"{voter}-{i}",
                voter,
                start + i * gap,
                slots,
                choose(slots, rng),
                ttv=ttv,
                prefix=prefix or f"net-{voter}",
                ua=ua,
                first_seen=first_seen,
            )
        )
    return out


def crowd(n_voters: int = 40, n_votes: int = 25) -> list[VoteEvidence]:
    """Honest context: voters on their own prefixes, sessions a day apart."""
    out: list[VoteEvidence] = []
    for i in range(n_voters):
        out += cast(f"crowd{i:02d}", n_votes, honest(), start=i * 86_400.0 / 7)
    return out


CROWD = crowd()


# -- Consensus maths ---------------------------------------------------------------------------


def test_it_computes_pairwise_probabilities_with_the_logistic_function() -> None:
    c = Consensus({"a": 1.0, "b": -0.5})
    assert c.p_beats("a", "b") == pytest.approx(1.0 / (1.0 + math.exp(-1.5)))
    assert c.p_beats("a", "b") + c.p_beats("b", "a") == pytest.approx(1.0)
    assert c.p_best("a", ["b"]) == pytest.approx(c.p_beats("a", "b"))


def test_it_gives_plackett_luce_first_choices_that_sum_to_one() -> None:
    c = Consensus({"a": 1.0, "b": 0.2, "c": -0.3, "d": -2.0})
    players = ["a", "b", "c", "d"]
    total = sum(c.p_best(p, [q for q in players if q != p]) for p in players)
    assert total == pytest.approx(1.0)
    assert c.p_best("a", ["b", "c", "d"]) == pytest.approx(
        math.exp(1.0) / sum(math.exp(s) for s in (1.0, 0.2, -0.3, -2.0))
    )


def test_it_scores_unknown_models_at_the_mean() -> None:
    c = Consensus({"a": 0.7})
    assert c.score("new") == 0.0
    assert c.p_beats("new", "a") == pytest.approx(1.0 / (1.0 + math.exp(0.7)))


def test_it_fits_the_consensus_from_votes_in_the_right_order() -> None:
    c = Consensus.from_votes(CROWD)
    order = sorted(MODELS, key=lambda m: -c.scores[m])
    assert order[0] in ("m0", "m1") and order[-1] in ("m8", "m9")
    assert sum(c.scores.values()) == pytest.approx(0.0, abs=1e-6)  # the L2 prior centres it


# -- small statistics ----------------------------------------------------------------------------


def test_it_matches_the_binomial_tail_when_all_probabilities_are_equal() -> None:
    for k in (0, 3, 7, 12):
        expected = float(binom.sf(k - 1, 12, 0.3))
        assert poisson_binomial_sf([0.3] * 12, k) == pytest.approx(expected, rel=1e-9)


def test_it_estimates_the_taste_shift_that_explains_the_wins() -> None:
    ps = [0.45] * 40
    shift = taste_shift(ps, 28)  # 70% where 45% is predicted
    assert 1.0 / (1.0 + math.exp(-(math.log(0.45 / 0.55) + shift))) == pytest.approx(0.7)
    assert taste_shift(ps, 40) == math.inf and taste_shift(ps, 0) == -math.inf


# -- detectors -----------------------------------------------------------------------------------


def test_it_catches_a_promoter() -> None:
    votes = cast("promo", 150, promoter("m7"))
    rep = scan(CROWD + votes, SPREAD)["promo"]
    res = rep.result("model_targeting")
    assert res.level == "strong"
    assert res.evidence["model"] == "m7" and res.evidence["direction"] == "promote"
    assert set(res.vote_ids) == {v.vote_id for v in votes if "m7" in v.slots}
    # Choices alone: its votes where m7 was shown are kept out, not the voter.
    assert rep.verdict == "suspicious" and rep.reasons == ("model_targeting",)
    assert set(rep.kept_out) == {v.vote_id for v in votes if "m7" in v.slots}


def test_without_scoping_a_lone_targeting_finding_excludes_the_voter() -> None:
    votes = cast("promo", 150, promoter("m7"))
    rep = scan(CROWD + votes, SPREAD, config=FraudConfig(targeting_scoped=False))["promo"]
    assert rep.verdict == "excluded" and rep.reasons == ("model_targeting",)
    assert rep.kept_out == ()


def test_targeting_with_other_evidence_excludes_the_voter_whole() -> None:
    # Pushing m7 from slot A every time: targeting and position bias are two families.
    def promote_from_a(slots: tuple[str, ...], rng: random.Random) -> int:
        return slots.index("m7") if "m7" in slots else 0

    votes = cast("both", 150, promote_from_a)
    rep = scan(CROWD + votes, SPREAD)["both"]
    assert rep.result("model_targeting").level == "strong"
    assert rep.result("position_bias").level != "ok"
    assert rep.verdict == "excluded" and rep.kept_out == ()


def test_it_does_not_exclude_an_honest_voter_with_a_strong_genuine_taste() -> None:
    # "x" is predicted to win 45% against each opponent; this voter picks it 70% of the time.
    consensus = Consensus({"x": 0.0, "o1": 0.2007, "o2": 0.2007, "o3": 0.2007})
    votes = []
    for i in range(60):
        slots = ("x", f"o{1 + i % 3}") if i % 2 else (f"o{1 + i % 3}", "x")
        win = slots.index("x") if i % 10 < 7 else 1 - slots.index("x")
        votes.append(vote(f"t{i}", "taste", 15.0 * i, slots, win, prefix="net-t"))
    rep = scan(votes, consensus)["taste"]
    res = rep.result("model_targeting")
    assert res.evidence["model"] == "x" and res.evidence["chosen"] == 42
    assert res.evidence["expected"] == pytest.approx(27.0, abs=0.1)
    assert res.level != "strong"
    assert rep.verdict != "excluded"


def test_it_catches_a_demoter() -> None:
    votes = cast("demo", 150, demoter("m0"))
    rep = scan(CROWD + votes, SPREAD)["demo"]
    res = rep.result("model_targeting")
    assert res.level == "strong"
    assert res.evidence["model"] == "m0" and res.evidence["direction"] == "demote"
    assert res.evidence["chosen"] == 0
    assert rep.verdict == "suspicious"
    assert set(rep.kept_out) == {v.vote_id for v in votes if "m0" in v.slots}


def test_it_catches_an_always_slot_a_voter() -> None:
    rep = scan(CROWD + cast("first", 40, always_a), SPREAD)["first"]
    res = rep.result("position_bias")
    assert res.level == "strong"
    assert res.evidence["slot"] == "A" and res.evidence["chosen"] == 40
    assert res.summary.startswith("chose slot A in 40 of 40 decided votes")
    assert rep.verdict == "excluded"


def test_it_does_not_exclude_a_mildly_biased_honest_voter() -> None:
    # Evenly matched models, slot A chosen 60% of the time over 1000 votes: significant, but mild.
    consensus = Consensus({m: 0.0 for m in MODELS})
    votes = cast("mild", 1000, lambda slots, rng: 0 if rng.random() < 0.6 else 1, gap=60.0)
    rep = scan(votes, consensus)["mild"]
    res = rep.result("position_bias")
    assert res.evidence["p_adjusted"] < 1e-6  # a real bias ...
    assert res.level == "ok"  # ... too small to matter
    assert rep.verdict == "ok"


def _fast(voter: str, choose: Chooser) -> list[VoteEvidence]:
    votes = cast(voter, 40, choose, ttv=400) + cast(voter, 10, choose, ttv=5000, seed=1)
    return [
        VoteEvidence(**{**v.__dict__, "vote_id": f"{voter}{i}", "time_s": 20.0 * i})
        for i, v in enumerate(votes)
    ]


def test_it_suspects_a_fast_voter_and_names_the_fast_votes_but_speed_alone_never_excludes() -> None:
    votes = _fast("skimmer", honest())
    rep = scan(CROWD + votes, SPREAD)["skimmer"]
    res = rep.result("speed")
    assert res.level == "suspicious"
    assert set(res.vote_ids) == {v.vote_id for v in votes if v.time_to_vote_ms < 1500}
    assert len(res.vote_ids) == 40
    assert rep.verdict == "suspicious"  # an honest skimmer's choices still follow the crowd


def test_it_excludes_a_fast_clicker_whose_choices_are_random() -> None:
    rep = scan(CROWD + _fast("quick", random_clicker), SPREAD)["quick"]
    assert rep.result("speed").level == "suspicious"
    assert rep.verdict == "excluded"


def test_a_quick_person_who_skims_a_quarter_of_the_battles_is_not_suspected_for_speed() -> None:
    """Significant against the 5% honest rate (p ~ 1e-8), but most votes were looked at."""
    votes = cast("quick", 160, honest())
    votes = [
        VoteEvidence(**{**v.__dict__, "time_to_vote_ms": 900 if i % 4 == 0 else 3000})
        for i, v in enumerate(votes)
    ]
    res = scan(CROWD + votes, SPREAD)["quick"].result("speed")
    assert res.evidence["fast"] == 40 and res.evidence["p_value"] < 1e-6
    assert res.level == "ok"
    assert "suspicious from 50% of the votes" in res.summary


def test_it_leaves_a_voter_with_a_few_fast_votes_alone() -> None:
    votes = cast("skim", 60, honest())
    votes = [
        VoteEvidence(**{**v.__dict__, "time_to_vote_ms": 900 if i in (5, 30) else 6000})
        for i, v in enumerate(votes)
    ]
    assert scan(CROWD + votes, SPREAD)["skim"].result("speed").level == "ok"


def test_it_catches_an_impossible_rate() -> None:
    # Claims 6 s of viewing per vote but casts one every 0.5 s: a script or many tabs.
    votes = cast("script", 30, honest(), gap=0.5, ttv=6000)
    rep = scan(CROWD + votes, SPREAD)["script"]
    res = rep.result("rate")
    assert res.level == "strong"
    run = res.evidence["impossible_run"]
    assert run["votes"] == 30 and run["viewing_needed_s"] > run["span_s"]
    assert rep.result("speed").level == "ok"
    assert rep.verdict == "excluded"


def test_it_finds_a_busy_but_possible_voter_only_suspicious_on_rate() -> None:
    votes = cast("keen", 120, honest(), gap=4.0)  # 120 votes in 8 minutes
    normal = TrafficBaseline.from_votes(CROWD)  # a tiny arena's 99th percentile is its maximum
    rep = scan(CROWD + votes, SPREAD, baseline=normal)["keen"]
    assert rep.result("rate").level == "suspicious"
    assert rep.result("rate").evidence["max_window_votes"] == 120
    assert rep.verdict == "suspicious"


def sybils(n: int, prefix: str, target: str, start: float) -> list[VoteEvidence]:
    out = []
    rng = random.Random(prefix)
    for j in range(n):
        voter = f"{prefix}-s{j:02d}"
        t0 = start + 60.0 * j
        for i in range(5):
            other = rng.choice([m for m in MODELS if m != target])
            slots = (target, other) if rng.random() < 0.5 else (other, target)
            out.append(
                vote(
                    f"{voter}-{i}",
                    voter,
                    t0 + 10.0 * i,
                    slots,
                    slots.index(target),
                    prefix=prefix,
                    ua=f"ua{j % 4}",
                    first_seen=t0 - 5.0,
                )
            )
    return out


def test_it_catches_every_member_of_a_sybil_group_sharing_a_prefix() -> None:
    votes = sybils(15, "badnet", "m6", start=50_000.0)
    reports = scan(CROWD + votes, SPREAD, baseline=TrafficBaseline.from_votes(CROWD))
    members = {v.voter for v in votes}
    for m in members:
        rep = reports[m]
        assert rep.n_votes == 5
        assert rep.result("model_targeting").level != "strong"  # 5 votes alone prove nothing
        assert rep.result("coordination").level == "strong"
        assert rep.result("coordination").evidence["model"] == "m6"
        assert rep.result("coordination").evidence["members"] == 15
        flags = rep.result("rate").evidence["prefix_flags"]
        assert [f["kind"] for f in flags] == ["new_identities"] and flags[0]["count"] == 15
        assert rep.verdict == "excluded"


def test_it_does_not_flag_an_honest_campus_group_sharing_a_prefix() -> None:
    campus: list[VoteEvidence] = []
    for j in range(12):
        campus += cast(f"student{j}", 15, honest(), start=50_000.0 + 30.0 * j, prefix="campus")
    reports = scan(CROWD + campus, SPREAD)
    for j in range(12):
        rep = reports[f"student{j}"]
        assert rep.result("coordination").level == "ok"
        assert rep.verdict != "excluded"


def test_it_does_not_blame_a_campus_for_one_bot_among_students() -> None:
    campus: list[VoteEvidence] = []
    for j in range(3):
        campus += cast(f"student{j}", 15, honest(), start=50_000.0 + 30.0 * j, prefix="campus")
    campus += cast("bot", 150, promoter("m7"), start=50_000.0, gap=10.0, prefix="campus")
    reports = scan(CROWD + campus, SPREAD)
    assert reports["bot"].verdict == "suspicious" and len(reports["bot"].kept_out) > 20
    for j in range(3):
        assert reports[f"student{j}"].result("coordination").level == "ok"


def test_it_divides_the_group_thresholds_among_all_groups_tested() -> None:
    group = sybils(4, "smallnet", "m5", start=50_000.0)
    alone = scan(CROWD + group, SPREAD)[group[0].voter].result("coordination")
    campuses: list[VoteEvidence] = []
    for k in range(10):  # ten honest campus sessions: 10 prefix + 10 prefix+ua groups
        for j in range(3):
            campuses += cast(f"c{k}-{j}", 6, honest(), start=1e5 + 5e3 * k + 30 * j, prefix=f"c{k}")
    among = scan(CROWD + group + campuses, SPREAD)[group[0].voter].result("coordination")
    assert alone.evidence["groups_tested"] == 1 and among.evidence["groups_tested"] == 21
    assert among.evidence["p_adjusted"] == pytest.approx(21 * alone.evidence["p_adjusted"])


def test_it_catches_a_random_clicker_with_many_votes() -> None:
    rep = scan(CROWD + cast("clicker", 150, random_clicker), SPREAD)["clicker"]
    res = rep.result("crowd_disagreement")
    assert res.level == "strong"
    assert res.score >= math.log10(FraudConfig().disagreement_strong_e)
    assert rep.verdict == "excluded"


def test_a_random_clicker_too_new_to_exclude_has_its_trust_capped() -> None:
    rep = scan(CROWD + cast("clicker", 25, random_clicker), SPREAD)["clicker"]

    assert rep.result("crowd_disagreement").level == "suspicious"
    assert rep.verdict == "suspicious" and rep.trust_capped
    assert rep.kept_out == ()  # no model of its own: its weight is what is bounded

    off = FraudConfig(disagreement_caps=False)
    assert not scan(CROWD + cast("clicker", 25, random_clicker), SPREAD, config=off)[
        "clicker"
    ].trust_capped


def _capped(voters: str, n: int, choose: Chooser, config: FraudConfig) -> list[bool]:
    votes = [v for j in range(30) for v in cast(f"{voters}{j}", n, choose, seed=j, start=1e3 * j)]
    reports = scan(CROWD + votes, SPREAD, config=config)
    return [reports[f"{voters}{j}"].trust_capped for j in range(30)]


def test_votes_likelier_under_coin_flips_than_under_the_careless_crowd_weigh_the_floor() -> None:
    """Fifteen random clicks are too few for the e-process to reach 20 most of the time; the
    plain odds of coin flips against a crowd that lapses 30% of the time reach 3 far more
    often, and hold the clicker's trust at the floor without excluding it."""
    off = FraudConfig(disagreement_cap_odds=math.inf)

    with_odds = _capped("clicker", 15, random_clicker, FraudConfig())
    without = _capped("clicker", 15, random_clicker, off)

    assert sum(with_odds) >= sum(without) + 4 and all(
        with_odds[j] for j, c in enumerate(without) if c
    )
    # One below suspicion (seed 0: odds 10^1.19) is capped by its odds, and its summary says
    # why; one whose odds stay under 3 (seed 1: 10^0.45) is neither capped nor told it is.
    capped, spared = (
        scan(CROWD + cast(f"clicker{s}", 15, random_clicker, seed=s), SPREAD)[f"clicker{s}"]
        for s in (0, 1)
    )
    for rep, odds_over_3 in ((capped, True), (spared, False)):
        res = rep.result("crowd_disagreement")
        assert res.level == "ok" and rep.verdict != "excluded"
        assert (res.evidence["log10_odds"] >= math.log10(3.0)) is odds_over_3
        assert rep.trust_capped is odds_over_3
        assert ("likelier under coin flips" in res.summary) is odds_over_3


def test_voters_who_choose_like_the_crowd_or_lapse_often_keep_their_weight() -> None:
    assert not any(_capped("honest", 100, honest(), FraudConfig()))

    def lapsing(slots: tuple[str, ...], rng: random.Random) -> int | None:
        return rng.randrange(len(slots)) if rng.random() < 0.45 else honest()(slots, rng)

    # Lapsing 45% of the time: the odds drift towards the crowd as the votes add up, so they
    # hold (almost) no one at the floor whom the e-process had not already.
    off = FraudConfig(disagreement_cap_odds=math.inf)
    with_odds = _capped("lapser", 150, lapsing, FraudConfig())
    assert sum(with_odds) <= sum(_capped("lapser", 150, lapsing, off)) + 1


def test_the_replay_weighs_a_suspected_random_clicker_at_the_floor() -> None:
    votes = sorted(
        CROWD + cast("clicker", 25, random_clicker, start=3 * 86_400.0, gap=4 * 3600.0),
        key=lambda v: (v.time_s, v.vote_id),
    )

    result = replay_scans(votes, scan_every_s=86_400.0)

    assert result.verdicts["clicker"] == "suspicious"
    assert result.trust["clicker"] == pytest.approx(FraudConfig().trust_floor)
    assert all(
        w == pytest.approx(result.trust["clicker"])
        for w in (result.weights[v.vote_id] for v in votes if v.voter == "clicker")
    )
    assert not any(result.reports[v].trust_capped for v in {v.voter for v in CROWD})


def test_it_does_not_flag_honest_voters_of_the_crowd() -> None:
    reports = scan(CROWD, SPREAD)
    assert all(r.verdict != "excluded" for r in reports.values())


def test_it_never_excludes_a_two_vote_voter_on_choice_statistics() -> None:
    votes = [
        vote("u1", "upset", 0.0, ("m0", "m9"), 1, prefix="net-u"),
        vote("u2", "upset", 30.0, ("m9", "m1"), 0, prefix="net-u"),
    ]
    rep = scan(CROWD + votes, SPREAD, config=FraudConfig(disagreement_lapse=0.0))["upset"]
    assert rep.result("crowd_disagreement").score > math.log10(20)  # a huge e-value ...
    assert rep.verdict == "ok"  # ... from two votes proves nothing


# -- verdicts ------------------------------------------------------------------------------------


def results(**levels: str) -> list[DetectorResult]:
    return [DetectorResult(d, levels.get(d, "ok"), 0.0, "", {}) for d in DETECTORS]  # type: ignore[arg-type]


def test_it_excludes_on_any_strong_detector() -> None:
    assert decide(results(speed="strong", rate="suspicious")) == ("excluded", ("speed",))


def test_it_excludes_on_suspicions_from_two_families() -> None:
    verdict = decide(results(position_bias="suspicious", speed="suspicious"))
    assert verdict == ("excluded", ("position_bias", "speed"))


def test_it_only_suspects_on_suspicions_from_one_family() -> None:
    verdict = decide(results(crowd_disagreement="suspicious", model_targeting="suspicious"))
    assert verdict == ("suspicious", ("crowd_disagreement", "model_targeting"))
    assert decide(results(speed="suspicious", rate="suspicious"))[0] == "suspicious"
    assert decide(results()) == ("ok", ())


def test_it_reports_one_result_per_detector_in_order() -> None:
    rep = scan(CROWD, SPREAD)["crowd00"]
    assert tuple(r.detector for r in rep.results) == DETECTORS
    assert rep.n_votes == 25


def test_it_skips_disabled_detectors() -> None:
    votes = cast("first", 40, always_a)
    rep = scan(CROWD + votes, SPREAD, config=FraudConfig(detectors=("speed",)))["first"]
    assert rep.result("position_bias").evidence == {"enabled": False}
    assert rep.verdict == "ok"


def test_it_reports_only_the_requested_voters_with_the_others_as_context() -> None:
    votes = sybils(15, "badnet", "m6", start=50_000.0)
    one = votes[0].voter
    reports = scan(CROWD + votes, SPREAD, voters=[one, "nobody"])
    assert sorted(reports) == sorted([one, "nobody"])
    assert reports[one].verdict == "excluded"
    assert reports["nobody"].n_votes == 0 and reports["nobody"].verdict == "ok"


def test_it_gives_json_serialisable_evidence() -> None:
    votes = cast("promo", 150, promoter("m7")) + sybils(15, "badnet", "m6", start=50_000.0)
    for rep in scan(CROWD + votes, SPREAD).values():
        json.dumps(rep.to_dict(), allow_nan=False)


def test_it_is_deterministic_whatever_the_order_of_the_votes() -> None:
    votes = CROWD + cast("promo", 150, promoter("m7")) + sybils(15, "badnet", "m6", 50_000.0)
    first = scan(votes, SPREAD)
    shuffled = list(votes)
    random.Random(3).shuffle(shuffled)
    assert scan(shuffled, SPREAD) == first
    assert scan(votes, SPREAD) == first


# -- choice series -------------------------------------------------------------------------------


def test_it_plots_a_voters_choices_against_the_crowd() -> None:
    votes = cast("clicker", 30, random_clicker)
    votes.insert(3, vote("tie", "clicker", 35.0, ("m0", "m1"), None, prefix="net-clicker"))
    series = choice_series(list(reversed(votes)), SPREAD)
    assert len(series) == 30  # the tie is skipped
    assert [row["time_s"] for row in series] == sorted(row["time_s"] for row in series)
    assert set(series[0]) == {"vote_id", "time_s", "p_chosen", "p_chance", "log_e"}
    bet, lapse = FraudConfig().bet, FraudConfig().disagreement_lapse
    acc = 0.0
    for row in series:
        assert row["p_chance"] == 0.5
        q = (1 - lapse) * row["p_chosen"] + lapse / 2
        acc += math.log10(1 - bet + bet / (2 * q))
        assert row["log_e"] == pytest.approx(acc)
    assert max(r["log_e"] for r in series) == pytest.approx(
        scan(CROWD + votes, SPREAD)["clicker"].result("crowd_disagreement").score, abs=1e-3
    )


def test_it_wants_one_voter_per_choice_series() -> None:
    with pytest.raises(ValueError, match=r"^votes: must all belong to one voter"):
        choice_series(CROWD, SPREAD)


# -- argument checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bet": 0.0}, "bet"),
        ({"bet": 1.5}, "bet"),
        ({"suspicious_p": 2.0}, "suspicious_p"),
        ({"strong_p": 0.01}, "strong_p"),
        ({"disagreement_suspicious_e": 1.0}, "disagreement_suspicious_e"),
        ({"disagreement_strong_e": 10.0}, "disagreement_strong_e"),
        ({"min_votes": 0}, "min_votes"),
        ({"group_min_voters": 1}, "group_min_voters"),
        ({"rate_window_s": -1.0}, "rate_window_s"),
        ({"rate_multiplier": 0.5}, "rate_multiplier"),
        ({"targeting_strong_shift": math.nan}, "targeting_strong_shift"),
        ({"detectors": ("speed", "telepathy")}, "detectors"),
        ({"impossible_min_votes": True}, "impossible_min_votes"),
        ({"disagreement_lapse": 1.0}, "disagreement_lapse"),
        ({"disagreement_lapse": -0.1}, "disagreement_lapse"),
        ({"campaign_member_p": 0.0}, "campaign_member_p"),
        ({"campaign_join_p": 1.0}, "campaign_join_p"),
        ({"campaign_min_members": 0}, "campaign_min_members"),
        ({"campaign_established_votes": 0}, "campaign_established_votes"),
        ({"campaign_choice_shift": -1.0}, "campaign_choice_shift"),
        ({"campaign_window_s": 0.0}, "campaign_window_s"),
        ({"speed_suspicious_share": 0.0}, "speed_suspicious_share"),
        ({"speed_suspicious_share": 1.5}, "speed_suspicious_share"),
        ({"disagreement_caps": 1}, "disagreement_caps"),
        ({"disagreement_cap_odds": 1.0}, "disagreement_cap_odds"),
        ({"disagreement_cap_odds": True}, "disagreement_cap_odds"),
        ({"disagreement_cap_odds": math.nan}, "disagreement_cap_odds"),
        ({"disagreement_cap_odds": "3"}, "disagreement_cap_odds"),
    ],
)
def test_it_rejects_bad_config_values_naming_the_argument(
    kwargs: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name}: "):
        FraudConfig(**kwargs)  # type: ignore[arg-type]


def test_it_rejects_bad_votes_naming_the_field() -> None:
    good = {
        "vote_id": "v",
        "voter": "u",
        "time_s": 0.0,
        "slots": ("a", "b"),
        "ranking": Ranking((("a",), ("b",))),
        "time_to_vote_ms": 3000,
    }
    VoteEvidence(**good)  # type: ignore[arg-type]
    for field, value in [
        ("ranking", Ranking((("a",), ("c",)))),
        ("slots", ("a", "a")),
        ("time_s", math.inf),
        ("time_to_vote_ms", -1),
        ("min_view_ms", 0),
        ("voter", ""),
        ("first_seen_s", "yesterday"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}: "):
            VoteEvidence(**{**good, field: value})  # type: ignore[arg-type]


def test_it_rejects_bad_scan_arguments_naming_them() -> None:
    with pytest.raises(ValueError, match=r"^votes: "):
        scan([1, 2], SPREAD)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"^consensus: "):
        scan(CROWD, {"m0": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^voters: "):
        scan(CROWD, SPREAD, voters="crowd00")
    with pytest.raises(ValueError, match=r"^baseline: "):
        scan(CROWD, SPREAD, baseline={"voter_window_votes": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^scores"):
        Consensus({"a": math.nan})
    with pytest.raises(ValueError, match=r"^others: "):
        SPREAD.p_best("m0", ["m0", "m1"])


def test_it_judges_rate_against_the_arenas_normal_traffic() -> None:
    base = TrafficBaseline.from_votes(CROWD)
    assert base.n_voters == 40 and base.voter_window_votes > 0
    limits = base.limits()
    assert limits["voter_window"] == max(60, math.floor(2 * base.voter_window_votes))
    busy = TrafficBaseline(voter_window_votes=100.0)
    votes = cast("keen", 120, honest(), gap=4.0)
    rep = scan(CROWD + votes, SPREAD, baseline=busy)["keen"]
    assert rep.result("rate").level == "ok"  # normal where everyone votes like this


def test_the_simulation_chart_draws_one_bar_per_group_and_method_to_scale() -> None:
    import xml.etree.ElementTree as ET

    from benchmarks.fraud_sim import Tally, svg_chart

    tally = Tally()
    for group, votes, ours, lmarena in (("promoter", 200, 150, 20), ("honest", 1000, 2, 20)):
        tally.voters[group], tally.votes[group] = 1, votes
        tally.ex_votes["ours"][group], tally.ex_votes["lmarena"][group] = ours, lmarena

    root = ET.fromstring(svg_chart({2: tally}))

    bars = {
        r.find("{http://www.w3.org/2000/svg}title").text: float(r.get("width"))  # type: ignore[union-attr, arg-type]
        for r in root.iter("{http://www.w3.org/2000/svg}rect")
        if r.find("{http://www.w3.org/2000/svg}title") is not None
    }
    assert bars["promoter, ours (six detectors): 75.0%"] == pytest.approx(0.75 * 420)
    assert bars["promoter, LMArena e-value test alone: 10.0%"] == pytest.approx(0.1 * 420)
    assert bars["honest, ours (six detectors): 0.2%"] == pytest.approx(0.002 * 420, abs=0.05)
    assert len(bars) == 4


def test_a_lone_strong_targeting_finding_is_one_family_of_evidence() -> None:
    targeting = DetectorResult("model_targeting", "strong", 9.0, "pushes m7", {})
    position = DetectorResult("position_bias", "suspicious", 4.0, "slot A", {})

    assert decide([targeting]) == ("suspicious", ("model_targeting",))
    assert decide([targeting, position]) == ("excluded", ("model_targeting", "position_bias"))
    unscoped = FraudConfig(targeting_scoped=False)
    assert decide([targeting], config=unscoped) == ("excluded", ("model_targeting",))


def test_targeting_scoped_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="targeting_scoped: must be True or False"):
        FraudConfig(targeting_scoped=1)  # type: ignore[arg-type]
