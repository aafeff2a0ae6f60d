"""The battle and vote writes as single PostgreSQL statements (the services' fast path).

Serving a battle writes the battle, its slots and the voter's counter; recording a vote marks
the battle voted, appends the vote, queues it for the aggregator and moves the voter's
counters. Through the ORM each is a statement of its own (and a compile of its own: most of a
request's CPU). Here each is one statement with data-modifying CTEs, atomic by itself. The reads
come in one query each, with the voter the request reads by its cookie: a battle request reads
the voter with the outputs it has seen named in the arena, a vote reads its battle with the
battle's voter and slots. Every statement goes to libpq directly, prepared the first time it
runs on a connection (unless the settings turn preparing off), so PostgreSQL parses and plans it
once per connection (``_run``).

Column lists and values come from the models' ``_meta`` and their fields' own ``pre_save`` and
``get_db_prep_save``, as the ORM would send them; a field added to a model is written here too
(the tests compare both paths). SQLite has no data-modifying CTEs: ``enabled()`` is false there
and the services take the ORM path.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import signals
from psycopg import pq
from psycopg._queries import PostgresQuery  # psycopg's own converter (pinned; tested here)
from psycopg.adapt import AdaptersMap, Transformer

from arena.models import (
    Asset,
    Battle,
    BattleSlot,
    BattleState,
    GenerativeModel,
    PendingVote,
    Vote,
    Voter,
)

M = TypeVar("M", bound=models.Model)


def enabled() -> bool:
    return connection.vendor == "postgresql"


def _db() -> BaseDatabaseWrapper:
    """The connection itself: ``django.db.connection`` is a proxy that looks it up (a context
    variable) on every attribute, dozens of times per request on this path."""
    return connections[DEFAULT_DB_ALIAS]


def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one statement (it must return rows), run as the statements here are."""
    return _run(sql, params, _db())


def _run(sql: str, params: Sequence[Any], db: BaseDatabaseWrapper) -> list[tuple[Any, ...]]:
    """The rows of one statement, on Django's connection, through libpq directly.

    psycopg's cursor runs each statement through a stack of Python generators (start, prepare
    or not, send, wait, fetch): about a tenth of a battle and vote's CPU here. This path keeps
    psycopg's own parts that matter (its query conversion, its C dumpers and loaders, its
    error classes) and calls libpq once: the statement is prepared the first time it runs on
    the connection (named ``_arena_N``; PostgreSQL then parses and plans it once) and executed
    by name after that. Where the settings turn preparing off (a transaction pooler without
    prepared statements: ``prepare_threshold`` None) it runs unnamed, parsed each time.

    A statement deallocated behind its back is prepared again. Where psycopg must do more than
    send the statement, its cursor does it (``_run_cursor``): a transaction that must begin
    first (psycopg knows its isolation level), pipeline mode.
    Errors come out as Django's (``IntegrityError``...), the connection marked for closing as
    Django marks it, and the statement is logged where Django logs queries."""
    db.ensure_connection()
    conn: psycopg.Connection[Any] = db.connection
    beginning = not conn.autocommit and conn.pgconn.transaction_status == _IDLE
    if beginning or getattr(conn, "_pipeline", None):
        return _run_cursor(sql, params, db)
    started = time.monotonic()
    with db.wrap_database_errors:
        statements = _statements(conn)
        statements.query.convert(sql, params)
        result = statements.execute()
        if result.status not in _ROWS_OR_DONE:
            raise _error(result, conn)
        statements.transformer.set_pgresult(result)
        rows: list[tuple[Any, ...]] = statements.transformer.load_rows(0, result.ntuples, tuple)
    _log(db, sql, params, started)
    return rows


def _run_cursor(sql: str, params: Sequence[Any], db: BaseDatabaseWrapper) -> list[tuple[Any, ...]]:
    """The same through a psycopg server-side binding cursor (it prepares a statement it has
    run ``prepare_threshold`` times on the connection)."""
    started = time.monotonic()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    _log(db, sql, params, started)
    return rows


def _log(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any], started: float) -> None:
    """Where Django logs queries (``connection.queries``, DEBUG or a test asking for them)."""
    if db.queries_logged:
        db.queries_log.append(
            {"sql": sql % tuple(map(repr, params)), "time": f"{time.monotonic() - started:.3f}"}
        )


