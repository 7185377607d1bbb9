"""Group commit, on SQLite and on PostgreSQL: saves from threads that wait while another save is
written are written together, in one transaction (on PostgreSQL, saves that record no position:
one statement), each with its own notification ids, and each still all or nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import DatabaseError, IntegrityError, StoredEvent, Tracking
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from shared.chain import verify
from shared.domain import Meta
from shared.persistence import (
    BatchedSQLiteProcessRecorder,
    GroupCommit,
    GroupedPostgresProcessRecorder,
    _Save,
)
from tests.support.kafka_helpers import eventually_blocking
from tests.support.probe import ProbeApplication
from tests.support.stores import PG, postgres_env

META = Meta("u-1", "admin", datetime(2026, 1, 5, 9, tzinfo=UTC))


class Unusual(Exception):
    """An error that does not copy (its constructor wants more than its args)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class Counting(GroupCommit):
    """Remembers the size of every group it wrote; can be told to fail a group of several after
    writing its rows, as a disk failing at the wrong moment would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups: list[int] = []
        self.fail_groups: BaseException | None = None

    def _write(self, group: list[_Save]) -> None:
        self.groups.append(len(group))
        super()._write(group)

    def _insert_together(  # type: ignore[override]
        self,
        group: list[_Save],
        savepoint: Callable[[], AbstractContextManager[Any]],
        insert: Callable[[Sequence[StoredEvent], list[Tracking]], Sequence[int]],
        **kwargs: Any,
    ) -> None:
        super()._insert_together(group, savepoint, insert, **kwargs)
        if self.fail_groups is not None:
            raise self.fail_groups


class CountingSQLite(Counting, BatchedSQLiteProcessRecorder):
    pass


class CountingPostgres(Counting, GroupedPostgresProcessRecorder):
    """A group that records no position is one statement here, committed as it runs: told to
    fail, that statement fails, as a server failing it would."""

    _grouped = False
    failing_streams: frozenset[UUID] = frozenset()  # a save of only these fails, not refused

    def _write_group(self, group: list[_Save]) -> None:
        self._grouped = True
        try:
            super()._write_group(group)
        finally:
            self._grouped = False

    def _insert_alone(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        if self._grouped and self.fail_groups is not None:
            raise self.fail_groups
        if stored_events and {s.originator_id for s in stored_events} <= self.failing_streams:
            raise DatabaseError("the server went away")
        ids: Sequence[int] = super()._insert_alone(stored_events)
        return ids


@pytest.fixture
def app(store_env: dict[str, str]) -> Iterator[ProbeApplication]:
    """A probe application whose recorder is the store's own, counting its groups."""
    sqlite = store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    counting = CountingSQLite if sqlite else CountingPostgres
    app = ProbeApplication(
        {**store_env, "PROCESS_RECORDER_TOPIC": get_topic(counting), "SQLITE_LOCK_TIMEOUT": "30"}
    )
    assert isinstance(app.recorder, counting)
    yield app
    app.close()


@pytest.fixture
def recorder(app: ProbeApplication) -> Counting:
    assert isinstance(app.recorder, Counting)
    return app.recorder


Hold = Callable[[], AbstractContextManager[None]]


