"""The battle and vote path's two ways to the database agree: on PostgreSQL each write is one
statement (arena.hotpath), elsewhere the ORM writes row by row. Both store the same rows, and
what a service hands back (the served battle, the revealed vote) reads like the stored rows.

The per-process caches behind the battle path (arena.localcache) hold an arena and its pool of
ready outputs for ARENA_LOCAL_CACHE_S, and a pool that cannot fill a battle is read again.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from typing import Any

import pytest
from django.db import connection

from arena import hotpath, localcache, selectors
from arena.errors import AlreadyVoted, NotEnoughAssets, NotFound
from arena.models import (
    Arena,
    Asset,
    AssetStatus,
    Battle,
    BattleSlot,
    BattleState,
    GenerativeModel,
    PendingVote,
    Vote,
    Voter,
)
from arena.services import battle_create, vote_record
from arena.tokens import battle_token_make
from tests.factories import AssetFactory, VoterFactory, ready_arena

ON_POSTGRES = connection.vendor == "postgresql"
PATHS = ["one statement", "row by row"] if ON_POSTGRES else ["row by row"]


@pytest.fixture(autouse=True)
def _votes_wait_for_the_aggregator(requested_drains: list[int]) -> None:
    """The votes stay queued."""


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "row by row":
        monkeypatch.setattr(hotpath, "enabled", lambda: False)
    return str(request.param)


def _token(battle: Battle) -> str:
    return battle_token_make(battle_public_id=str(battle.public_id), nonce=battle.nonce)


def _vote(battle: Battle, voter: Voter, **ballot: Any) -> Vote:
    return vote_record(
        battle_public_id=str(battle.public_id),
        token=_token(battle),
        voter=voter,
        client_ip="203.0.113.9",
        user_agent="test-agent",
        **ballot,
    )


def _fresh(battle: Battle) -> Battle:
    return Battle.objects.get(pk=battle.pk)


def _shown(battle: Battle) -> tuple[Any, ...]:
    """What ``battle_view`` shows, each media link replaced by the slot it opens (links carry
    their signing time)."""
    view = selectors.battle_view(battle=battle)
    slots = [
        (
            replace(slot, url=""),
            selectors.battle_slot_for_media(token=slot.url.rsplit("/", 1)[-1]).pk,
        )
        for slot in view.slots
    ]
    return view.revealed, view.ranking, slots


@pytest.mark.django_db
def test_a_served_battle_is_stored_whole_and_counted_to_its_voter(path: str) -> None:
    arena = ready_arena(models=4, k_values=[4])
    voter = VoterFactory.create()

    battle = battle_create(arena=arena, voter=voter, mode="rank_k", rng=random.Random(1))

    stored = _fresh(battle)
    assert (stored.arena_id, stored.voter_id, stored.mode, stored.k) == (
        arena.pk,
        voter.pk,
        "rank_k",
        4,
    )
    assert (stored.state, stored.is_named, stored.nonce) == (
        BattleState.SERVED,
        False,
        battle.nonce,
    )
    assert stored.public_id == battle.public_id and stored.created_at is not None
    slots = list(BattleSlot.objects.filter(battle=stored).order_by("position"))
    assert [s.position for s in slots] == [0, 1, 2, 3]
    assert len({s.model_id for s in slots}) == 4
    for slot in slots:
        asset = Asset.objects.get(pk=slot.asset_id)
        assert (asset.model_id, asset.prompt_id) == (slot.model_id, stored.prompt_id)
    assert Voter.objects.get(pk=voter.pk).battles_served == 1


@pytest.mark.django_db
def test_the_answer_to_a_served_battle_reads_like_the_stored_battle(path: str) -> None:
    arena = ready_arena(models=4, k_values=[4])
    voter = VoterFactory.create()

    battle = battle_create(arena=arena, voter=voter, mode="best_of_k", rng=random.Random(2))

    assert battle.prompt.text == _fresh(battle).prompt.text
    assert _shown(battle) == _shown(_fresh(battle))


@pytest.mark.django_db
def test_a_vote_is_stored_with_its_queue_row_and_its_voter_counters(
    path: str, requested_drains: list[int]
) -> None:
    arena = ready_arena(models=4, k_values=[4])
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="rank_k", rng=random.Random(3))

    vote = _vote(battle, voter, ranks={"A": 1, "B": 2, "C": 2, "D": 3})

    stored = Vote.objects.get(pk=vote.pk)
    slots = dict(BattleSlot.objects.filter(battle=battle).values_list("position", "model_id"))
    assert stored.ranking == [[slots[0]], [slots[1], slots[2]], [slots[3]]]
    assert stored.slot_ranking == [["A"], ["B", "C"], ["D"]]
    assert (stored.outcome, stored.is_partial, stored.is_named) == ("ranked", False, False)
    assert (stored.battle_id, stored.arena_id, stored.voter_id) == (battle.pk, arena.pk, voter.pk)
    assert stored.too_fast and stored.min_view_ms > stored.time_to_vote_ms >= 0
    assert stored.client_hash and stored.prefix_hash and stored.user_agent_hash
    assert stored.created_at is not None
    assert PendingVote.objects.filter(vote=stored, arena=arena).exists()
    assert requested_drains == [arena.pk]
    battle_row = _fresh(battle)
    assert battle_row.state == BattleState.VOTED and battle_row.voted_at is not None
    counted = Voter.objects.get(pk=voter.pk)
    assert (counted.votes_cast, counted.fast_votes, counted.ties_cast) == (1, 1, 0)
    assert (counted.prefix_hash, counted.user_agent_hash) == (
        stored.prefix_hash,
        stored.user_agent_hash,
    )


@pytest.mark.django_db
def test_a_tie_counts_as_one_to_the_voter(path: str) -> None:
    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="pairwise")

    _vote(battle, voter, choice="tie")

    assert Voter.objects.values_list("votes_cast", "ties_cast").get(pk=voter.pk) == (1, 1)


@pytest.mark.django_db
def test_the_reveal_reads_like_the_stored_vote(path: str) -> None:
    arena = ready_arena(models=4, k_values=[4])
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="best_of_k", rng=random.Random(4))

    vote = _vote(battle, voter, choice="C")

    revealed, ranking, slots = _shown(vote.battle)
    assert revealed and ranking == [["C"], ["A", "B", "D"]]
    assert (revealed, ranking, slots) == _shown(_fresh(battle))
    assert all(slot.model_name and slot.original_url for slot, _ in slots)


@pytest.mark.django_db
def test_a_second_vote_on_a_battle_stores_nothing(path: str) -> None:
    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="pairwise")
    _vote(battle, voter, choice="A")

    with pytest.raises(AlreadyVoted):
        _vote(battle, voter, choice="B")

    assert Vote.objects.filter(battle=battle).count() == 1
    assert Voter.objects.values_list("votes_cast", "rejected_votes").get(pk=voter.pk) == (1, 1)


@pytest.mark.django_db
def test_a_clash_inside_a_callers_transaction_is_refused_and_the_transaction_goes_on(
    path: str,
) -> None:
    """A vote row that exists while its battle still says served (the insert clashes): the
    caller's transaction (a test's, here) survives, and the refusal is counted."""
    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="pairwise")
    models = list(BattleSlot.objects.filter(battle=battle).values_list("model_id", flat=True))
    Vote.objects.create(
        battle=battle, arena=arena, voter=voter, mode="pairwise", outcome="win",
        ranking=[[models[0]], [models[1]]], slot_ranking=[["A"], ["B"]], time_to_vote_ms=1,
        client_hash="x", user_agent_hash="y",
    )  # fmt: skip

    with pytest.raises(AlreadyVoted):
        _vote(battle, voter, choice="B")

    assert _fresh(battle).state == BattleState.SERVED  # the failed vote changed nothing
    assert Voter.objects.values_list("votes_cast", "rejected_votes").get(pk=voter.pk) == (0, 1)


@pytest.mark.django_db
def test_an_unknown_battle_is_not_found(path: str) -> None:
    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="pairwise")
    token = _token(battle)
    Battle.objects.filter(pk=battle.pk).update(public_id="00000000-0000-4000-8000-000000000000")

    with pytest.raises(NotFound):
        vote_record(battle_public_id=str(battle.public_id), token=token, voter=voter, choice="A")

    assert not Vote.objects.exists()


@pytest.mark.django_db
def test_a_named_battle_s_vote_is_stored_but_not_queued(
    path: str, requested_drains: list[int]
) -> None:
    from arena.services import battle_create_named

    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    slugs = list(arena.generative_models.values_list("slug", flat=True))
    battle = battle_create_named(arena=arena, voter=voter, model_slugs=slugs)

    vote = _vote(battle, voter, choice="A")

    assert Vote.objects.get(pk=vote.pk).is_named
    assert not PendingVote.objects.exists() and requested_drains == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_of_two_votes_sent_at_once_on_one_battle_exactly_one_lands(path: str, attempt: int) -> None:
    arena = ready_arena(models=2)
    voter = VoterFactory.create()
    battle = battle_create(arena=arena, voter=voter, mode="pairwise")
    barrier, outcomes = threading.Barrier(2), []

    def vote(choice: str) -> None:
        try:
            barrier.wait()
            _vote(battle, voter, choice=choice)
            outcomes.append("stored")
        except AlreadyVoted:
            outcomes.append("already voted")
        except Exception as exc:  # anything else fails the test below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=(c,)) for c in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["already voted", "stored"]
    assert Vote.objects.filter(battle=battle).count() == 1
    assert PendingVote.objects.count() == 1
    assert Voter.objects.values_list("votes_cast", "rejected_votes").get(pk=voter.pk) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_an_output_deleted_after_the_pool_was_read_gives_a_battle_not_an_error(
    path: str, settings: Any
) -> None:
    settings.ARENA_LOCAL_CACHE_S = 60.0
    arena = ready_arena(models=2, prompts=2)
    first, second = arena.prompt_set.prompts.order_by("pk")
    Asset.objects.filter(prompt=second).update(status=AssetStatus.PENDING)
    assert list(selectors.arena_ready_pool_cached(arena=arena).by_prompt) == [first.pk]
    Asset.objects.filter(prompt=second).update(status=AssetStatus.READY)
    # An admin removes outputs no battle showed yet (shown ones are protected) that this
    # process's pool still lists.
    Asset.objects.filter(prompt=first).delete()

    battle = battle_create(arena=arena, voter=VoterFactory.create(), mode="pairwise")

    assert battle.prompt_id == second.pk
    assert set(
        BattleSlot.objects.filter(battle=battle).values_list("asset__prompt", flat=True)
    ) == {second.pk}
    assert Battle.objects.count() == 1  # the refused insert left nothing behind


def test_the_slots_insert_names_every_column_a_slot_has() -> None:
    """The battle's and the vote's inserts take their columns from the models; the slots'
    insert (unnest of three arrays) names its own: a column added to BattleSlot must be added
    there too."""
    assert {f.column for f in BattleSlot._meta.concrete_fields} == {
        "id",
        "battle_id",
        "position",
        "asset_id",
        "model_id",
    }


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRES, reason="prepared statements are PostgreSQL's")
def test_the_battle_and_vote_statements_are_prepared_once_they_repeat() -> None:
    """PostgreSQL parses and plans a prepared statement once per connection (it had cost about
    a third of its CPU per vote): after a few battles and votes, every statement of the path
    is prepared on the connection."""
    arena = ready_arena(models=4, k_values=[4])
    voter = VoterFactory.create()
    for _ in range(6):
        battle = battle_create(arena=arena, voter=voter, mode="pairwise", rng=random.Random(1))
        _vote(battle, voter, choice="A")
        hotpath.row_get(Voter, column="public_id", value=voter.public_id)
        hotpath.voter_with_seen(public_id=voter.public_id, arena_id=arena.pk, recent=10)

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = "\n".join(statement for (statement,) in cursor.fetchall())

    for start in (
        'WITH b AS (INSERT INTO "arena_battle"',  # the battle, its slots, its voter's counter
        'WITH b AS (UPDATE "arena_battle"',  # the vote
        'FROM "arena_battle" b JOIN "arena_voter"',  # a vote's battle, its voter and slots
        'FROM "arena_voter" WHERE "public_id" = $1',  # the voter behind a cookie
        'FROM "arena_voter" v WHERE v.public_id = $3',  # ... with the outputs it has seen
        'SELECT asset_id FROM "arena_battleslot"',  # the outputs the voter has seen named
    ):
        assert start in prepared


def _prepared_like(text: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{text}%"]
        )
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_a_statement_deallocated_behind_the_path_s_back_is_prepared_again() -> None:
    assert hotpath.run("SELECT %s::int + 1 AS probe_plus", [1]) == [(2,)]
    assert _prepared_like("probe_plus")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert not _prepared_like("probe_plus")

    assert hotpath.run("SELECT %s::int + 1 AS probe_plus", [2]) == [(3,)]
    assert _prepared_like("probe_plus")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_inside_a_transaction_a_deallocated_statement_fails_once_then_is_prepared_again() -> None:
    """The failure aborted the transaction, so it cannot be retried there: the caller's
    transaction rolls back, and the next run prepares the statement again."""
    from django.db import DatabaseError, transaction

    assert hotpath.run("SELECT %s::int + 1 AS probe_in_tx", [1]) == [(2,)]
    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
        hotpath.run("SELECT %s::int + 1 AS probe_in_tx", [2])

    assert hotpath.run("SELECT %s::int + 1 AS probe_in_tx", [3]) == [(4,)]
    assert _prepared_like("probe_in_tx")


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_without_prepared_statements_a_statement_runs_unnamed(monkeypatch: Any) -> None:
    """A transaction pooler without prepared statements (``prepare_threshold`` None)."""
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    for n in range(3):
        assert hotpath.run("SELECT %s::int * 7 AS probe_times", [n]) == [(7 * n,)]
    assert not _prepared_like("probe_times")


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_past_its_cap_a_connection_prepares_no_more_statements(monkeypatch: Any) -> None:
    """A caller of ``hotpath.run`` with ever new statements must not fill the server's memory
    with prepared statements: past the cap they run unnamed."""
    hotpath.run("SELECT 1 AS cap_probe_0", [])
    prepared = len(hotpath._statements(connection.connection).names)
    monkeypatch.setattr(hotpath, "_MAX_STATEMENTS", prepared + 1)

    assert hotpath.run("SELECT %s::int AS cap_probe_1", [1]) == [(1,)]
    assert hotpath.run("SELECT %s::int AS cap_probe_2", [2]) == [(2,)]
    assert hotpath.run("SELECT %s::int AS cap_probe_2", [3]) == [(3,)]

    assert _prepared_like("cap_probe_1")
    assert not _prepared_like("cap_probe_2")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_statements_inside_a_transaction_run_in_it() -> None:
    """The first statement of a transaction has it begun (psycopg knows how), so both see its
    start time; outside one, each statement is a transaction of its own."""
    from django.db import transaction

    now = "SELECT now(), clock_timestamp()"
    with transaction.atomic():
        ((first, _),) = hotpath.run(now, [])
        ((second, clock),) = hotpath.run(now, [])
        assert first == second < clock
    ((third, _),) = hotpath.run(now, [])
    ((fourth, _),) = hotpath.run(now, [])
    assert second < third < fourth


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_a_lost_connection_is_an_operational_error_and_the_next_request_gets_a_new_one() -> None:
    import psycopg
    from django.db import OperationalError, close_old_connections

    ((pid,),) = hotpath.run("SELECT pg_backend_pid()", [])
    with psycopg.connect(  # another connection kills this one
        **{k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"},
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])

    with pytest.raises(OperationalError):
        hotpath.run("SELECT pg_backend_pid()", [])
    close_old_connections()  # what Django does at the end of the request: it is unusable
    ((new_pid,),) = hotpath.run("SELECT pg_backend_pid()", [])
    assert new_pid != pid


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRES, reason="the path runs statements through libpq")
def test_the_path_reads_times_as_the_orm_does() -> None:
    voter = VoterFactory.create()
    read = hotpath.row_get(Voter, column="public_id", value=voter.public_id)
    orm = Voter.objects.get(pk=voter.pk)
    assert read is not None and read.created_at == orm.created_at
    assert read.created_at.tzinfo is orm.created_at.tzinfo  # UTC, as Django sets it


# --- the per-process caches -------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(localcache.time, "monotonic", lambda: now[0])
    return now


@pytest.mark.django_db
def test_an_arena_is_read_once_per_window(
    clock: list[float], settings: Any, django_assert_num_queries: Any
) -> None:
    settings.ARENA_LOCAL_CACHE_S = 2.0
    arena = ready_arena(models=2)
    selectors.arena_get(slug=arena.slug, cached=True)
    Arena.objects.filter(pk=arena.pk).update(name="Renamed")

    with django_assert_num_queries(0):
        cached = selectors.arena_get(slug=arena.slug, cached=True)
    clock[0] += 2.5
    with django_assert_num_queries(1):
        fresh = selectors.arena_get(slug=arena.slug, cached=True)

    assert (cached.name, fresh.name) == (arena.name, "Renamed")


@pytest.mark.django_db
def test_each_caller_gets_its_own_copy_of_a_cached_arena(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.ARENA_LOCAL_CACHE_S = 60.0
    arena = ready_arena(models=2)
    first = selectors.arena_get(slug=arena.slug, cached=True)
    first.name = "changed by one caller"
    first.vote_modes.append("changed too")
    first.prompt_set.name = "and its prompt set"

    second = selectors.arena_get(slug=arena.slug, cached=True)
    assert (second.name, second.vote_modes) == (arena.name, arena.vote_modes)
    assert second.prompt_set.name == arena.prompt_set.name
    assert second.pk == arena.pk and not second._state.adding  # a loaded row, as the ORM's
    with django_assert_num_queries(0):
        assert second.prompt_set_id == arena.prompt_set_id


@pytest.mark.django_db
def test_a_missing_arena_is_looked_up_every_time(settings: Any) -> None:
    settings.ARENA_LOCAL_CACHE_S = 60.0
    with pytest.raises(NotFound):
        selectors.arena_get(slug="later", cached=True)
    arena = ready_arena(models=2, slug="later")

    assert selectors.arena_get(slug="later", cached=True).pk == arena.pk


@pytest.mark.django_db
def test_a_deactivated_model_leaves_the_battles_once_the_window_ends(
    clock: list[float], settings: Any
) -> None:
    settings.ARENA_LOCAL_CACHE_S = 2.0
    arena = ready_arena(models=3)
    voter = VoterFactory.create()
    battle_create(arena=arena, voter=voter, mode="pairwise")
    gone = arena.generative_models.order_by("pk")[0]
    GenerativeModel.objects.filter(pk=gone.pk).update(is_active=False)
    clock[0] += 2.5

    served = {
        model_id
        for _ in range(20)
        for model_id in BattleSlot.objects.filter(
            battle=battle_create(arena=arena, voter=voter, mode="pairwise")
        ).values_list("model_id", flat=True)
    }

    assert gone.pk not in served and len(served) == 2


@pytest.mark.django_db
def test_outputs_that_became_ready_serve_a_battle_at_once(settings: Any) -> None:
    settings.ARENA_LOCAL_CACHE_S = 60.0
    arena = ready_arena(models=2, prompts=1)
    voter = VoterFactory.create()
    pending = Asset.objects.filter(model__arenas=arena).order_by("pk")[0]
    Asset.objects.filter(pk=pending.pk).update(status=AssetStatus.PENDING)
    with pytest.raises(NotEnoughAssets):
        battle_create(arena=arena, voter=voter, mode="pairwise")

    Asset.objects.filter(pk=pending.pk).update(status=AssetStatus.READY)

    assert battle_create(arena=arena, voter=voter, mode="pairwise").k == 2


@pytest.mark.django_db
def test_new_outputs_join_the_pool_once_the_window_ends(clock: list[float], settings: Any) -> None:
    settings.ARENA_LOCAL_CACHE_S = 2.0
    arena = ready_arena(models=2, prompts=1)
    before = selectors.arena_ready_pool_cached(arena=arena)
    model = arena.generative_models.order_by("pk").first()
    extra = AssetFactory.create(model=model, prompt=arena.prompt_set.prompts.first(), seed=1)

    assert extra.pk not in selectors.arena_ready_pool_cached(arena=arena).outputs
    clock[0] += 2.5
    assert extra.pk in selectors.arena_ready_pool_cached(arena=arena).outputs
    assert extra.pk not in before.outputs


@pytest.mark.django_db
def test_with_the_window_at_zero_nothing_is_kept(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.ARENA_LOCAL_CACHE_S = 0.0
    arena = ready_arena(models=2)
    selectors.arena_get(slug=arena.slug, cached=True)

    with django_assert_num_queries(1):
        selectors.arena_get(slug=arena.slug, cached=True)


@pytest.mark.django_db
def test_other_pages_read_the_arena_every_time(settings: Any) -> None:
    settings.ARENA_LOCAL_CACHE_S = 60.0
    arena = ready_arena(models=2)
    selectors.arena_get(slug=arena.slug, cached=True)
    Arena.objects.filter(pk=arena.pk).update(publish_votes=True)

    assert selectors.arena_get(slug=arena.slug).publish_votes


@pytest.mark.django_db
def test_with_the_cache_down_a_process_fits_the_beliefs_once_per_window(
    clock: list[float], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache
    from django.test.utils import CaptureQueriesContext
    from redis.exceptions import ConnectionError as RedisDown

    def down(*args: Any, **kwargs: Any) -> Any:
        raise RedisDown("Redis is restarting")

    settings.ARENA_LOCAL_CACHE_S = 2.0
    arena = ready_arena(models=4)
    voter = VoterFactory.create()
    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)

    fits = []
    for step in (0.0, 0.5, 0.5, 2.0):  # the last one after the window
        clock[0] += step
        with CaptureQueriesContext(connection) as queries:
            battle_create(arena=arena, voter=voter, mode="pairwise")
        fits.append(sum('"arena_pairtally"' in q["sql"] for q in queries.captured_queries))

    assert fits == [1, 0, 0, 1]