_IDLE = pq.TransactionStatus.IDLE
_FATAL = pq.ExecStatus.FATAL_ERROR
_ROWS_OR_DONE = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_NO_SUCH_STATEMENT = b"26000"  # invalid_sql_statement_name
_MAX_STATEMENTS = 100  # per connection; past that, statements run unnamed


class _Statements:
    """What this module prepared on one connection, and how its statements are sent and their
    results read."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self.serial = 0
        # One per connection, as a psycopg cursor keeps one for all it executes: it keeps the
        # dumpers it found for each type of parameter.
        self.transformer = Transformer(_Context(conn))
        self.query = PostgresQuery(self.transformer)

    def execute(self) -> pq.abc.PGresult:
        """Send the converted ``query``: by name once prepared, unnamed where nothing is
        prepared (the settings turn preparing off, or past ``_MAX_STATEMENTS``: the hot path
        has a dozen, and a caller of ``run`` with ever new statements must not fill the
        server's memory with them). A statement deallocated behind this module's back
        (DEALLOCATE, DISCARD) is prepared again: at once where the failure aborted no
        transaction, else next time."""
        query, pgconn = self.query, self.conn.pgconn
        name = self.names.get((query.query, query.types))
        if name is None:
            if self.conn.prepare_threshold is None or len(self.names) >= _MAX_STATEMENTS:
                return pgconn.exec_params(query.query, query.params, query.types, query.formats)
            name = self._prepare()
        result = pgconn.exec_prepared(name, query.params, query.formats)  # type: ignore[arg-type]
        if result.status == _FATAL and result.error_field(_SQLSTATE) == _NO_SUCH_STATEMENT:
            self.names.clear()
            if self.conn.autocommit:
                result = pgconn.exec_prepared(self._prepare(), query.params, query.formats)  # type: ignore[arg-type]
        return result

    def _prepare(self) -> bytes:
        self.serial += 1
        name = b"_arena_%d" % self.serial
        result = self.conn.pgconn.prepare(name, self.query.query, self.query.types)
        if result.status not in _ROWS_OR_DONE:
            raise _error(result, self.conn)
        self.names[(self.query.query, self.query.types)] = name
        return name


class _Context:
    """The adaptation context of the connection's results, with psycopg's own (C) loader for
    ``timestamptz``: Django registers a Python one that parses the text and sets the tzinfo it
    wants, which is the one psycopg sets when the session's time zone is UTC, as Django makes
    it with ``USE_TZ`` (otherwise Django's loader stays)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.connection = conn
        self.adapters = conn.adapters
        if _django_tz(conn) is UTC and (conn.pgconn.parameter_status(b"TimeZone") == b"UTC"):
            loader = psycopg.adapters.get_loader(_TIMESTAMPTZ, pq.Format.TEXT)
            assert loader is not None  # psycopg's own, always registered
            self.adapters = AdaptersMap(conn.adapters)
            self.adapters.register_loader("timestamptz", loader)


_TIMESTAMPTZ = 1184


def _django_tz(conn: psycopg.Connection[Any]) -> Any:
    loader = conn.adapters.get_loader(_TIMESTAMPTZ, pq.Format.TEXT)
    return getattr(loader, "timezone", None)


def _statements(conn: psycopg.Connection[Any]) -> _Statements:
    """The connection's: kept on it, so they go with it when Django opens a new one."""
    found: _Statements | None = getattr(conn, "_arena_statements", None)
    if found is None:
        found = conn._arena_statements = _Statements(conn)  # type: ignore[attr-defined]
    return found


def _error(result: pq.abc.PGresult, conn: psycopg.Connection[Any]) -> psycopg.Error:
    """The error psycopg's cursor raises for this result; OperationalError when the
    connection itself is gone."""
    if conn.pgconn.status == pq.ConnStatus.BAD:
        return psycopg.OperationalError(
            conn.pgconn.get_error_message() or "the connection to the database was lost"
        )
    return psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


@functools.cache
def _insert_fields(model: type[models.Model]) -> tuple[list[models.Field[Any, Any]], str, str]:
    """The fields an INSERT of ``model`` writes (all concrete but an auto primary key), the
    quoted column list and a matching placeholder list."""
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField))  # Big/Small count too
    ]
    quote = connection.ops.quote_name
    return fields, ", ".join(quote(f.column) for f in fields), ", ".join(["%s"] * len(fields))