@pytest.fixture
def hold(recorder: Counting, store_env: dict[str, str]) -> Hold:
    """Another connection holding what a write needs (SQLite's write lock; on PostgreSQL the
    events table's lock) until the block ends."""

    @contextmanager
    def held() -> Iterator[None]:
        if isinstance(recorder, BatchedSQLiteProcessRecorder):
            blocker = sqlite3.connect(store_env["SQLITE_DBNAME"], isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                blocker.rollback()
                blocker.close()
            return
        assert isinstance(recorder, GroupedPostgresProcessRecorder)
        with events_table_held(recorder, store_env["POSTGRES_DBNAME"]):
            yield

    return held


@contextmanager
def events_table_held(recorder: GroupedPostgresProcessRecorder, dbname: str) -> Iterator[None]:
    with psycopg.connect(**PG, dbname=dbname) as connection:
        table = Identifier(recorder.datastore.schema, recorder.events_table_name)
        connection.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        try:
            yield
        finally:
            connection.rollback()


def events(stream: UUID, *versions: int) -> list[StoredEvent]:
    return [StoredEvent(stream, v, "tests:Event", f'{{"v":{v}}}'.encode()) for v in versions]


class Outcome:
    """What one thread's save came to: its ids, or its error."""

    def __init__(self) -> None:
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None


def save_in_thread(
    recorder: GroupCommit, stored: list[StoredEvent], **kwargs: Any
) -> tuple[threading.Thread, Outcome]:
    outcome = Outcome()

    def save() -> None:
        try:
            outcome.ids = recorder.insert_events(stored, **kwargs)
        except BaseException as error:
            outcome.error = error

    thread = threading.Thread(target=save)
    thread.start()
    return thread, outcome


@contextmanager
def first_save_held(
    recorder: Counting, hold: Hold, stored: list[StoredEvent], **kwargs: Any
) -> Iterator[tuple[Outcome, Callable[[int], None]]]:
    """A first save, its write held until the block ends; `queued(n)` waits until n saves wait
    behind it."""
    with hold():
        thread, outcome = save_in_thread(recorder, stored, **kwargs)
        eventually_blocking("the first save writing", lambda: recorder._writing)

        def queued(n: int) -> None:
            eventually_blocking(f"{n} saves waiting", lambda: len(recorder._waiting) == n)

        yield outcome, queued
    thread.join(timeout=30)


def rowids(recorder: Counting) -> dict[tuple[UUID | str, int], int]:
    return {(n.originator_id, n.originator_version): n.id for n in recorder.select_notifications(1, 1000)}


def test_saves_waiting_for_a_write_are_committed_together_each_with_its_own_ids(
    recorder: Counting, hold: Hold
) -> None:
    streams = [uuid4() for _ in range(5)]
    waiting: list[tuple[threading.Thread, Outcome, list[StoredEvent]]] = []
    told: list[int] = []
    recorder.on_commit = told.append  # as a service's metrics are told
    with first_save_held(recorder, hold, events(streams[0], 1, 2)) as (first, queued):
        for n, stream in enumerate(streams[1:], start=1):
            stored = events(stream, *range(1, n + 1))  # saves of 1, 2, 3 and 4 events
            waiting.append((*save_in_thread(recorder, stored), stored))
        queued(4)
    for thread, _, _ in waiting:
        thread.join(timeout=30)

    assert recorder.groups == [1, 4]  # the first alone, the four that waited in one transaction
    assert told == [1, 4]
    ids = rowids(recorder)
    assert first.error is None and first.ids == [ids[(streams[0], 1)], ids[(streams[0], 2)]]
    for _, outcome, stored in waiting:
        assert outcome.error is None
        assert outcome.ids == [ids[(s.originator_id, s.originator_version)] for s in stored]
    assert len(ids) == 2 + 1 + 2 + 3 + 4


def test_a_save_refused_in_a_group_fails_alone(recorder: Counting, hold: Hold) -> None:
    taken, counted, fresh = uuid4(), uuid4(), uuid4()
    with first_save_held(recorder, hold, events(taken, 1), tracking=Tracking("upstream", 7)) as (
        first,
        queued,
    ):
        clash = save_in_thread(recorder, events(taken, 1))  # that version is the first save's
        queued(1)
        counted_again = save_in_thread(recorder, events(counted, 1), tracking=Tracking("upstream", 7))
        queued(2)
        ok = save_in_thread(recorder, events(fresh, 1, 2), tracking=Tracking("upstream", 8))
        queued(3)
    for thread, _ in (clash, counted_again, ok):
        thread.join(timeout=30)

    assert recorder.groups == [1, 3]
    assert first.error is None
    assert isinstance(clash[1].error, IntegrityError) and clash[1].ids is None
    assert isinstance(counted_again[1].error, IntegrityError) and counted_again[1].ids is None
    assert ok[1].error is None
    ids = rowids(recorder)
    assert set(ids) == {(taken, 1), (fresh, 1), (fresh, 2)}  # nothing of the refused ones
    assert ok[1].ids == [ids[(fresh, 1)], ids[(fresh, 2)]]
    assert recorder.max_tracking_id("upstream") == 8


def test_a_save_refused_in_a_group_without_positions_fails_alone(recorder: Counting, hold: Hold) -> None:
    taken, fresh, other = uuid4(), uuid4(), uuid4()
    with first_save_held(recorder, hold, events(taken, 1)) as (first, queued):
        ok = save_in_thread(recorder, events(fresh, 1, 2))
        queued(1)
        clash = save_in_thread(recorder, events(taken, 1, 2))  # version 1 is the first save's
        queued(2)
        also_ok = save_in_thread(recorder, events(other, 1))
        queued(3)
    for thread, _ in (ok, clash, also_ok):
        thread.join(timeout=30)

    assert recorder.groups == [1, 3]
    assert first.error is None and ok[1].error is None and also_ok[1].error is None
    assert isinstance(clash[1].error, IntegrityError) and clash[1].ids is None
    ids = rowids(recorder)
    assert set(ids) == {(taken, 1), (fresh, 1), (fresh, 2), (other, 1)}  # nothing of the refused one
    assert ok[1].ids == [ids[(fresh, 1)], ids[(fresh, 2)]] and also_ok[1].ids == [ids[(other, 1)]]


def test_on_postgresql_each_save_of_a_group_written_alone_keeps_its_own_outcome(postgres_dbname: str) -> None:
    """A group without positions written save by save (one was refused): each save is committed
    on its own, so a save failing then fails alone, and the saves written before and after it
    are told they were."""
    env = {**postgres_env(postgres_dbname), "PROCESS_RECORDER_TOPIC": get_topic(CountingPostgres)}
    app = ProbeApplication(env)
    recorder = app.recorder
    assert isinstance(recorder, CountingPostgres)

    def hold() -> AbstractContextManager[None]:
        return events_table_held(recorder, postgres_dbname)

    taken, before, failing, after = uuid4(), uuid4(), uuid4(), uuid4()
    recorder.failing_streams = frozenset({failing})
    with first_save_held(recorder, hold, events(taken, 1)) as (first, queued):
        saves = {}
        for n, (name, stored) in enumerate(
            [
                ("before", events(before, 1)),
                ("clash", events(taken, 1)),
                ("failing", events(failing, 1)),
                ("after", events(after, 1)),
            ],
            start=1,
        ):
            saves[name] = save_in_thread(recorder, stored)
            queued(n)
    for thread, _ in saves.values():
        thread.join(timeout=30)

    assert recorder.groups == [1, 4]
    assert isinstance(saves["clash"][1].error, IntegrityError)
    assert isinstance(saves["failing"][1].error, DatabaseError) and saves["failing"][1].ids is None
    ids = rowids(recorder)
    assert set(ids) == {(taken, 1), (before, 1), (after, 1)}
    assert first.error is None
    assert saves["before"][1].ids == [ids[(before, 1)]] and saves["after"][1].ids == [ids[(after, 1)]]
    app.close()


@pytest.mark.parametrize("failure", [DatabaseError("disk I/O error"), Unusual("disk I/O error", "sector 7")])
def test_a_group_whose_transaction_fails_writes_none_of_its_saves(
    recorder: Counting, hold: Hold, failure: Exception
) -> None:
    recorder.fail_groups = failure
    first_stream, streams = uuid4(), [uuid4(), uuid4()]
    with first_save_held(recorder, hold, events(first_stream, 1)) as (first, queued):
        waiting = [save_in_thread(recorder, events(stream, 1, 2)) for stream in streams]
        queued(2)
    for thread, _ in waiting:
        thread.join(timeout=30)

    assert recorder.groups == [1, 2]
    assert first.error is None
    errors = [outcome.error for _, outcome in waiting]
    assert all(isinstance(error, type(failure)) for error in errors)  # no thread is told it saved
    if isinstance(failure, DatabaseError):
        assert errors[0] is not errors[1]  # each thread raises an error of its own
    assert set(rowids(recorder)) == {(first_stream, 1)}


def test_a_save_with_nothing_waiting_is_written_alone_at_once(recorder: Counting) -> None:
    stream = uuid4()
    said = list(recorder.insert_events(events(stream, 1, 2, 3)) or [])
    with pytest.raises(IntegrityError):
        recorder.insert_events(events(stream, 3, 4))
    said += recorder.insert_events(events(stream, 4)) or []
    assert said == [ids for _, ids in sorted(rowids(recorder).items(), key=lambda item: item[0][1])]
    assert len(said) == 4
    assert recorder.groups == [1, 1, 1]


def test_commands_from_many_threads_all_land_with_their_chains_whole(app: ProbeApplication) -> None:
    probes = [app.create(f"p{i}", META) for i in range(8)]
    start = threading.Barrier(len(probes))
    said: list[list[int]] = [[] for _ in probes]

    def assign(n: int) -> None:
        start.wait(timeout=30)
        for k in range(40):
            said[n].append(app.assign_many(probes[n], [f"rep-{k}"], META))

    threads = [threading.Thread(target=assign, args=(n,)) for n in range(len(probes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert said == [list(range(2, 42))] * len(probes)  # every command saw its own save
    assert [app.repository.get(p).assignments for p in probes] == [40] * len(probes)
    ids = [n.id for n in app.recorder.select_notifications(1, 10_000)]
    assert len(ids) == 8 * 41 and ids == sorted(ids)
    assert verify(app.process_recorder).broken is None
