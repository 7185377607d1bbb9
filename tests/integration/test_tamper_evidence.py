"""Each stored event is chained to the previous one of its stream: an edit behind the service's
back is found, and named, by verify."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import psycopg

from shared.chain import verify
from shared.domain import Meta
from tests.support.probe import ProbeApplication
from tests.support.stores import PG


def meta() -> Meta:
    return Meta(actor_id="ops-1", actor_role="ops", at=datetime(2026, 3, 2, 9, tzinfo=UTC))


def tamper(env: dict[str, str], sql: str) -> None:
    """Change the store the way an intruder with database access would."""
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        with sqlite3.connect(env["SQLITE_DBNAME"]) as conn:  # SQLite numbers events by rowid
            conn.execute(sql.replace("{table}", "stored_events").replace("notification_id", "rowid"))
    else:
        with psycopg.connect(**PG, dbname=env["POSTGRES_DBNAME"], autocommit=True) as conn:
            conn.execute(sql.replace("{table}", "probeapplication_events").encode())


def filled(env: dict[str, str]) -> tuple[ProbeApplication, list]:
    app = ProbeApplication(env)
    ids = [app.create(f"p{i}", meta()) for i in range(3)]
    for pid in ids:
        app.assign_many(pid, ["rep-1", "rep-2", "rep-3"], meta())
    return app, ids


def test_an_untouched_store_verifies(store_env: dict[str, str]) -> None:
    app, ids = filled(store_env)
    result = verify(app.recorder)
    assert (result.events, result.streams, result.broken) == (12, 3, None)
    assert app.repository.get(ids[0]).assignments == 3  # the chain does not disturb reading


def test_streams_whose_heads_were_forgotten_chain_on_from_the_store(store_env: dict[str, str]) -> None:
    app = ProbeApplication(store_env)
    ids = [app.create(f"p{i}", meta()) for i in range(30)]
    fresh = ProbeApplication(store_env)  # a new process: it remembers no heads
    probes = [fresh.repository.get(pid) for pid in ids]
    fresh.events._heads.clear()  # type: ignore[attr-defined]  # as a read model's replicas would be
    for probe in probes:
        probe.assign("rep-1", meta())
        probe.assign("rep-2", meta())
    fresh.save(*probes)
    result = verify(fresh.recorder)
    assert (result.events, result.streams, result.broken) == (90, 30, None)


def test_an_edited_event_is_found_where_it_was_edited(store_env: dict[str, str]) -> None:
    app, ids = filled(store_env)
    target = app.recorder.select_events(ids[1], lte=3, desc=True, limit=1)[0]
    notification = next(
        n
        for n in app.recorder.select_notifications(None, 100)
        if n.originator_id == target.originator_id and n.originator_version == 3
    )
    edited = target.state.replace(b"rep-2", b"rep-9")
    assert edited != target.state
    hexed = edited.hex()
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        tamper(
            store_env, f"UPDATE {{table}} SET state = X'{hexed}' WHERE notification_id = {notification.id}"
        )
    else:
        tamper(
            store_env,
            f"UPDATE {{table}} SET state = '\\x{hexed}'::bytea WHERE notification_id = {notification.id}",
        )
    broken = verify(app.recorder).broken
    assert broken is not None
    assert (broken.notification_id, broken.originator_version) == (notification.id, 3)
    assert "edited" in broken.reason


def test_a_removed_event_leaves_a_gap_in_its_stream(store_env: dict[str, str]) -> None:
    app, ids = filled(store_env)
    notification = next(
        n
        for n in app.recorder.select_notifications(None, 100)
        if n.originator_id == ids[2] and n.originator_version == 2
    )
    tamper(store_env, f"DELETE FROM {{table}} WHERE notification_id = {notification.id}")
    broken = verify(app.recorder).broken
    assert broken is not None and broken.originator_id == str(ids[2])
    assert "expected version 2" in broken.reason