def _values(instance: models.Model, db: BaseDatabaseWrapper) -> list[Any]:
    fields, _, _ = _insert_fields(type(instance))
    return [f.get_db_prep_save(f.pre_save(instance, True), db) for f in fields]


def _saved(instance: models.Model, pk: int, db: BaseDatabaseWrapper) -> None:
    """The row is in: the instance says so, and ``post_save`` goes out as the ORM sends it
    (the metrics count battles and votes there)."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = db.alias
    signals.post_save.send(
        sender=type(instance),
        instance=instance,
        created=True,
        update_fields=None,
        raw=False,
        using=db.alias,
    )


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _row_sql(model: type[models.Model], column: str) -> tuple[str, list[str]]:
    fields = model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    where = connection.ops.quote_name(column)
    return f"SELECT {columns} FROM {_table(model)} WHERE {where} = %s", [f.attname for f in fields]


def row_get(model: type[M], *, column: str, value: Any) -> M | None:
    """The one row of ``model`` whose (unique) ``column`` is ``value``, or None."""
    sql, names = _row_sql(model, column)
    db = _db()
    rows = _run(sql, [value], db)
    return model.from_db(db.alias, names, list(rows[0])) if rows else None


def seen_sql(voter: str) -> str:
    """One column: the outputs of the most recent voted battles of the voter ``voter`` (an SQL
    expression) in an arena. Its placeholders, after any in ``voter``: the arena's id, then how
    many battles.

    The state is written into the statement, so the planner can use the partial index on a
    voter's voted battles (battle_voter_revealed_idx) whatever the parameters; the slots are
    then read by battle id (an IN over the subquery let PostgreSQL hash-join every slot)."""
    recent = (
        f"SELECT id FROM {_table(Battle)} WHERE voter_id = {voter} AND arena_id = %s "
        f"AND state = '{BattleState.VOTED.value}' ORDER BY id DESC LIMIT %s"
    )
    if connection.vendor != "postgresql":
        return f"SELECT asset_id FROM {_table(BattleSlot)} WHERE battle_id IN ({recent})"
    return f"SELECT asset_id FROM {_table(BattleSlot)} WHERE battle_id = ANY(ARRAY({recent}))"


@functools.cache
def _voter_seen_sql() -> tuple[str, list[str]]:
    fields = Voter._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(f"v.{quote(f.column)}" for f in fields)
    sql = (
        f"SELECT {columns}, ARRAY({seen_sql('v.id')}) FROM {_table(Voter)} v WHERE v.public_id = %s"
    )
    return sql, [f.attname for f in fields]


def voter_with_seen(*, public_id: Any, arena_id: int, recent: int) -> tuple[Voter, set[int]] | None:
    """The voter whose public id is ``public_id`` and the outputs of its ``recent`` last voted
    battles in the arena (what a battle must not show it again): one query. None when there
    is no such voter."""
    sql, names = _voter_seen_sql()
    db = _db()
    rows = _run(sql, [arena_id, recent, public_id], db)
    if not rows:
        return None
    *values, seen = rows[0]
    return Voter.from_db(db.alias, names, values), set(seen)


def battle_insert(*, battle: Battle, slots: Sequence[tuple[int, int]]) -> None:
    """Insert ``battle`` (unsaved), one slot per ``(model id, asset id)`` in slot order, and
    count it served to its voter: one statement. Sets the battle's primary key."""
    db = _db()
    params = [
        *_values(battle, db),
        list(range(len(slots))),
        [asset_id for _, asset_id in slots],
        [model_id for model_id, _ in slots],
        battle.voter_id,
    ]
    ((pk,),) = _run(_battle_insert_sql(), params, db)
    _saved(battle, pk, db)


@functools.cache
def _battle_insert_sql() -> str:
    _, columns, marks = _insert_fields(Battle)
    return (
        f"WITH b AS (INSERT INTO {_table(Battle)} ({columns}) VALUES ({marks}) RETURNING id), "
        f"s AS (INSERT INTO {_table(BattleSlot)} (battle_id, position, asset_id, model_id) "
        "SELECT b.id, x.position, x.asset_id, x.model_id FROM b, "
        "unnest(%s::smallint[], %s::bigint[], %s::bigint[]) AS x(position, asset_id, model_id)), "
        f"v AS (UPDATE {_table(Voter)} SET battles_served = battles_served + 1 WHERE id = %s) "
        "SELECT id FROM b"
    )


