"""The write path on each store: notification ids said by a save are the rows' ids, a save is
all or nothing, and a consumed batch records its position with its events."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresProcessRecorder
from psycopg.sql import SQL, Identifier

import shared.application as application_module
from shared.application import InboxCursor, Preloaded, in_store_order, inbox_name
from shared.chain import split, verify
from shared.domain import Meta
from shared.persistence import (
    POSITIONS_PER_STATEMENT,
    ROWS_PER_INSERT,
    BatchedSQLiteProcessRecorder,
    GroupedPostgresProcessRecorder,
    select_after,
    select_latest,
    select_states_at,
)
from tests.support.kafka_helpers import eventually_blocking
from tests.support.probe import Probe, ProbeApplication, TallyApplication, count_batch
from tests.support.stores import PG, postgres_env, sqlite_env

META = Meta("u-1", "admin", datetime(2026, 1, 5, 9, tzinfo=UTC))


def test_saves_say_the_notification_ids_the_store_gave(store_env: dict[str, str]) -> None:
    app = ProbeApplication(store_env)
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        assert isinstance(app.recorder, BatchedSQLiteProcessRecorder)

    def save(*probes: Probe) -> list[tuple[int, object, int]]:
        return [
            (r.notification.id, r.notification.originator_id, r.notification.originator_version)
            for r in app.save(*probes)
        ]

    lone = Probe("lone", META)  # saves of a single event: created, then assigned
    said = save(lone)
    lone.assign("rep-1", META)
    said += save(lone)
    for size in (1, 7, ROWS_PER_INSERT + 1):  # two events each: the last save is three statements
        probes = [Probe(f"p{i}", META) for i in range(size)]
        for probe in probes:
            probe.assign("rep-1", META)
        said += save(*probes)
    stored = [
        (n.id, n.originator_id, n.originator_version) for n in app.recorder.select_notifications(1, 10_000)
    ]
    assert said == stored and len(stored) == 2 + 2 * (1 + 7 + ROWS_PER_INSERT + 1)
    assert verify(app.process_recorder).broken is None
    app.close()


def test_a_save_that_conflicts_writes_nothing(store_env: dict[str, str]) -> None:
    app = ProbeApplication(store_env)
    probe_id = app.create("p", META)
    app.assign_many(probe_id, ["rep-1"], META)
    # The conflict in the save's first statement, and after a statement of rows already inserted.
    for before_it in (1, ROWS_PER_INSERT + 1):
        stale = app.repository.get(probe_id, version=1)
        stale.assign("rep-2", META)
        fresh = [Probe(f"q{n}", META) for n in range(before_it)]
        before = app.recorder.max_notification_id()
        with pytest.raises(IntegrityError):
            app.save(*fresh, stale)
        assert app.recorder.max_notification_id() == before
        assert not any(probe.id in app.repository for probe in fresh)
    app.close()


def test_events_and_the_consumed_position_are_written_together(store_env: dict[str, str]) -> None:
    app = ProbeApplication(store_env)
    probe = Probe("p", META)
    app.events.put(probe.collect_events(), tracking=Tracking("upstream", 41))
    assert app.process_recorder.max_tracking_id("upstream") == 41
    again = Probe("q", META)
    with pytest.raises(IntegrityError):  # the same position twice: the second is refused whole
        app.events.put(again.collect_events(), tracking=Tracking("upstream", 41))
    assert again.id not in app.repository
    app.close()


def test_inbox_positions_are_rows_written_with_the_batch_and_read_by_any_instance(
    store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = TallyApplication(store_env)
    assert count_batch(first, 0, 0, [("s1", 1), ("s1", 2), ("s2", 1)]) == [True, True, True]
    recorder = first.process_recorder
    assert (
        recorder.max_tracking_id(inbox_name("g", "s1")),
        recorder.max_tracking_id(inbox_name("g", "s2")),
    ) == (2, 1)
    stored = first.recorder.select_notifications(1, 100)
    assert [n.topic.rsplit(".", 1)[-1] for n in stored] == [
        "Created",
        "Counted",
        "Counted",
        "Created",
        "Counted",
    ]
    assert not any("InboxCursor" in n.topic for n in stored)  # no events for the positions

    # Another instance (after a rebalance) gets s1's second event again, re-published under
    # another partition's offset: passed over, from the store's row.
    second = TallyApplication(store_env)
    assert count_batch(second, 1, 0, [("s1", 2), ("s1", 3)]) == [False, True]
    assert second.count("s1") == 3

    # One that read s2's position before the other wrote it: its batch is refused whole (the
    # row moves only forward), and applied again from what the store says.
    third = TallyApplication(store_env)
    preload = third.preload
    stale = [True]

    def preload_once_stale(ids: Sequence[UUID], inbox: Sequence[str] = ()) -> Preloaded:
        preloaded = preload(ids, inbox)
        if stale.pop() if stale else False:
            preloaded.positions[inbox_name("g", "s2")] = 0
        return preloaded

    monkeypatch.setattr(third, "preload", preload_once_stale)
    assert count_batch(third, 2, 0, [("s2", 1), ("s3", 1)]) == [False, True]
    assert (third.count("s2"), third.count("s3")) == (1, 1)
    for app in (first, second, third):
        app.close()


def test_a_batch_of_many_sources_writes_all_their_positions_and_refuses_them_together(
    store_env: dict[str, str],
) -> None:
    app = TallyApplication(store_env)
    sources = [(f"s{n}", 1) for n in range(450)]  # more than one statement's worth on SQLite
    assert count_batch(app, 0, 0, sources) == [True] * 450
    assert {app.process_recorder.max_tracking_id(inbox_name("g", s)) for s, _ in sources} == {1}
    again = TallyApplication(store_env)  # another instance, another partition: all passed over
    assert count_batch(again, 1, 0, [*sources[:3], ("s449", 2)]) == [False, False, False, True]
    with pytest.raises(IntegrityError):  # one position among many that would not move forward
        again.events.put(
            [], trackings=[Tracking(inbox_name("g", "s1"), 5), Tracking(inbox_name("g", "s2"), 1)]
        )
    assert again.process_recorder.max_tracking_id(inbox_name("g", "s1")) == 1  # nor did the other
    app.close()
    again.close()


def test_positions_of_several_statements_are_written_and_refused_with_the_whole_save(
    store_env: dict[str, str],
) -> None:
    app = TallyApplication(store_env)
    recorder = app.process_recorder
    many = [Tracking(inbox_name("g", f"s{n}"), 3) for n in range(2 * POSITIONS_PER_STATEMENT + 100)]
    app.events.put([], trackings=many)
    assert {recorder.max_tracking_id(t.application_name) for t in many} == {3}

    # Every position moves forward but the last, in the third statement: none of it is written.
    probe = Probe("p", META)
    forward = [Tracking(t.application_name, 4) for t in many[:-1]]
    with pytest.raises(IntegrityError):
        app.events.put(probe.collect_events(), trackings=[*forward, Tracking(many[-1].application_name, 3)])
    assert {recorder.max_tracking_id(t.application_name) for t in many} == {3}
    assert probe.id not in app.repository

    # A name twice in one save counts as two positions recorded in turn: forward, then forward.
    twice = inbox_name("g", "s1")
    app.events.put([], trackings=[Tracking(twice, 5), Tracking(inbox_name("g", "s2"), 5), Tracking(twice, 6)])
    assert (recorder.max_tracking_id(twice), recorder.max_tracking_id(inbox_name("g", "s2"))) == (6, 5)
    with pytest.raises(IntegrityError):  # forward, then back
        app.events.put(
            [], trackings=[Tracking(twice, 8), Tracking(inbox_name("g", "s2"), 6), Tracking(twice, 7)]
        )
    assert recorder.max_tracking_id(twice) == 6
    app.close()


def test_inbox_cursors_kept_as_aggregates_are_carried_over_once(
    store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = TallyApplication(store_env)
    cursor = InboxCursor("g", "s1")  # as stores kept the positions before they were rows
    cursor.advance(3)
    untouched = InboxCursor("g", "s2")
    old.save(cursor, untouched)
    old.close()

    scans: list[str] = []
    scan = application_module.select_streams_of_topic
    monkeypatch.setattr(
        application_module, "select_streams_of_topic", lambda *a: scans.append(a[1]) or scan(*a)
    )
    app = TallyApplication(store_env)
    assert count_batch(app, 0, 10, [("s1", 3), ("s1", 4), ("s2", 1)]) == [False, True, True]
    assert app.process_recorder.max_tracking_id(inbox_name("g", "s1")) == 4
    assert count_batch(TallyApplication(store_env), 0, 11, [("s1", 5)]) == [True]
    assert len(scans) == 1  # the first batch of the store's first application, and never again
    app.close()


def test_the_events_of_many_streams_at_one_version_are_read_in_one_query(store_env: dict[str, str]) -> None:
    app = ProbeApplication(store_env)
    ids = [app.create(f"p{i}", META) for i in range(5)]
    app.assign_many(ids[0], ["rep-1"], META)
    at_one = dict(select_states_at(app.recorder, 1, ids))
    assert set(at_one) == set(ids)
    assert all(split(state)[1] is not None for state in at_one.values())  # each with its link
    assert set(dict(select_states_at(app.recorder, 2, ids))) == {ids[0]}
    assert select_states_at(app.recorder, 3, ids) == []
    app.close()


def test_in_store_order_is_the_order_of_each_stores_index(store_env: dict[str, str]) -> None:
    app = ProbeApplication(store_env)
    probes = [Probe(f"p{i}", META) for i in range(40)]
    app.save(*probes)
    recorder = app.recorder
    table = recorder.events_table_name  # type: ignore[attr-defined]
    if isinstance(recorder, GroupedPostgresProcessRecorder):
        query = SQL("SELECT originator_id FROM {}.{} ORDER BY originator_id")
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query.format(Identifier(recorder.datastore.schema), Identifier(table)))
            indexed = [row["originator_id"] for row in curs.fetchall()]
    else:
        assert isinstance(recorder, BatchedSQLiteProcessRecorder)
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id FROM {table} ORDER BY originator_id")
            indexed = [UUID(row["originator_id"]) for row in c.fetchall()]
    assert indexed == [probe.id for probe in in_store_order(probes, lambda probe: probe.id)]
    assert indexed != [probe.id for probe in probes]
    app.close()


def test_the_last_events_of_many_streams_and_the_events_after_given_versions_are_read_together(
    store_env: dict[str, str],
) -> None:
    app = ProbeApplication(store_env)
    ids = [app.create(f"p{i}", META) for i in range(3)]
    app.assign_many(ids[0], ["rep-1", "rep-2"], META)
    app.assign_many(ids[1], ["rep-1"], META)
    missing = [uuid4() for _ in range(600)]  # more than one query's worth of parameters

    latest = select_latest(app.recorder, [*missing, *ids])
    assert latest is not None
    assert {(s.originator_id, s.originator_version) for s in latest} == {
        (ids[0], 3),
        (ids[1], 2),
        (ids[2], 1),
    }
    assert all(split(s.state)[1] is not None for s in latest)  # as stored, with the chain link

    after = select_after(app.recorder, {ids[0]: 1, ids[1]: 0, ids[2]: 1, **dict.fromkeys(missing, 0)})
    assert after is not None
    assert [(s.originator_id, s.originator_version) for s in after if s.originator_id == ids[0]] == [
        (ids[0], 2),
        (ids[0], 3),
    ]
    assert sorted((s.originator_id == ids[1], s.originator_version) for s in after) == [
        (False, 2),
        (False, 3),
        (True, 1),
        (True, 2),
    ]
    assert [s.state for s in after if s.originator_id == ids[0]] == [
        e.state for e in app.recorder.select_events(ids[0], gt=1)
    ]
    app.close()


def test_a_postgres_save_takes_the_events_tables_lock_and_tells_its_channel(postgres_dbname: str) -> None:
    """Notification ids are given in commit order only if every save inserts under the events
    table's lock; listeners of the table's channel hear of every save (as from the library's)."""
    app = ProbeApplication(postgres_env(postgres_dbname))
    recorder = app.recorder
    table, channel = recorder.events_table_name, recorder.channel_name  # type: ignore[attr-defined]
    with (
        psycopg.connect(**PG, dbname=postgres_dbname, autocommit=True) as watcher,
        psycopg.connect(**PG, dbname=postgres_dbname) as holder,
        ThreadPoolExecutor(1) as thread,
    ):
        watcher.execute(f'LISTEN "{channel}"')
        # Held until holder commits. ROW SHARE lets a plain insert through but not a save, which
        # takes EXCLUSIVE: only the lock a save takes makes it wait.
        holder.execute(f'LOCK TABLE "{table}" IN ROW SHARE MODE')
        saving = thread.submit(app.save, Probe("p", META))

        def save_waits_for_the_lock() -> bool:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", (table,)
            ).fetchone()
            return waiting is not None and waiting[0] == 1

        eventually_blocking("the save waiting for the table's lock", save_waits_for_the_lock)
        assert not saving.done() and app.recorder.max_notification_id() is None
        holder.commit()
        [recording] = saving.result(timeout=30)
        assert recording.notification.id == app.recorder.max_notification_id()
        assert [n.channel for n in watcher.notifies(timeout=10, stop_after=1)] == [channel]
    app.close()


