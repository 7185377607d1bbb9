"""Group commit on SQLite: saves from threads that wait while another save is written are written
together, in one transaction, each with its own notification ids, and each still all or nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent, Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from shared.chain import verify
from shared.domain import Meta
from shared.persistence import BatchedSQLiteProcessRecorder, _Save
from tests.support.kafka_helpers import eventually_blocking
from tests.support.probe import ProbeApplication

META = Meta("u-1", "admin", datetime(2026, 1, 5, 9, tzinfo=UTC))


class CountingRecorder(BatchedSQLiteProcessRecorder):
    """Remembers the size of every group it wrote; can be told to fail a group of several after
    writing its rows, as a disk failing at the wrong moment would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups: list[int] = []
        self.fail_groups = False

    def _write(self, group: list[_Save]) -> None:
        self.groups.append(len(group))
        super()._write(group)

    def _insert_together(self, c: SQLiteCursor, group: list[_Save]) -> None:
        super()._insert_together(c, group)
        if self.fail_groups:
            raise sqlite3.OperationalError("disk I/O error")


def events(stream: UUID, *versions: int) -> list[StoredEvent]:
    return [StoredEvent(stream, v, "tests:Event", f'{{"v":{v}}}'.encode()) for v in versions]


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[CountingRecorder]:
    datastore = SQLiteDatastore(str(tmp_path / "store.db"), lock_timeout=30)
    recorder = CountingRecorder(datastore=datastore)
    recorder.create_table()
    yield recorder
    datastore.close()


class Outcome:
    """What one thread's save came to: its ids, or its error."""

    def __init__(self) -> None:
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None


def save_in_thread(
    recorder: BatchedSQLiteProcessRecorder, stored: list[StoredEvent], **kwargs: Any
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
    recorder: CountingRecorder, stored: list[StoredEvent], **kwargs: Any
) -> Iterator[tuple[Outcome, Callable[[int], None]]]:
    """A first save, its write held (another connection has the database's write lock) until the
    block ends; `queued(n)` waits until n saves wait behind it."""
    blocker = sqlite3.connect(recorder.datastore.pool.db_name, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    thread, outcome = save_in_thread(recorder, stored, **kwargs)
    try:
        eventually_blocking("the first save writing", lambda: recorder._writing)

        def queued(n: int) -> None:
            eventually_blocking(f"{n} saves waiting", lambda: len(recorder._waiting) == n)

        yield outcome, queued
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(timeout=30)


def rowids(recorder: BatchedSQLiteProcessRecorder) -> dict[tuple[UUID | str, int], int]:
    return {(n.originator_id, n.originator_version): n.id for n in recorder.select_notifications(1, 1000)}


def test_saves_waiting_for_a_write_are_committed_together_each_with_its_own_ids(
    recorder: CountingRecorder,
) -> None:
    streams = [uuid4() for _ in range(5)]
    waiting: list[tuple[threading.Thread, Outcome, list[StoredEvent]]] = []
    with first_save_held(recorder, events(streams[0], 1, 2)) as (first, queued):
        for n, stream in enumerate(streams[1:], start=1):
            stored = events(stream, *range(1, n + 1))  # saves of 1, 2, 3 and 4 events
            waiting.append((*save_in_thread(recorder, stored), stored))
        queued(4)
    for thread, _, _ in waiting:
        thread.join(timeout=30)

    assert recorder.groups == [1, 4]  # the first alone, the four that waited in one transaction
    ids = rowids(recorder)
    assert first.error is None and first.ids == [ids[(streams[0], 1)], ids[(streams[0], 2)]]
    for _, outcome, stored in waiting:
        assert outcome.error is None
        assert outcome.ids == [ids[(s.originator_id, s.originator_version)] for s in stored]
    assert len(ids) == 2 + 1 + 2 + 3 + 4


def test_a_save_refused_in_a_group_fails_alone(recorder: CountingRecorder) -> None:
    taken, counted, fresh = uuid4(), uuid4(), uuid4()
    with first_save_held(recorder, events(taken, 1), tracking=Tracking("upstream", 7)) as (first, queued):
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


def test_a_group_whose_transaction_fails_writes_none_of_its_saves(recorder: CountingRecorder) -> None:
    recorder.fail_groups = True
    first_stream, streams = uuid4(), [uuid4(), uuid4()]
    with first_save_held(recorder, events(first_stream, 1)) as (first, queued):
        waiting = [save_in_thread(recorder, events(stream, 1, 2)) for stream in streams]
        queued(2)
    for thread, _ in waiting:
        thread.join(timeout=30)

    assert recorder.groups == [1, 2]
    assert first.error is None
    errors = [outcome.error for _, outcome in waiting]
    assert all(isinstance(error, OperationalError) for error in errors)
    assert errors[0] is not errors[1]  # each thread raises an error of its own
    assert set(rowids(recorder)) == {(first_stream, 1)}


def test_a_save_with_nothing_waiting_is_written_alone_at_once(recorder: CountingRecorder) -> None:
    stream = uuid4()
    assert recorder.insert_events(events(stream, 1, 2, 3)) == [1, 2, 3]
    with pytest.raises(IntegrityError):
        recorder.insert_events(events(stream, 3, 4))
    assert recorder.insert_events(events(stream, 4)) == [4]
    assert recorder.groups == [1, 1, 1]


def test_commands_from_many_threads_all_land_with_their_chains_whole(tmp_path: Path) -> None:
    app = ProbeApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "p.db")}
    )
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
    notifications = app.recorder.select_notifications(1, 10_000)
    assert [n.id for n in notifications] == list(range(1, 8 * 41 + 1))
    assert verify(app.process_recorder).broken is None
    app.close()