@functools.cache
def _battle_sql() -> tuple[str, list[str], list[str]]:
    quote = connection.ops.quote_name
    battle = [f.attname for f in Battle._meta.concrete_fields]
    voter = [f.attname for f in Voter._meta.concrete_fields]
    columns = ", ".join(
        [f"b.{quote(f.column)}" for f in Battle._meta.concrete_fields]
        + [f"v.{quote(f.column)}" for f in Voter._meta.concrete_fields]
    )
    sql = (
        f"SELECT {columns}, s.position, s.model_id, s.asset_id, a.media_type, a.fmt, a.width, "
        "a.height, a.file, a.original, a.original_fmt, m.name, m.organisation, m.link "
        f"FROM {_table(Battle)} b "
        f"JOIN {_table(Voter)} v ON v.id = b.voter_id "
        f"JOIN {_table(BattleSlot)} s ON s.battle_id = b.id "
        f"JOIN {_table(Asset)} a ON a.id = s.asset_id "
        f"JOIN {_table(GenerativeModel)} m ON m.id = s.model_id "
        "WHERE b.public_id = %s ORDER BY s.position"
    )
    return sql, battle, voter


SlotRow = tuple[Any, ...]  # position, model id, asset id, media type, fmt, width, height, file,
# original, original fmt, model name, organisation, link


@dataclass(frozen=True)
class BattleRead:
    """A battle as its vote reads it: the row, the voter it was served to, and its slots with
    their assets and models, in slot order."""

    battle: Battle
    voter: Voter
    slots: list[SlotRow]


def battle_with_slots(*, public_id: Any) -> BattleRead | None:
    """The battle, its voter and its slots with their assets and models: one query, no lock
    (``vote_insert`` writes only while the battle is still served). None when there is no such
    battle."""
    sql, battle_names, voter_names = _battle_sql()
    db = _db()
    rows = _run(sql, [public_id], db)
    if not rows:
        return None
    first, width = rows[0], len(battle_names) + len(voter_names)
    battle = Battle.from_db(db.alias, battle_names, list(first[: len(battle_names)]))
    voter = Voter.from_db(db.alias, voter_names, list(first[len(battle_names) : width]))
    return BattleRead(battle=battle, voter=voter, slots=[tuple(row[width:]) for row in rows])


def vote_insert(
    *, vote: Vote, voted_at: datetime, counters: dict[str, int], prefix: str, user_agent: str
) -> bool:
    """Mark the vote's battle voted (if it is still only served), append ``vote`` (unsaved),
    queue it for the aggregator unless its battle is named, and add ``counters`` to its voter
    (with the latest network and user-agent hashes): one statement. Returns False, writing
    nothing, when the battle was no longer ``served``. Sets the vote's primary key."""
    db = _db()
    sql = _vote_insert_sql(tuple(counters))
    params = [
        BattleState.VOTED,
        voted_at,
        vote.battle_id,
        BattleState.SERVED,
        *_values(vote, db),
        vote.arena_id,
        not vote.is_named,
        *counters.values(),
        prefix,
        user_agent,
        vote.voter_id,
    ]
    rows = _run(sql, params, db)
    if not rows:
        return False
    _saved(vote, rows[0][0], db)
    return True


@functools.cache
def _vote_insert_sql(counters: tuple[str, ...]) -> str:
    _, columns, marks = _insert_fields(Vote)
    counted = ", ".join(f"{name} = {name} + %s" for name in counters)
    return (
        f"WITH b AS (UPDATE {_table(Battle)} SET state = %s, voted_at = %s "
        "WHERE id = %s AND state = %s RETURNING id), "
        f"v AS (INSERT INTO {_table(Vote)} ({columns}) SELECT {marks} FROM b RETURNING id), "
        f"p AS (INSERT INTO {_table(PendingVote)} (vote_id, arena_id) "
        "SELECT id, %s FROM v WHERE %s), "
        f"u AS (UPDATE {_table(Voter)} SET {counted}, prefix_hash = %s, user_agent_hash = %s "
        "WHERE id = %s AND EXISTS (SELECT 1 FROM v)) "
        "SELECT id FROM v"
    )
