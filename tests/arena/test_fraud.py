"""Fraud detection in the arena: scans exclude bots' votes, reviews restore them, all audited."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from arena import fraud
from arena.clock import SimulatedClock as Clock
from arena.leaderboards import leaderboard_rebuild, ratings_replay, voters_trust_set
from arena.models import (
    Arena,
    ArenaTally,
    AuditAction,
    AuditEntry,
    Campaign,
    FraudScanState,
    GenerativeModel,
    ModelRating,
    Review,
    Verdict,
    Vote,
    VoteExclusion,
    Voter,
    VoterFlag,
)
from arena.privacy import network_prefix, prefix_hash
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock(timezone.now() - timedelta(days=2))
    monkeypatch.setattr(timezone, "now", fake)
    yield fake


Pick = Callable[[dict[int, str], random.Random], str]
#: Picks a slot label, or None to abandon the battle without voting.
MaybePick = Callable[[dict[int, str], random.Random], str | None]


def _strength(model_id: int, arena: Arena) -> float:
    """Hidden quality: the lower the model's pk in the arena, the better (1 logit apart)."""
    ids = sorted(arena.generative_models.values_list("pk", flat=True))
    return -1.0 * ids.index(model_id)


def honest(arena: Arena) -> Pick:
    def pick(labels: dict[int, str], rng: random.Random) -> str:
        a, b = sorted(labels)
        p = 1 / (1 + math.exp(_strength(b, arena) - _strength(a, arena)))
        return labels[a] if rng.random() < p else labels[b]

    return pick


def promoter(target: int, arena: Arena, *, careless: bool = True) -> Pick:
    """Votes for ``target`` whenever it is shown; otherwise clicks slot A (``careless``, a bot
    whose position bias is a second family of evidence, so the voter is excluded as a whole)
    or votes like an honest voter (a lone targeting finding: only those votes are kept out)."""
    fallback = honest(arena)

    def pick(labels: dict[int, str], rng: random.Random) -> str:
        if target in labels:
            return labels[target]
        return "A" if careless else fallback(labels, rng)

    return pick


def cast_or_abandon(
    arena: Arena,
    voter: Voter,
    pick: MaybePick,
    clock: Clock,
    rng: random.Random,
    *,
    ip: str,
    view_s: float = 6.0,
    gap_s: float = 20.0,
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
) -> Vote | None:
    """One battle and, unless ``pick`` abandons it (None), the voter's vote on it."""
    battle = battle_create(arena=arena, voter=voter, mode="pairwise", rng=rng)
    labels = {slot.model_id: slot.label for slot in battle.slots.all()}
    clock.advance(view_s)
    choice = pick(labels, rng)
    if choice is None:
        return None
    vote = vote_record(
        battle_public_id=str(battle.public_id),
        token=battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce),
        voter=voter,
        choice=choice,
        client_ip=ip,
        user_agent=user_agent,
    )
    clock.advance(gap_s)
    return vote


def cast(
    arena: Arena, voter: Voter, pick: Pick, clock: Clock, rng: random.Random, **kw: Any
) -> Vote:
    """One battle and the voter's vote on it (see ``cast_or_abandon``)."""
    vote = cast_or_abandon(arena, voter, pick, clock, rng, **kw)
    assert vote is not None
    return vote


