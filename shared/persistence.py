"""What the event store needs of the library's recorders beyond their interface: a SQLite process
recorder inserting a save's events in one executemany (the library inserts row by row only to
learn each row's notification id), and one query for the events of many streams at one version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent, Tracking
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteCursor, SQLiteProcessRecorder
from psycopg.sql import SQL, Identifier


def _id_text(originator_id: UUID | str) -> str:
    """An originator id as the library's SQLite tables hold it."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class BatchedSQLiteProcessRecorder(SQLiteProcessRecorder):
    """Notification ids are rowids. Inside the write transaction (SQLite has one writer at a
    time) a multi-row insert takes consecutive rowids after the largest, so the ids are the
    range ending at last_insert_rowid(); the first row is looked up to make sure."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: list[int] = []
        if stored_events:
            rows = []
            key: UUID | str | None = None
            text = ""
            for s in stored_events:  # an aggregate's events come together: its id's text once
                if s.originator_id is not key:
                    key = s.originator_id
                    text = _id_text(key)
                rows.append((text, s.originator_version, s.topic, s.state))
            c.executemany(self.insert_events_statement, rows)
            c.execute("SELECT last_insert_rowid()")
            last = int(c.fetchone()[0])
            first = last - len(stored_events) + 1
            ids = list(range(first, last + 1))
            head = stored_events[0]
            if self._rowid(c, head.originator_id, head.originator_version) != first:
                ids = [self._rowid(c, s.originator_id, s.originator_version) for s in stored_events]
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        return ids

    def _rowid(self, c: SQLiteCursor, originator_id: UUID | str, version: int) -> int:
        c.execute(
            f"SELECT rowid FROM {self.events_table_name} WHERE originator_id=? AND originator_version=?",
            (_id_text(originator_id), version),
        )
        return int(c.fetchone()[0])


def select_states_at(
    recorder: AggregateRecorder, version: int, ids: Sequence[UUID | str]
) -> list[tuple[UUID | str, bytes]]:
    """(originator id, state) of the event at `version` of each of these streams that has one, in
    one query; [] from a store this does not know (the caller then reads stream by stream)."""
    return _select_at(recorder, version, ids, "state") or []


def select_existing(recorder: AggregateRecorder, ids: Sequence[UUID | str]) -> set[UUID | str] | None:
    """Which of these streams the store holds (every stream begins at version 1), in a query per
    500; None from a store this does not know."""
    existing: set[UUID | str] = set()
    for first in range(0, len(ids), 500):  # within every SQLite's limit on parameters
        found = _select_at(recorder, 1, ids[first : first + 500], "NULL")
        if found is None:
            return None
        existing.update(key for key, _ in found)
    return existing


def _select_at(
    recorder: AggregateRecorder, version: int, ids: Sequence[UUID | str], column: str
) -> list[tuple[UUID | str, Any]] | None:
    """(originator id, `column`) of the event at `version` of each of these streams that has one;
    None from a store this does not know."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        by_key = {_id_text(i): i for i in ids}
        statement = (
            f"SELECT originator_id, {column} AS value FROM {recorder.events_table_name} "
            f"WHERE originator_version = ? AND originator_id IN ({','.join('?' * len(by_key))})"
        )
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, [version, *by_key])
            return [(by_key[row["originator_id"]], row["value"]) for row in c.fetchall()]
    if isinstance(recorder, PostgresAggregateRecorder):
        query = SQL(
            "SELECT originator_id, {column} AS value FROM {schema}.{table} "
            "WHERE originator_version = %s AND originator_id = ANY(%s)"
        ).format(
            column=SQL(column),
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query, (version, list(ids)))
            return [
                (row["originator_id"], None if row["value"] is None else bytes(row["value"]))
                for row in curs.fetchall()
            ]
    return None