def test_processes_making_an_application_on_one_new_postgres_store_at_once_all_start(
    postgres_dbname: str,
) -> None:
    """As a service's relay starts its reader processes together: each creates the store's tables
    and functions if missing, and none is refused for another doing the same."""
    env = postgres_env(postgres_dbname)
    ready = threading.Barrier(6)

    def start(_: int) -> int:
        ready.wait(timeout=10)
        app = ProbeApplication(env)
        app.close()
        return 1

    for _ in range(3):  # a race: try it a few times, each on tables made by the rounds before
        with ThreadPoolExecutor(6) as pool:
            assert sum(pool.map(start, range(6))) == 6


def test_every_table_of_a_new_postgres_store_is_made_under_the_lock(
    postgres_dbname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race above, made certain: the snapshots' table, which the library makes after the
    events' tables, is made under the same lock, so a process starting beside one that has just
    made the events' tables does not make the snapshots' table at the same moment as it."""
    made_while_locked: dict[str, bool] = {}
    library_create_table = PostgresAggregateRecorder.create_table

    def create_table(recorder: PostgresAggregateRecorder) -> None:
        with psycopg.connect(**PG, dbname=postgres_dbname, autocommit=True) as other:
            [(held,)] = other.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchall()
        made_while_locked[recorder.events_table_name] = held > 0
        library_create_table(recorder)

    monkeypatch.setattr(PostgresAggregateRecorder, "create_table", create_table)
    ProbeApplication(postgres_env(postgres_dbname)).close()
    assert made_while_locked == {"probeapplication_events": True, "probeapplication_snapshots": True}


def test_postgres_reads_the_log_as_the_library_does(postgres_dbname: str) -> None:
    app = ProbeApplication(postgres_env(postgres_dbname))
    probes = [Probe(f"p{i}", META) for i in range(20)]
    for probe in probes:
        probe.assign("rep-1", META)
    app.save(*probes)
    recorder = app.recorder
    assert isinstance(recorder, GroupedPostgresProcessRecorder)
    for start, limit, inclusive, expected in [
        (1, 100, True, 40),
        (0, 3, False, 3),
        (5, 7, False, 7),
        (5, 7, True, 7),
        (38, 10, False, 2),
        (40, 10, False, 0),
    ]:
        ours = recorder.select_notifications(start, limit, inclusive_of_start=inclusive)
        library = PostgresProcessRecorder.select_notifications(
            recorder, start, limit, inclusive_of_start=inclusive
        )
        assert list(ours) == list(library) and len(ours) == expected
    app.close()


def test_sqlite_connections_keep_the_statements_they_prepared(tmp_path: Path) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "store.db"))
    app.create("p", META)
    pool = app.factory.datastore.pool  # type: ignore[attr-defined]
    conn = pool.get_connection(is_writer=False)
    try:
        statements = ["SELECT MAX(rowid) FROM stored_events", "SELECT COUNT(*) FROM stored_events"]
        cursor = conn.cursor()
        for statement in statements * 2:  # in turns: a cache of one statement prepares each again
            cursor.execute(statement)
            assert cursor.fetchall()[0][0] == 1
        cursor.execute("SELECT sql FROM sqlite_stmt")  # the connection's prepared statements
        assert set(statements) <= {row[0] for row in cursor.fetchall()}
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchall()[0][0] == "wal"
    finally:
        pool.put_connection(conn)
    app.close()
