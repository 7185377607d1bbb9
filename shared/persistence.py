"""What the event store needs of the library's recorders beyond their interface: a SQLite process
recorder inserting a save's events in a few multi-row inserts (the library inserts row by row
only to learn each row's notification id) on connections that keep their prepared statements,
and committing the saves of concurrent threads together, and queries that read many streams at
once: their events at one version, their last events (or latest snapshots), their events after
given versions."""

from __future__ import annotations

import contextlib
import copy
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar
from uuid import UUID, SafeUUID

import psycopg
from eventsourcing.persistence import (
    AggregateRecorder,
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.popo import POPOProcessRecorder
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresProcessRecorder
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteAggregateRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteProcessRecorder,
)
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier


def _id_text(originator_id: UUID | str) -> str:
    """An originator id as the library's SQLite tables hold it."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


_new_object = object.__new__
_set_attribute = object.__setattr__
_UNKNOWN = SafeUUID.unknown


def uuid_from_hex(text: str) -> UUID:
    """`UUID(text)` for the 32 hex digits the SQLite tables hold, in half its time (every row the
    relay, a catch-up or a load reads makes one). For 32 characters `UUID` is `int(text, 16)` too,
    so it accepts and refuses the same texts; a sign that would make the number negative, and
    any other length, go through `UUID` itself."""
    if len(text) != 32 or text[0] == "-":
        return UUID(text)
    uuid = _new_object(UUID)
    _set_attribute(uuid, "int", int(text, 16))
    _set_attribute(uuid, "is_safe", _UNKNOWN)
    return uuid


class _Save:
    """One thread's save, waiting to be written with the others that came while a write was on."""

    def __init__(self, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> None:
        self.stored_events = stored_events
        self.kwargs = kwargs
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.done = False

    @property
    def trackings(self) -> list[Tracking]:
        return _trackings(self.kwargs)

    def result(self) -> Sequence[int] | None:
        if self.error is not None:
            raise self.error
        return self.ids


def _trackings(kwargs: dict[str, Any]) -> list[Tracking]:
    """The positions a save records with its events: a recorder's `tracking=` (a consumed
    partition's offset), if any, and ours, `trackings=` (a consumed batch's inbox positions)."""
    tracking: Tracking | None = kwargs.get("tracking")
    return [*([] if tracking is None else [tracking]), *kwargs.get("trackings", ())]


class InMemoryProcessRecorder(POPOProcessRecorder):
    """The library's in-memory process recorder, recording `trackings=` with the events too."""

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        for tracking in kwargs.get("trackings", ()):
            self._assert_tracking_uniqueness(tracking)

    def _update_table(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        for tracking in kwargs.get("trackings", ()):
            self._insert_tracking(tracking)
        return notification_ids


# Positions upserted in one statement at most (two parameters each: SQLite allows 32,766).
POSITIONS_PER_STATEMENT = 500
# Events inserted by one statement at most (four parameters each: 2,048 of SQLite's 32,766). One
# statement for many rows rather than `executemany`: the sqlite3 module lets go of the
# interpreter lock for every step, which `executemany` takes once a row, and any busy thread of
# the process (the event loop, the relay) then takes the lock from the writer for its whole
# turn, row after row.
ROWS_PER_INSERT = 512


def statement_sizes(count: int) -> Iterator[int]:
    """`count` rows as the rows of successive multi-row statements: ROWS_PER_INSERT each, then
    the powers of two that make up the rest. A few statements' shapes only, whatever the
    count: each is prepared once and stays in the connection's cache of statements."""
    while count:
        rows = min(ROWS_PER_INSERT, 1 << (count.bit_length() - 1))
        yield rows
        count -= rows


@functools.cache
def rows_insert(statement: str, rows: int) -> str:
    """The library's insert of one event (`statement`), made an insert of `rows` events."""
    return statement + ",(?,?,?,?)" * (rows - 1)


def _record_positions(
    recorder: Any,
    trackings: Sequence[Tracking],
    one: Callable[[Tracking], None],
    upsert: Callable[[Sequence[Tracking]], list[str]],
) -> None:
    """The positions a save records (a consumed batch: its partition's offset and one position
    per source aggregate, for the leads topic one a message), POSITIONS_PER_STATEMENT at a time
    by `upsert` (the names it moved forward), each refused as the library's one-position insert
    (`one`) refuses it: when it would not move forward, another consumer having recorded it first
    or further. One at a time, as the library does, for a single position, for a tracking table
    of the library's older form (a row per position), and for a name twice in a save (PostgreSQL
    refuses to upsert one row twice in a statement)."""
    if (
        len(trackings) < 2
        or not recorder.datastore.single_row_tracking
        or len({t.application_name for t in trackings}) != len(trackings)
    ):
        for tracking in trackings:
            one(tracking)
        return
    for start in range(0, len(trackings), POSITIONS_PER_STATEMENT):
        part = trackings[start : start + POSITIONS_PER_STATEMENT]
        advanced = upsert(part)
        if len(advanced) != len(part):
            moved = set(advanced)
            stale = [t for t in part if t.application_name not in moved] or part
            names = ", ".join(f"{t.application_name} {t.notification_id}" for t in stale[:3])
            raise IntegrityError(f"Failed to record tracking for {names}")


def _own_copy(error: BaseException) -> BaseException:
    """The error for one of the threads whose save it failed: a copy, so that each thread raises
    an error object of its own (or the error itself, should it not copy)."""
    try:
        copied = copy.copy(error)
    except Exception:
        return error
    copied.__cause__ = error
    return copied


# What refuses one save and not the others: a stream's version taken, a position recorded.
_REFUSED = (sqlite3.IntegrityError, psycopg.IntegrityError, IntegrityError)


class GroupCommit:
    """Group commit, for a recorder whose store writes one transaction at a time (SQLite has one
    writer; PostgreSQL's event table is locked by each writer, to keep notification ids in commit
    order), each commit an fsync. Saves that come from other threads while a transaction is
    being written wait for it, and are then written together, in one transaction with one
    commit, by the first of them to go on: eight requests logging visits at once cost two commits
    instead of eight. Each save stays all or nothing on its own: when one is refused (a conflict,
    a position already recorded), the group is written again save by save, each in a savepoint,
    and only that one fails. A save with nothing waiting is written as before.

    A recorder says how it writes one save (`_write_one`) and a group (`_write_group`, which
    hands `_insert_together` its savepoints and its insert, in the group's transaction)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saves = threading.Condition()  # guards the two below
        self._waiting: list[_Save] = []
        self._writing = False
        self.on_commit: Callable[[int], None] | None = None  # told how many saves each commit took

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        save = _Save(stored_events, kwargs)
        with self._saves:
            self._waiting.append(save)
            while self._writing and not save.done:
                self._saves.wait()
            if save.done:  # written in another thread's group
                return save.result()
            self._writing = True
            group, self._waiting = self._waiting, []
        try:
            self._write(group)
        finally:
            with self._saves:
                self._writing = False
                self._saves.notify_all()
        return save.result()

    def _write(self, group: list[_Save]) -> None:
        """Write the group; a failure of its transaction fails every save in it that has no error
        of its own (none of them is written)."""
        try:
            if len(group) == 1:
                group[0].ids = self._write_one(group[0].stored_events, **group[0].kwargs)
            else:
                self._write_group(group)
        except BaseException as error:
            for save in group:
                save.ids = None
                if save.error is None:
                    save.error = _own_copy(error)
            raise
        finally:
            for save in group:
                save.done = True
        if self.on_commit is not None:
            self.on_commit(len(group))

    def _write_one(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        raise NotImplementedError

    def _write_group(self, group: list[_Save]) -> None:
        raise NotImplementedError

    @staticmethod
    def _insert_together(
        group: list[_Save],
        savepoint: Callable[[], AbstractContextManager[Any]],
        insert: Callable[[Sequence[StoredEvent], list[Tracking]], Sequence[int]],
        *,
        each_committed: bool = False,
    ) -> None:
        """All the group's rows and positions in one insert; when any of it is refused, save by
        save instead, each in a savepoint of its own (or a statement), and a refused save fails
        alone. Inside a transaction any other error fails the group; when each insert commits on
        its own (`each_committed`), every save keeps its own outcome."""
        for save in group:  # a retried transaction starts again
            save.ids, save.error = None, None
        try:
            with savepoint():
                ids = insert(
                    [stored for save in group for stored in save.stored_events],
                    [tracking for save in group for tracking in save.trackings],
                )
        except _REFUSED:
            for save in group:
                try:
                    with savepoint():
                        save.ids = insert(save.stored_events, save.trackings)
                except _REFUSED as error:
                    save.error = error if isinstance(error, IntegrityError) else IntegrityError(str(error))
                    save.error.__cause__ = error
                except Exception as error:
                    if not each_committed:
                        raise
                    save.error = error  # its own: the saves before it are written, and stay
            return
        start = 0
        for save in group:
            end = start + len(save.stored_events)
            save.ids = ids[start:end]
            start = end


STATEMENTS_CACHED = 128  # prepared statements a SQLite connection keeps (sqlite3's default)


class StatementCachingSQLitePool(SQLiteConnectionPool):
    """The library's pool of SQLite connections, whose connections keep their prepared
    statements. The library opens them with `cached_statements=True`, which sqlite3 takes as a
    cache of one statement: every statement but a connection's last was parsed and planned
    again (two simple selects in turns: 11.4 µs each, against 2.7 µs cached). The rest is the
    library's own `_create_connection`."""

    def _create_connection(self) -> SQLiteConnection:
        try:
            c = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit, as the library's: its transactions say BEGIN
                cached_statements=STATEMENTS_CACHED,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                c.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=c, max_age=self.max_age)


def cache_statements(datastore: SQLiteDatastore) -> None:
    """Give a new datastore (none of its connections made yet) a pool of the same settings whose
    connections keep their prepared statements."""
    pool = datastore.pool
    datastore.pool = StatementCachingSQLitePool(
        db_name=pool.db_name,
        lock_timeout=pool.lock_timeout,
        pool_size=pool.pool_size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.pool_timeout,
        max_age=pool.max_age,
        pre_ping=pool.pre_ping,
    )
    pool.close()


class BatchedSQLiteProcessRecorder(GroupCommit, SQLiteProcessRecorder):
    """Notification ids are rowids: a single row's is the one its insert reports. Inside the
    write transaction (SQLite has one writer at a time) a multi-row insert takes consecutive
    rowids after the largest, so the ids are the range ending at last_insert_rowid(); the first
    row is looked up to make sure. The ids it reads become UUIDs by `uuid_from_hex`. Saves from
    threads that wait on a write are committed together (`GroupCommit`)."""

    def _write_one(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.transaction(commit=True) as c:
            return self._insert_events(c, stored_events, **kwargs)

    def _write_group(self, group: list[_Save]) -> None:
        with self.datastore.transaction(commit=True) as c:

            @contextmanager
            def savepoint() -> Iterator[None]:
                c.execute("SAVEPOINT save")
                try:
                    yield
                except BaseException:
                    c.execute("ROLLBACK TO save")
                    raise
                finally:
                    c.execute("RELEASE save")

            self._insert_together(group, savepoint, functools.partial(self._insert, c))

    def convert_originator_id(self, originator_id: str) -> UUID | str:
        if self.datastore.originator_id_type == "uuid":
            return uuid_from_hex(originator_id)
        return originator_id

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(c, stored_events, _trackings(kwargs))

    def _insert(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], trackings: list[Tracking]
    ) -> list[int]:
        """A save's rows (or a group's), then the positions it records; the rows' notification ids."""
        ids = self._insert_rows(c, stored_events)
        self._insert_trackings(c, trackings)
        return ids

    def _insert_trackings(self, c: SQLiteCursor, trackings: Sequence[Tracking]) -> None:
        """The positions, by `_record_positions`."""

        def upsert(part: Sequence[Tracking]) -> list[str]:
            c.execute(
                "INSERT INTO tracking (application_name, notification_id) VALUES "
                + ",".join(["(?,?)"] * len(part))
                + " ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id"
                " WHERE tracking.notification_id < excluded.notification_id RETURNING application_name",
                [value for t in part for value in (t.application_name, t.notification_id)],
            )
            return [row[0] for row in c.fetchall()]

        _record_positions(self, trackings, functools.partial(self._insert_tracking, c), upsert)

    def _insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the rows; their notification ids."""
        if not stored_events:
            return []
        if len(stored_events) == 1:  # the rowid the insert took, without asking
            s = stored_events[0]
            row = (_id_text(s.originator_id), s.originator_version, s.topic, s.state)
            c.execute(self.insert_events_statement, row)
            return [int(c.lastrowid)]
        values: list[Any] = []
        add = values.extend
        key: UUID | str | None = None
        text = ""
        for s in stored_events:  # an aggregate's events come together: its id's text once
            if s.originator_id is not key:
                key = s.originator_id
                text = _id_text(key)
            add((text, s.originator_version, s.topic, s.state))
        start = 0
        for rows in statement_sizes(len(stored_events)):
            end = start + 4 * rows  # four values a row
            c.execute(rows_insert(self.insert_events_statement, rows), values[start:end])
            start = end
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        first = last - len(stored_events) + 1
        head = stored_events[0]
        if self._rowid(c, head.originator_id, head.originator_version) != first:
            return [self._rowid(c, s.originator_id, s.originator_version) for s in stored_events]
        return list(range(first, last + 1))

    def _rowid(self, c: SQLiteCursor, originator_id: UUID | str, version: int) -> int:
        c.execute(
            f"SELECT rowid FROM {self.events_table_name} WHERE originator_id=? AND originator_version=?",
            (_id_text(originator_id), version),
        )
        return int(c.fetchone()[0])


class GroupedPostgresProcessRecorder(GroupCommit, PostgresProcessRecorder):
    """The library's PostgreSQL process recorder; saves from threads that wait on a write (each
    writer locks the events table until it commits) are committed together (`GroupCommit`).

    A save's rows are written by one call of a function this recorder creates beside its table:
    it takes the library's table lock (so ids are given in commit order) under its lock timeout,
    sends the library's notice, and inserts the rows, returning their notification ids in order.
    The rows go in as four arrays of plain values in PostgreSQL's binary format, which psycopg's
    C implementation writes and the server reads without parsing text (the library sends one
    array of a composite type, which psycopg adapts row by row in Python, as text). A save that
    records no position is that one statement on its own, committed by the server: one round
    trip, where the library's pipeline waits on the connection fourteen times. So is a group of
    such saves (should any of its rows be refused, each save is then a statement of its own);
    a group with positions is written in a transaction, as on SQLite. The whole save of one
    event: ~0.35 → ~0.16 ms of CPU; of 10,000 events (bench/bench_store): ~35,000 → ~85,000
    events/s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        name = f"{self.events_table_name}_insert"
        self.check_identifier_length(name)
        function = SQL("{schema}.{name}").format(schema=schema, name=Identifier(name))
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {function}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS TABLE (notification_id bigint) LANGUAGE plpgsql AS $$ "
                "BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} AS t "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) RETURNING t.notification_id; "
                "END $$"
            ).format(
                function=function,
                id_type=Identifier(self.datastore.originator_id_type),
                lock_timeout=self.datastore.lock_timeout,
                schema=schema,
                table=table,
                channel=Identifier(self.channel_name),
            )
        )
        self.insert_rows_statement = SQL("SELECT notification_id FROM {function}(%b, %b, %b, %b)").format(
            function=function
        )
        self.insert_trackings_statement = SQL(
            "INSERT INTO {schema}.{table} AS t (application_name, notification_id) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) "
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id "
            "WHERE t.notification_id < EXCLUDED.notification_id RETURNING t.application_name"
        ).format(schema=schema, table=Identifier(self.tracking_table_name))
        select = "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
        self.select_notifications_statements = {
            inclusive: SQL(
                select + f"WHERE notification_id {'>=' if inclusive else '>'} %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(schema, table)
            for inclusive in (True, False)
        }

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's; the form the relay, catch-up and `verify` ask for (from a position, up
        to a number of rows) read as tuples in binary: 1.2–2.6 µs a row of CPU in a batch of 1,000,
        against ~3 µs as the library's dicts."""
        if start is None or stop is not None or topics:
            notifications: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        else:
            notifications = self._select_from(start, limit, inclusive_of_start)
        return notifications

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's
    def _select_from(self, start: int, limit: int, inclusive: bool) -> list[Notification]:
        statement = self.select_notifications_statements[inclusive]
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (start, limit), prepare=True, binary=True)
            return [
                Notification(originator_id, version, topic, bytes(state), notification_id)
                for notification_id, originator_id, version, topic, state in curs.fetchall()
            ]

    def _insert_stored_events(
        self, curs: psycopg.Cursor[Any], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        curs.execute(
            self.insert_rows_statement,
            (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
            ),
            prepare=True,
        )

    def _fetch_ids_after_insert_events(
        self, curs: psycopg.Cursor[Any], stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int]:
        ids = [row["notification_id"] for row in curs.fetchall()]
        if len(ids) != len(stored_events):
            raise ProgrammingError(f"{len(ids)} notification ids for {len(stored_events)} events")
        return ids

    def _write_one(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        ids: Sequence[int] | None = []
        if _trackings(kwargs):  # positions too: in a transaction, as a group's
            save = _Save(stored_events, kwargs)
            self._write_group_in_transaction([save])
            ids = save.result()
        elif stored_events:
            ids = self._insert_alone(stored_events)
        return ids

    def create_table(self) -> None:
        with self.tables_made_one_at_a_time():
            super().create_table()

    @contextmanager
    def tables_made_one_at_a_time(self) -> Iterator[None]:
        """The store's tables (the library's and ours: this recorder's, and the snapshots' the
        application makes next) made, when missing, by one process at a time: the library looks
        for them and makes them in several transactions, and two processes doing that at once
        collide ("tuple concurrently updated", a duplicate type, a migration row recorded
        twice), as a service's reader processes, started together, did. The lock is held on a
        connection of its own: the pool's (which may grow by the library's overflow) unless it
        holds one connection at most."""
        datastore = self.datastore
        if datastore.pool.max_size < 2:
            yield
            return
        key = f"{datastore.schema}.{self.events_table_name}"
        with datastore.get_connection() as conn:  # in autocommit: a session's lock
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def _insert_trackings(self, curs: psycopg.Cursor[Any], trackings: Sequence[Tracking]) -> None:
        """The positions, by `_record_positions`: one statement each was a round trip each."""

        def upsert(part: Sequence[Tracking]) -> list[str]:
            names, positions = [t.application_name for t in part], [t.notification_id for t in part]
            curs.execute(self.insert_trackings_statement, (names, positions), prepare=True)
            return [row["application_name"] for row in curs.fetchall()]

        _record_positions(self, trackings, functools.partial(self._insert_tracking, curs), upsert)

    def _insert_rows(self, curs: psycopg.Cursor[Any], stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        """The rows, by the insert function; their notification ids."""
        self._insert_stored_events(curs, stored_events)
        return self._fetch_ids_after_insert_events(curs, stored_events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's insert
    def _insert_alone(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        """One statement, which the server commits (the pool's connections are in autocommit)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._insert_rows(curs, stored_events)

    def _write_group(self, group: list[_Save]) -> None:
        if any(save.trackings for save in group):
            self._write_group_in_transaction(group)
            return
        # No positions (requests' saves): the whole group is one statement; should any of it be
        # refused, each save is a statement of its own.
        self._insert_together(
            group, contextlib.nullcontext, lambda stored, _: self._insert_alone(stored), each_committed=True
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's insert
    def _write_group_in_transaction(self, group: list[_Save]) -> None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:

            def insert(stored_events: Sequence[StoredEvent], trackings: list[Tracking]) -> Sequence[int]:
                self._insert_trackings(curs, trackings)  # the positions, then the events, as the library
                return self._insert_rows(curs, stored_events) if stored_events else []

            self._insert_together(group, conn.transaction, insert)  # a nested transaction: a savepoint


def select_states_at(
    recorder: AggregateRecorder, version: int, ids: Sequence[UUID | str]
) -> list[tuple[UUID | str, bytes]]:
    """(originator id, state) of the event at `version` of each of these streams that has one, in
    a query per 500; [] from a store this does not know (the caller then reads stream by stream)."""

    def sqlite(table: str, chunk: Sequence[UUID | str]) -> tuple[str, list[Any]]:
        return (
            f"SELECT originator_id, originator_version, topic, state FROM {table} "
            f"WHERE originator_version = ? AND originator_id IN ({','.join('?' * len(chunk))})",
            [version, *(_id_text(i) for i in chunk)],
        )

    def postgres(table: Composed, chunk: Sequence[UUID | str]) -> tuple[Composed, tuple[Any, ...]]:
        query = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_version = %s AND originator_id = ANY(%s)"
        )
        return query.format(table=table), (version, list(chunk))

    found = _select_in_chunks(recorder, ids, 500, lambda i: i, sqlite, postgres)
    return [(stored.originator_id, stored.state) for stored in found or ()]


def select_latest(recorder: AggregateRecorder, ids: Sequence[UUID | str]) -> list[StoredEvent] | None:
    """The last stored event of each of these streams that has one (for a snapshot store: the
    latest snapshot), in a query per 500; None from a store this does not know."""

    def sqlite(table: str, chunk: Sequence[UUID | str]) -> tuple[str, list[Any]]:
        return (
            f"SELECT s.originator_id, s.originator_version, s.topic, s.state FROM {table} s JOIN "
            f"(SELECT originator_id, MAX(originator_version) AS version FROM {table} "
            f"WHERE originator_id IN ({','.join('?' * len(chunk))}) GROUP BY originator_id) m "
            "ON s.originator_id = m.originator_id AND s.originator_version = m.version",
            [_id_text(i) for i in chunk],
        )

    def postgres(table: Composed, chunk: Sequence[UUID | str]) -> tuple[Composed, tuple[Any, ...]]:
        # Each stream's last row by the index, whatever the table's statistics say (with none yet,
        # after a bulk load, DISTINCT ON read the whole table: 37-60 ms for 250 streams of 200,000).
        query = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM unnest(%s::uuid[]) AS "
            "wanted(id) CROSS JOIN LATERAL (SELECT * FROM {table} WHERE originator_id = wanted.id "
            "ORDER BY originator_version DESC LIMIT 1) e"
        )
        return query.format(table=table), (list(chunk),)

    return _select_in_chunks(recorder, ids, 500, lambda i: i, sqlite, postgres)


def select_after(recorder: AggregateRecorder, after: Mapping[UUID | str, int]) -> list[StoredEvent] | None:
    """The events of each of these streams after the version given for it, each stream's in
    order, in a query per 250 streams; None from a store this does not know."""
    join = "ON e.originator_id = wanted.id AND e.originator_version > wanted.version "
    order = "ORDER BY e.originator_id, e.originator_version"

    def sqlite(table: str, chunk: Sequence[tuple[UUID | str, int]]) -> tuple[str, list[Any]]:
        return (
            f"WITH wanted(id, version) AS (VALUES {','.join(['(?, ?)'] * len(chunk))}) "
            f"SELECT e.originator_id, e.originator_version, e.topic, e.state FROM {table} e "
            f"JOIN wanted {join}{order}",
            [value for i, version in chunk for value in (_id_text(i), version)],
        )

    def postgres(
        table: Composed, chunk: Sequence[tuple[UUID | str, int]]
    ) -> tuple[Composed, tuple[Any, ...]]:
        # Each stream's rows by the index, whatever the table's statistics say: joined, the
        # planner read the whole table before it had any (a store loaded in bulk: 50 ms for 250
        # streams of 200,000, growing with it); the OFFSET keeps it from joining them again.
        query = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM "
            "unnest(%s::uuid[], %s::bigint[]) AS wanted(id, version) CROSS JOIN LATERAL "
            "(SELECT * FROM {table} WHERE originator_id = wanted.id "
            f"AND originator_version > wanted.version OFFSET 0) e {order}"
        )
        return query.format(table=table), ([i for i, _ in chunk], [version for _, version in chunk])

    return _select_in_chunks(recorder, list(after.items()), 250, lambda stream: stream[0], sqlite, postgres)


def select_positions(recorder: AggregateRecorder, names: Sequence[str]) -> dict[str, int] | None:
    """The position each of these tracking records stands at, of those the store holds, in a
    query per 500; None from a store this does not know."""
    found: dict[str, int] = {}
    for first in range(0, len(names), 500):
        chunk = list(names[first : first + 500])
        if isinstance(recorder, SQLiteProcessRecorder):
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT application_name, MAX(notification_id) FROM tracking "
                    f"WHERE application_name IN ({','.join('?' * len(chunk))}) GROUP BY application_name",
                    chunk,
                )
                found.update((name, position) for name, position in c.fetchall())
        elif isinstance(recorder, PostgresProcessRecorder):
            query = SQL(
                "SELECT application_name, MAX(notification_id) AS position FROM {}.{} "
                "WHERE application_name = ANY(%s) GROUP BY application_name"
            ).format(Identifier(recorder.datastore.schema), Identifier(recorder.tracking_table_name))
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(query, (chunk,))
                found.update((row["application_name"], row["position"]) for row in curs.fetchall())
        else:
            return None
    return found


def select_streams_of_topic(recorder: AggregateRecorder, topic: str) -> list[UUID | str] | None:
    """The ids of the streams that hold an event of this topic (a whole-table scan: for a
    one-off); None from a store this does not know."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT DISTINCT originator_id FROM {recorder.events_table_name} WHERE topic = ?", (topic,)
            )
            return [recorder.convert_originator_id(row[0]) for row in c.fetchall()]
    if isinstance(recorder, PostgresAggregateRecorder):
        query = SQL("SELECT DISTINCT originator_id FROM {}.{} WHERE topic = %s").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query, (topic,))
            return [row["originator_id"] for row in curs.fetchall()]
    return None


T = TypeVar("T")


def _select_in_chunks(
    recorder: AggregateRecorder,
    items: Sequence[T],
    size: int,
    stream_of: Callable[[T], UUID | str],
    sqlite: Callable[[str, Sequence[T]], tuple[str, list[Any]]],
    postgres: Callable[[Composed, Sequence[T]], tuple[Composed, tuple[Any, ...]]],
) -> list[StoredEvent] | None:
    """Stored events read by the store's own query (built for each chunk of `size` items from the
    table's name), named by the caller's stream ids; None from a store this does not know."""
    found: list[StoredEvent] = []
    for first in range(0, len(items), size):
        chunk = items[first : first + size]
        if isinstance(recorder, SQLiteAggregateRecorder):
            by_key = {_id_text(stream_of(item)): stream_of(item) for item in chunk}
            statement, parameters = sqlite(recorder.events_table_name, chunk)
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(statement, parameters)
                found += [_stored(by_key[row["originator_id"]], row) for row in c.fetchall()]
        elif isinstance(recorder, PostgresAggregateRecorder):
            schema, name = recorder.datastore.schema, recorder.events_table_name
            query, values = postgres(SQL("{}.{}").format(Identifier(schema), Identifier(name)), chunk)
            with recorder.datastore.transaction(commit=False) as curs:
                # A few milliseconds of index lookups: compiling them (which PostgreSQL does when
                # its estimates run high, as they do without statistics) took 7-490 ms.
                curs.execute("SET LOCAL jit = off")
                curs.execute(query, values)
                found += [_stored(row["originator_id"], row) for row in curs.fetchall()]
        else:
            return None
    return found


def _stored(originator_id: UUID | str, row: Any) -> StoredEvent:
    return StoredEvent(originator_id, row["originator_version"], row["topic"], bytes(row["state"]))
