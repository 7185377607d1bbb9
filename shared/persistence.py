"""The library's SQLite process recorder, inserting a save's events in one executemany instead
of one statement per event (it inserts row by row only to learn each row's notification id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteCursor, SQLiteProcessRecorder


class BatchedSQLiteProcessRecorder(SQLiteProcessRecorder):
    """Notification ids are rowids. Inside the write transaction (SQLite has one writer at a
    time) a multi-row insert takes consecutive rowids after the largest, so the ids are the
    range ending at last_insert_rowid(); the first row is looked up to make sure."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: list[int] = []
        if stored_events:
            SQLiteAggregateRecorder._insert_events(self, c, stored_events)
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
        key = originator_id.hex if isinstance(originator_id, UUID) else originator_id
        c.execute(
            f"SELECT rowid FROM {self.events_table_name} WHERE originator_id=? AND originator_version=?",
            (key, version),
        )
        return int(c.fetchone()[0])