@pytest.fixture(scope="module")
def crowd(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """Fourteen honest voters (30 votes each) and one promoter of the weakest model (60 votes).

    Built once for the module (480 real battles and votes take seconds); each test runs in its
    own rolled-back transaction on top, and the module's data is flushed at the end.
    """
    with django_db_blocker.unblock():
        with pytest.MonkeyPatch.context() as patch:
            clock = Clock(timezone.now() - timedelta(days=3))
            patch.setattr(timezone, "now", clock)
            rng = random.Random(7)
            arena = ready_arena(models=6, prompts=3)
            weakest = max(arena.generative_models.values_list("pk", flat=True))
            honest_voters = [VoterFactory.create() for _ in range(14)]
            for i, voter in enumerate(honest_voters):
                for _ in range(30):
                    cast(arena, voter, honest(arena), clock, rng, ip=f"198.51.{i}.7")
                clock.advance(3600)
            bot = VoterFactory.create()
            for _ in range(60):
                cast(arena, bot, promoter(weakest, arena), clock, rng, ip="203.0.113.9")
        yield {"arena": arena, "bot": bot, "honest": honest_voters, "weakest": weakest}
        call_command("flush", interactive=False, verbosity=0)


def promoter_votes(*, careless: bool = True) -> tuple[Any, Any]:
    """Eight honest voters (20 votes each) and a promoter of the weakest model (50 votes): a
    ``careless`` one votes within half a second (speed evidence besides its targeting, so it
    is excluded as a whole), the other looks like a fan (only its votes on the model go)."""
    rng = random.Random(11)
    with pytest.MonkeyPatch.context() as patch:
        clock = Clock(timezone.now() - timedelta(days=1))
        patch.setattr(timezone, "now", clock)
        arena = ready_arena(models=5, prompts=2)
        weakest = max(arena.generative_models.values_list("pk", flat=True))
        for i in range(8):
            voter = VoterFactory.create()
            for _ in range(20):
                cast(arena, voter, honest(arena), clock, rng, ip=f"198.51.{i}.9")
        bot = VoterFactory.create()
        for _ in range(50):
            pick = promoter(weakest, arena, careless=False)
            view_s = 0.5 if careless else 6.0
            cast(arena, bot, pick, clock, rng, ip="203.0.113.5", view_s=view_s)
    return arena, bot


def only_for(target: int) -> MaybePick:
    """Votes for ``target`` when it is shown and abandons every other battle."""

    def pick(labels: dict[int, str], rng: random.Random) -> str | None:
        return labels.get(target)

    return pick


def distributed_campaign(n_sybils: int = 12, *, days: int = 1) -> dict[str, Any]:
    """Ten honest voters and ``n_sybils`` identities, each on its own network and at human
    pace, that abandon every battle without the weakest model and vote for it in the others:
    in one sitting, 25 honest votes each and 6 per sybil (fresh identities: nothing per
    identity an honest person could not do); over ``days`` days, 9 honest votes a day each and
    4 per sybil (identities with a history on both sides)."""
    rng = random.Random(21)
    with pytest.MonkeyPatch.context() as patch:
        clock = Clock(timezone.now() - timedelta(days=days))
        patch.setattr(timezone, "now", clock)
        arena = ready_arena(models=8, prompts=2)
        target = max(arena.generative_models.values_list("pk", flat=True))
        honest_voters = [VoterFactory.create() for _ in range(10)]
        sybils = [VoterFactory.create() for _ in range(n_sybils)]
        sittings = [6] if days == 1 else [4] * days
        for day, per_sitting in enumerate(sittings):
            if day:
                clock.advance(86_400.0)
            # The crowd votes in one sitting, or (with a history) a few votes every day.
            for i, voter in enumerate(honest_voters if day == 0 or days > 1 else []):
                for _ in range(25 if days == 1 else 9):
                    cast(arena, voter, honest(arena), clock, rng, ip=f"198.51.{i}.9")
            for i, voter in enumerate(sybils):
                voted = 0
                while voted < per_sitting:  # a battle without the target is abandoned
                    vote = cast_or_abandon(
                        arena,
                        voter,
                        only_for(target),
                        clock,
                        rng,
                        ip=f"10.{20 + i}.{i}.3",
                        view_s=4,
                        gap_s=25,
                        user_agent=f"Mozilla/5.0 Sybil/{i % 3}",
                    )
                    voted += vote is not None
                clock.advance(1800)
    return {"arena": arena, "target": target, "sybils": sybils, "honest": honest_voters}


def test_returning_campaign_members_lose_their_say_on_the_model_not_their_identity(
    admin_client: Any,
) -> None:
    world = distributed_campaign(8, days=3)
    arena, members = world["arena"], world["sybils"]

    fraud.fraud_scan(arena=arena)

    campaign = Campaign.objects.get(arena=arena, key=f"promote:{world['target']}")
    assert set(campaign.finding["members"]) == {str(v.pk) for v in members}
    for voter in members:
        flag = _flag(arena, voter)
        assert not flag.is_excluding and flag.verdict == Verdict.SUSPICIOUS
        assert "campaign" in flag.reasons
        # Every vote of theirs showed the target: all kept out, as one model's votes.
        out = VoteExclusion.objects.filter(vote__voter=voter)
        assert out.count() == 12 and {e.reason for e in out} == {fraud.TARGETING_REASON}
        assert all("campaign" in e.reasons for e in out)
        assert fraud.caps_trust(flag) is not None  # its trust is held at the floor
    assert not any(_flag(arena, v).is_excluding for v in world["honest"])
    page = admin_client.get(f"/admin/fraud/{arena.slug}/voter/{members[0].public_id}/")
    name = GenerativeModel.objects.get(pk=world["target"]).name
    assert f"where {name} was shown" in page.content.decode()


def test_a_campaign_spread_over_networks_is_found_excluded_and_shown_for_review(
    admin_client: Any,
) -> None:
    world = distributed_campaign()
    arena, sybils = world["arena"], world["sybils"]

    fraud.fraud_scan(arena=arena)

    campaign = Campaign.objects.get(arena=arena)
    assert campaign.model_id == world["target"] and campaign.direction == "promote"
    assert set(campaign.finding["members"]) == {str(v.pk) for v in sybils}
    flags = VoterFlag.objects.filter(arena=arena, voter__in=sybils)
    assert flags.count() == len(sybils) and all(f.is_excluding for f in flags)
    assert all("campaign" in f.reasons for f in flags)
    assert VoteExclusion.objects.filter(vote__voter__in=sybils).count() == 6 * len(sybils)
    assert not VoteExclusion.objects.filter(vote__voter__in=world["honest"]).exists()
    # The finding's evidence: the model, the window, the identities, the influence.
    page = admin_client.get(f"/admin/fraud/{arena.slug}/").content.decode()
    section = page[page.index('id="campaigns"') :]
    assert GenerativeModel.objects.get(pk=world["target"]).name in section
    assert f"{len(sybils)}: " in section and str(sybils[0].public_id)[:8] in section
    assert "expected by chance" in section and "Elo" in page


def test_the_next_scans_keep_a_campaign_out_and_a_cleared_member_in(
    admin_user: Any,
) -> None:
    world = distributed_campaign()
    arena, sybils = world["arena"], world["sybils"]
    fraud.fraud_scan(arena=arena)
    fraud.voter_review(flag=_flag(arena, sybils[0]), action="clear", actor=admin_user)

    fraud.fraud_scan(arena=arena, full=True)

    assert not _flag(arena, sybils[0]).is_excluding
    assert not VoteExclusion.objects.filter(vote__voter=sybils[0]).exists()
    assert all(_flag(arena, v).is_excluding for v in sybils[1:])


def _flag(arena: Arena, voter: Voter) -> VoterFlag:
    return VoterFlag.objects.get(arena=arena, voter=voter)


def test_a_scan_excludes_the_promoter_and_keeps_the_honest_voters(crowd: dict[str, Any]) -> None:
    arena, bot = crowd["arena"], crowd["bot"]

    result = fraud.fraud_scan(arena=arena)

    flag = _flag(arena, bot)
    assert flag.verdict == Verdict.EXCLUDED
    assert "model_targeting" in flag.reasons
    targeting = next(r for r in flag.results if r["detector"] == "model_targeting")
    assert targeting["level"] == "strong" and targeting["summary"]
    assert result.votes_excluded == 60
    assert VoteExclusion.objects.filter(vote__voter=bot).count() == 60
    assert set(VoteExclusion.objects.values_list("vote__voter", flat=True)) == {bot.pk}
    exclusion = VoteExclusion.objects.filter(vote__voter=bot).first()
    assert exclusion is not None and "model_targeting" in exclusion.reasons
    honest_verdicts = VoterFlag.objects.filter(arena=arena).exclude(voter=bot)
    assert honest_verdicts.count() == 14
    assert not honest_verdicts.filter(verdict=Verdict.EXCLUDED).exists()
    # The votes stay in the log; the leaderboard counts only the others.
    assert Vote.objects.filter(voter=bot).count() == 60
    assert ArenaTally.objects.get(arena=arena).votes == 14 * 30
    entry = AuditEntry.objects.get(voter=bot)
    assert entry.action == AuditAction.AUTO_EXCLUDED and entry.votes_excluded == 60
    assert entry.actor is None and "model_targeting" in entry.reasons


def test_the_rebuilt_leaderboard_skips_excluded_votes_and_the_impact_report_shows_it(
    crowd: dict[str, Any], settings: Any
) -> None:
    arena, weakest = crowd["arena"], crowd["weakest"]
    # Every vote at full weight (earned trust off), so that only the exclusion moves ranks.
    settings.FRAUD_TRUST_FLOOR_PCT = 100
    voters = [*crowd["honest"], crowd["bot"]]
    voters_trust_set(arena_id=arena.pk, trust={v.pk: 1.0 for v in voters})
    ratings_replay(arena_id=arena.pk)
    before = leaderboard_rebuild(arena=arena, methods=["bradley_terry"]).snapshots[0]

    fraud.fraud_scan(arena=arena)

    after = leaderboard_rebuild(arena=arena, methods=["bradley_terry"]).snapshots[0]
    assert after.vote_set_hash != before.vote_set_hash
    assert after.votes == 14 * 30
    rank_before = next(r["rank"] for r in before.standings if r["model_id"] == weakest)
    rank_after = next(r["rank"] for r in after.standings if r["model_id"] == weakest)
    assert rank_after > rank_before  # the promoted model falls back once the bot is dropped
    impact = {row.slug: row for row in fraud.fraud_impact(arena=arena)}
    weak_row = next(row for row in impact.values() if row.rank_kept == rank_after)
    assert weak_row.rank_all == rank_before
    assert weak_row.rank_change < 0
    # Online ratings were replayed from the kept votes only.
    assert sum(ModelRating.objects.filter(arena=arena).values_list("votes", flat=True)) == (
        2 * 14 * 30
    )


def test_clearing_a_voter_restores_their_votes_and_the_same_evidence_never_excludes_again(
    crowd: dict[str, Any], clock: Clock, admin_user: Any
) -> None:
    arena, bot = crowd["arena"], crowd["bot"]
    fraud.fraud_scan(arena=arena)
    digest_excluded = ArenaTally.objects.get(arena=arena).digest

    entry = fraud.voter_review(
        flag=_flag(arena, bot), action="clear", actor=admin_user, note="a genuine fan"
    )

    assert entry.action == AuditAction.CLEARED and entry.votes_restored == 60
    assert entry.actor == admin_user and entry.note == "a genuine fan"
    assert not VoteExclusion.objects.exists()
    tally = ArenaTally.objects.get(arena=arena)
    assert tally.votes == 14 * 30 + 60 and tally.digest != digest_excluded
    flag = _flag(arena, bot)
    assert flag.review == Review.CLEARED and not flag.is_excluding
    # A full rescan judges only votes after the clearance: there are none, so nothing moves.
    fraud.fraud_scan(arena=arena, full=True)
    assert not VoteExclusion.objects.exists()
    assert not _flag(arena, bot).is_excluding


def test_new_evidence_after_a_clearance_excludes_again_but_only_the_new_votes(
    crowd: dict[str, Any], admin_user: Any
) -> None:
    arena, bot, weakest = crowd["arena"], crowd["bot"], crowd["weakest"]
    fraud.fraud_scan(arena=arena)
    fraud.voter_review(flag=_flag(arena, bot), action="clear", actor=admin_user)
    with pytest.MonkeyPatch.context() as patch:
        clock = Clock(timezone.now())
        patch.setattr(timezone, "now", clock)
        for _ in range(60):
            cast(arena, bot, promoter(weakest, arena), clock, random.Random(4), ip="203.0.113.9")

    fraud.fraud_scan(arena=arena)

    flag = _flag(arena, bot)
    assert flag.is_excluding and flag.review == Review.UNREVIEWED  # back in the queue
    excluded = VoteExclusion.objects.filter(vote__voter=bot)
    assert excluded.count() == 60
    assert min(excluded.values_list("vote_id", flat=True)) > flag.cleared_through_vote_id
    assert AuditEntry.objects.filter(voter=bot).latest("pk").action == AuditAction.AUTO_EXCLUDED


def test_a_reviewer_can_confirm_a_voter_and_their_new_votes_are_kept_out_at_once(
    crowd: dict[str, Any], clock: Clock, admin_user: Any
) -> None:
    arena, bot = crowd["arena"], crowd["bot"]
    fraud.fraud_scan(arena=arena)
    fraud.voter_review(flag=_flag(arena, bot), action="clear", actor=admin_user)

    entry = fraud.voter_review(flag=_flag(arena, bot), action="confirm", actor=admin_user)

    assert entry.action == AuditAction.CONFIRMED and entry.votes_excluded == 60
    votes_before = ArenaTally.objects.get(arena=arena).votes
    new_vote = cast(arena, bot, honest(arena), clock, random.Random(1), ip="203.0.113.9")
    assert VoteExclusion.objects.filter(vote=new_vote).exists()
    assert ArenaTally.objects.get(arena=arena).votes == votes_before
    assert list(AuditEntry.objects.filter(voter=bot).values_list("action", flat=True)) == [
        AuditAction.AUTO_EXCLUDED,
        AuditAction.CLEARED,
        AuditAction.CONFIRMED,
    ]


def test_an_unknown_review_action_is_refused_and_changes_nothing(
    crowd: dict[str, Any], admin_user: Any
) -> None:
    arena, bot = crowd["arena"], crowd["bot"]
    fraud.fraud_scan(arena=arena)
    entries = AuditEntry.objects.count()

    with pytest.raises(fraud.ReviewError, match="confirm or clear"):
        fraud.voter_review(flag=_flag(arena, bot), action="delete", actor=admin_user)

    assert AuditEntry.objects.count() == entries
    assert VoteExclusion.objects.count() == 60


def test_a_burst_of_fresh_identities_from_one_network_is_excluded_as_a_group(
    crowd: dict[str, Any],
) -> None:
    arena = crowd["arena"]
    target = sorted(arena.generative_models.values_list("pk", flat=True))[3]
    rng = random.Random(9)
    sybils = []
    with pytest.MonkeyPatch.context() as patch:
        clock = Clock(timezone.now())
        patch.setattr(timezone, "now", clock)
        for i in range(8):  # eight new cookies, one /24, within half an hour
            voter = VoterFactory.create()
            sybils.append(voter)
            shown = 0
            while shown < 5:
                vote = cast(
                    arena,
                    voter,
                    promoter(target, arena),
                    clock,
                    rng,
                    ip=f"192.0.2.{10 + i}",
                    gap_s=5,
                )
                shown += target in {m for group in vote.ranking for m in group}

    fraud.fraud_scan(arena=arena)

    flags = VoterFlag.objects.filter(arena=arena, voter__in=sybils)
    assert flags.count() == 8
    assert all(flag.is_excluding for flag in flags)
    assert all("coordination" in flag.reasons for flag in flags)
    coordination = next(r for r in flags[0].results if r["detector"] == "coordination")
    assert coordination["level"] == "strong" and coordination["evidence"]
    # The honest voters, each on a network of their own, are untouched.
    assert not VoterFlag.objects.filter(arena=arena, voter__in=crowd["honest"]).filter(
        verdict=Verdict.EXCLUDED
    )


def test_the_scan_is_incremental(crowd: dict[str, Any], clock: Clock) -> None:
    arena = crowd["arena"]
    first = fraud.fraud_scan(arena=arena)
    assert first.voters_scanned == 15

    again = fraud.fraud_scan(arena=arena)
    assert again.voters_scanned == 0 and again.new_votes == 0

    newcomer = VoterFactory.create()
    cast(arena, newcomer, honest(arena), clock, random.Random(3), ip="192.0.2.44")
    third = fraud.fraud_scan(arena=arena)
    assert third.new_votes == 1 and third.voters_scanned == 1
    assert _flag(arena, newcomer).verdict == Verdict.OK
    assert FraudScanState.objects.get(arena=arena).last_vote_id == Vote.objects.latest("pk").pk


def test_the_periodic_task_scans_every_active_arena(crowd: dict[str, Any]) -> None:
    from workers.tasks import scan_fraud

    results = scan_fraud.apply().get()

    assert [r["arena"] for r in results] == [crowd["arena"].slug]
    assert results[0]["votes_excluded"] == 60


def test_ratings_replay_reproduces_the_online_ratings_when_nothing_is_excluded(
    clock: Clock,
) -> None:
    rng = random.Random(5)
    arena = ready_arena(models=4, prompts=2)
    voter = VoterFactory.create()
    for _ in range(25):
        cast(arena, voter, honest(arena), clock, rng, ip="198.51.100.1")
    online = {
        r.model_id: (r.elo, r.mu, r.sigma, r.votes) for r in ModelRating.objects.filter(arena=arena)
    }

    assert ratings_replay(arena_id=arena.pk) == 25

    for r in ModelRating.objects.filter(arena=arena):
        elo, mu, sigma, votes = online[r.model_id]
        assert r.elo == pytest.approx(elo) and r.mu == pytest.approx(mu)
        assert r.sigma == pytest.approx(sigma) and r.votes == votes


def test_a_vote_sooner_than_the_viewing_time_is_recorded_but_marked(clock: Clock) -> None:
    arena = ready_arena(models=2, prompts=1)
    voter = VoterFactory.create()

    quick = cast(arena, voter, honest(arena), clock, random.Random(1), ip="::1", view_s=0.4)
    careful = cast(arena, voter, honest(arena), clock, random.Random(1), ip="::1", view_s=3)

    assert quick.too_fast and quick.min_view_ms == 1500 and quick.time_to_vote_ms == 400
    assert not careful.too_fast
    voter.refresh_from_db()
    assert voter.fast_votes == 1
    assert ArenaTally.objects.get(arena=arena).votes == 2  # marked, still counted


def test_videos_need_a_longer_look_than_images(clock: Clock) -> None:
    arena = ready_arena(models=2, prompts=1)
    arena.prompt_set.prompts.first().assets.update(media_type="video", fmt="mp4")  # type: ignore[union-attr]
    voter = VoterFactory.create()

    vote = cast(arena, voter, honest(arena), clock, random.Random(1), ip="::1", view_s=3)

    assert vote.min_view_ms == 4000 and vote.too_fast


def test_addresses_are_stored_as_keyed_prefix_hashes_only(clock: Clock) -> None:
    arena = ready_arena(models=2, prompts=1)
    voter = VoterFactory.create()

    vote = cast(arena, voter, honest(arena), clock, random.Random(1), ip="198.51.100.23")

    assert network_prefix("198.51.100.23") == "198.51.100.0/24"
    assert network_prefix("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert network_prefix("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert network_prefix("not an address") == ""
    assert vote.prefix_hash == prefix_hash("198.51.100.200") != prefix_hash("198.51.101.23")
    voter.refresh_from_db()
    assert voter.prefix_hash == vote.prefix_hash and voter.user_agent_hash == vote.user_agent_hash
    rows = [*Vote.objects.filter(pk=vote.pk).values(), *Voter.objects.filter(pk=voter.pk).values()]
    stored = " ".join(str(value) for row in rows for value in row.values())
    assert "198.51.100" not in stored


# --- review pages -----------------------------------------------------------------------------


def test_a_fan_like_promoter_keeps_its_other_votes_and_loses_those_on_its_model(
    admin_client: Any, admin_user: Any
) -> None:
    arena, bot = promoter_votes(careless=False)
    weakest = max(arena.generative_models.values_list("pk", flat=True))
    counted_before = ArenaTally.objects.get(arena=arena).votes

    result = fraud.fraud_scan(arena=arena)

    flag = _flag(arena, bot)
    assert (flag.verdict, flag.reasons, flag.is_excluding) == (
        Verdict.SUSPICIOUS, ["model_targeting"], False,
    )  # fmt: skip
    on_model = {
        v.pk
        for v in Vote.objects.filter(arena=arena, voter=bot).prefetch_related("battle__slots")
        if weakest in {s.model_id for s in v.battle.slots.all()} and v.outcome != "tie"
    }
    kept_out = set(
        VoteExclusion.objects.filter(reason=fraud.TARGETING_REASON).values_list(
            "vote_id", flat=True
        )
    )
    assert kept_out == on_model and len(kept_out) > 10
    assert result.votes_excluded == len(kept_out)
    assert ArenaTally.objects.get(arena=arena).votes == counted_before - len(kept_out)
    # Its other votes count (at the floor while the finding stands: tests/arena/test_trust.py).
    page = admin_client.get(f"/admin/fraud/{arena.slug}/voter/{bot.public_id}/").content.decode()
    model_name = arena.generative_models.get(pk=weakest).name
    assert f"<strong>{len(kept_out)}</strong> votes where {model_name} was shown" in page

    again = fraud.fraud_scan(arena=arena)  # no new votes: nothing moves

    assert (again.votes_excluded, again.votes_restored) == (0, 0)
    entry = fraud.voter_review(flag=_flag(arena, bot), action="clear", actor=admin_user)
    assert entry.votes_restored == len(kept_out)
    assert ArenaTally.objects.get(arena=arena).votes == counted_before


def test_the_review_pages_show_the_evidence_and_apply_decisions(
    crowd: dict[str, Any], admin_client: Any
) -> None:
    arena, bot = crowd["arena"], crowd["bot"]
    fraud.fraud_scan(arena=arena)

    overview = admin_client.get("/admin/fraud/")
    assert overview.status_code == 200 and arena.name in overview.content.decode()
    page = admin_client.get(f"/admin/fraud/{arena.slug}/").content.decode()
    assert "Votes excluded per detector" in page and "model_targeting" in page
    assert str(bot.public_id)[:8] in page and "Fraud impact" in page
    assert f"{14 * 30} of {14 * 30 + 60}" in page  # votes kept

    voter_page = admin_client.get(f"/admin/fraud/{arena.slug}/voter/{bot.public_id}/")
    html = voter_page.content.decode()
    assert voter_page.status_code == 200
    assert 'id="choice-series"' in html and "crowd_disagreement" in html
    assert len(voter_page.context["series"]) > 0

    cleared = admin_client.post(
        f"/admin/fraud/{arena.slug}/voter/{bot.public_id}/",
        {"action": "clear", "note": "checked by hand"},
        follow=True,
    )
    assert "cleared" in cleared.content.decode()
    assert not VoteExclusion.objects.exists()
    assert AuditEntry.objects.filter(action=AuditAction.CLEARED, note="checked by hand").exists()

    refused = admin_client.post(
        f"/admin/fraud/{arena.slug}/voter/{bot.public_id}/", {"action": "nuke"}, follow=True
    )
    assert "Unknown review action" in refused.content.decode()
    assert not VoteExclusion.objects.exists()


def test_the_review_pages_are_for_staff_only(crowd: dict[str, Any], client: Any) -> None:
    arena = crowd["arena"]
    fraud.fraud_scan(arena=arena)

    for url in ("/admin/fraud/", f"/admin/fraud/{arena.slug}/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    posted = client.post(
        f"/admin/fraud/{arena.slug}/voter/{crowd['bot'].public_id}/", {"action": "clear"}
    )
    assert posted.status_code == 302
    assert VoteExclusion.objects.count() == 60


def test_unknown_voters_and_arenas_are_404(crowd: dict[str, Any], admin_client: Any) -> None:
    arena = crowd["arena"]
    assert admin_client.get(f"/admin/fraud/{arena.slug}/voter/not-a-uuid/").status_code == 404
    assert admin_client.get(
        f"/admin/fraud/{arena.slug}/voter/{Voter().public_id}/"
    ).status_code == (404)
    assert admin_client.get("/admin/fraud/no-such-arena/").status_code == 404


def test_scan_now_from_the_page(crowd: dict[str, Any], admin_client: Any) -> None:
    arena = crowd["arena"]
    response = admin_client.post(f"/admin/fraud/{arena.slug}/scan/", follow=True)
    assert "60 vote(s) excluded" in response.content.decode()
    assert admin_client.get(f"/admin/fraud/{arena.slug}/scan/").status_code == 405


def test_a_full_rescan_from_the_page_goes_to_a_worker(
    crowd: dict[str, Any], admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import tasks

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.scan_fraud, "apply_async", lambda **kw: sent.append(kw))
    arena = crowd["arena"]

    response = admin_client.post(f"/admin/fraud/{arena.slug}/scan/", {"full": "1"}, follow=True)

    assert "rescan of every voter was queued" in response.content.decode()
    assert sent == [{"kwargs": {"full": True, "arena": arena.slug}}]
    assert not VoteExclusion.objects.exists()  # nothing ran in the request


def test_the_task_can_scan_one_arena(crowd: dict[str, Any]) -> None:
    from workers.tasks import scan_fraud

    assert scan_fraud.apply(kwargs={"arena": "no-such-arena"}).get() == []
    results = scan_fraud.apply(kwargs={"arena": crowd["arena"].slug, "full": True}).get()
    assert [r["voters_scanned"] for r in results] == [15]


def test_simulated_votes_look_human_and_only_the_simulated_promoters_pushes_are_kept_out() -> None:
    arena = ready_arena(models=6, prompts=3)

    call_command(
        "simulate_votes",
        "--arena",
        arena.slug,
        "--votes",
        "240",
        "--voters",
        "12",
        "--promoter-votes",
        "60",
        verbosity=0,
    )
    fraud.fraud_scan(arena=arena)

    assert not Vote.objects.filter(too_fast=True).exists()
    # The bot only ever pushes its model: its votes where that model was shown are kept out,
    # the rest count (choices alone cannot tell a promoter from a fan; see FraudConfig).
    (flag,) = VoterFlag.objects.filter(arena=arena).exclude(verdict=Verdict.OK)
    assert (flag.verdict, flag.n_votes, flag.reasons) == (
        Verdict.SUSPICIOUS,
        60,
        ["model_targeting"],
    )
    target = next(r for r in flag.results if r["detector"] == "model_targeting")["evidence"]
    kept_out = Vote.objects.filter(arena=arena, exclusion__reason=fraud.TARGETING_REASON)
    assert kept_out.count() > 10
    assert set(kept_out.values_list("voter_id", flat=True)) == {flag.voter_id}
    for vote in kept_out.select_related("battle"):
        assert int(target["model"]) in set(vote.battle.slots.values_list("model_id", flat=True))
    counted = ArenaTally.objects.get(arena=arena).votes
    assert counted == 300 - kept_out.count()


def test_the_public_leaderboard_says_how_many_votes_fraud_checks_excluded(
    crowd: dict[str, Any], client: Any
) -> None:
    arena = crowd["arena"]
    before = client.get(f"/arena/{arena.slug}/leaderboard/").content.decode()
    assert "excluded by fraud checks" not in before

    fraud.fraud_scan(arena=arena)

    page = client.get(f"/arena/{arena.slug}/leaderboard/").content.decode()
    assert "60 excluded by fraud checks" in page
    assert f"<strong>{14 * 30}</strong> votes counted" in page


def test_the_integrity_api_reports_the_authenticity_of_an_arena(
    crowd: dict[str, Any], client: Any
) -> None:
    arena = crowd["arena"]
    before = client.get(f"/api/v1/arenas/{arena.slug}/integrity").json()
    assert before["votes_kept"] == before["votes"] == 14 * 30 + 60
    assert before["last_scan_at"] is None and before["excluded_by_detector"] == {}

    fraud.fraud_scan(arena=arena)

    body = client.get(f"/api/v1/arenas/{arena.slug}/integrity").json()
    assert (body["voters"], body["voters_kept"]) == (15, 14)
    assert (body["votes"], body["votes_kept"]) == (480, 420)
    assert body["vote_authenticity"] == pytest.approx(420 / 480, abs=1e-4)
    assert body["excluded_by_detector"]["model_targeting"] == 60
    assert body["last_scan_at"] is not None
    missing = client.get("/api/v1/arenas/no-such-arena/integrity")
    assert missing.status_code == 404 and "error" in missing.json()


def test_votes_recorded_without_a_viewing_time_are_still_judged(
    clock: Clock, settings: Any
) -> None:
    settings.MIN_VIEW_MS = {"image": 0, "video": 0, "mesh": 0, "splat": 0}
    arena = ready_arena(models=3, prompts=1)
    voter = VoterFactory.create()
    for _ in range(6):
        vote = cast(arena, voter, honest(arena), clock, random.Random(2), ip="198.51.100.4")
    assert vote.min_view_ms == 0 and not vote.too_fast  # like the rows from before 0006

    result = fraud.fraud_scan(arena=arena)

    assert result.voters_scanned == 1 and _flag(arena, voter).verdict == Verdict.OK


def test_a_review_made_while_a_scan_computes_wins_over_the_scan(
    crowd: dict[str, Any], admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arena, bot = crowd["arena"], crowd["bot"]
    fraud.fraud_scan(arena=arena)  # the bot is excluded
    real_scan = fraud.fraud.scan_step

    def scan_then_a_reviewer_clears(*args: Any, **kwargs: Any) -> Any:
        reports = real_scan(*args, **kwargs)
        fraud.voter_review(flag=_flag(arena, bot), action="clear", actor=admin_user)
        return reports

    monkeypatch.setattr(fraud.fraud, "scan_step", scan_then_a_reviewer_clears)

    result = fraud.fraud_scan(arena=arena, full=True)

    assert result.skipped == 1
    flag = _flag(arena, bot)
    assert flag.review == Review.CLEARED and not flag.is_excluding
    assert not VoteExclusion.objects.filter(vote__voter=bot).exists()
    assert ArenaTally.objects.get(arena=arena).votes == 14 * 30 + 60


def test_staff_without_the_review_permission_cannot_decide(
    crowd: dict[str, Any], client: Any, django_user_model: Any
) -> None:
    arena, bot = crowd["arena"], crowd["bot"]
    fraud.fraud_scan(arena=arena)
    staff = django_user_model.objects.create_user("helper", password="x", is_staff=True)
    client.force_login(staff)

    response = client.post(
        f"/admin/fraud/{arena.slug}/voter/{bot.public_id}/", {"action": "clear"}, follow=True
    )

    assert "permission" in response.content.decode()
    assert VoteExclusion.objects.filter(vote__voter=bot).count() == 60
    assert not AuditEntry.objects.filter(action=AuditAction.CLEARED).exists()


def test_behind_a_proxy_the_address_is_the_one_the_proxy_appended(settings: Any) -> None:
    from django.test import RequestFactory

    from arena.middleware import client_ip

    request = RequestFactory().get(
        "/", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7", REMOTE_ADDR="10.0.0.2"
    )
    assert client_ip(request) == "10.0.0.2"  # not trusted by default
    settings.ARENA_TRUST_X_FORWARDED_FOR = True
    assert client_ip(request) == "198.51.100.7"  # the client-supplied 6.6.6.6 is ignored


def _ratings(arena: Arena) -> dict[int, tuple[float, float, float, int]]:
    return {
        r.model_id: (round(r.elo, 6), round(r.mu, 6), round(r.sigma, 6), r.votes)
        for r in ModelRating.objects.filter(arena=arena)
    }


def test_the_replay_catches_an_exclusion_made_while_it_ran(
    crowd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from arena import leaderboards

    arena, bot = crowd["arena"], crowd["bot"]
    real_feed = leaderboards._Replay.feed
    calls: list[int] = []

    def feed_then_someone_excludes(self: Any, votes: Any, batch: int, weights: Any) -> None:
        real_feed(self, votes, batch, weights)
        if not calls:  # after the unlocked pass: a scan excludes the bot's votes meanwhile
            bot_votes = list(Vote.objects.filter(voter=bot).order_by("pk"))
            leaderboards.votes_exclude(arena_id=arena.pk, votes=bot_votes, reason="test")
        calls.append(1)

    monkeypatch.setattr(leaderboards._Replay, "feed", feed_then_someone_excludes)
    replayed = ratings_replay(arena_id=arena.pk)
    monkeypatch.undo()

    assert len(calls) == 3  # unlocked pass, catch-up, then the full locked pass
    assert replayed == 14 * 30
    after = _ratings(arena)
    assert ratings_replay(arena_id=arena.pk) == 14 * 30
    assert _ratings(arena) == after  # the same as a replay with nothing happening meanwhile


def test_the_replay_drops_an_elo_snapshot_built_from_the_old_ratings(
    crowd: dict[str, Any],
) -> None:
    from arena.leaderboards import votes_exclude
    from arena.models import LeaderboardSnapshot

    arena, bot = crowd["arena"], crowd["bot"]
    votes_exclude(arena_id=arena.pk, votes=list(Vote.objects.filter(voter=bot)), reason="test")
    stale = leaderboard_rebuild(arena=arena, methods=["elo"]).snapshots[0]  # before the replay

    ratings_replay(arena_id=arena.pk)

    assert not LeaderboardSnapshot.objects.filter(pk=stale.pk).exists()
    fresh = leaderboard_rebuild(arena=arena, methods=["elo"]).snapshots[0]
    elo = {r.model_id: round(r.elo, 2) for r in ModelRating.objects.filter(arena=arena)}
    assert {row["model_id"]: row["score"] for row in fresh.standings} == elo


def test_the_scan_command_reports_what_it_did(crowd: dict[str, Any]) -> None:
    from io import StringIO

    out = StringIO()
    call_command("scan_fraud", "--arena", crowd["arena"].slug, stdout=out, verbosity=0)

    # The bot is excluded; how many honest voters land on "suspicious" by chance depends on the
    # battles the seeded matchmaking served them, so only the total is fixed.
    summary = re.search(
        r"15 voter\(s\) judged \(1 excluded, (\d+) ok(?:, (\d+) suspicious)?\)", out.getvalue()
    )
    assert summary is not None, out.getvalue()
    assert int(summary.group(1)) + int(summary.group(2) or 0) == 14
    assert "60 vote(s) excluded, 0 restored" in out.getvalue()
