"""Event-store append through our write path vs a raw batched INSERT of the same rows, with the
same driver, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.domain import Aggregate, event

from bench.common import (
    PG,
    SQLITE_INSERT,
    Result,
    fresh_database,
    header,
    insert_in_statements,
    medians_in_turns,
)
from shared.application import ServiceApplication
from shared.domain import Meta
from shared.persistence import ROWS_PER_INSERT
from tests.support.stores import postgres_env, sqlite_env

N_AGGREGATES = int(os.environ.get("BENCH_STORE_AGGREGATES", "2000"))
EVENTS_PER = 5  # created + 4 changes


class Account(Aggregate):
    def __init__(self, owner: str, meta: Meta) -> None:
        self.owner = owner

    @event("Changed")
    def change(self, value: int, meta: Meta) -> None:
        self.value = value


def make_accounts(n: int) -> list[Account]:
    meta = Meta("bench", "system", datetime.now(UTC))
    accounts = []
    for i in range(n):
        account = Account(f"owner-{i}", meta)
        for v in range(EVENTS_PER - 1):
            account.change(v, meta)
        accounts.append(account)
    return accounts


class BenchApplication(ServiceApplication):
    pass


def save_rate(app: BenchApplication) -> float:
    """Events/s of save() alone: the aggregates are made before the clock starts."""
    accounts = make_accounts(N_AGGREGATES)
    started = time.perf_counter()
    app.save(*accounts)
    seconds = time.perf_counter() - started
    app.close()
    return N_AGGREGATES * EVENTS_PER / seconds


def insert_rate(seconds: float) -> float:
    """Rows/s of a raw insert, from the time of the insert and its commit alone (its table made and
    its connection opened and closed off the clock), as `save_rate` times only the save."""
    return N_AGGREGATES * EVENTS_PER / seconds


def stored_rows(app: BenchApplication, key: Callable[[UUID], Any]) -> list[tuple[Any, int, str, bytes]]:
    """The rows our write path stores for N_AGGREGATES accounts, chain links included, read back
    from the store (`key`: an id as the store's table holds it): the raw insert writes the same
    bytes into a table of the same schema."""
    app.save(*make_accounts(N_AGGREGATES))
    stored = app.recorder.select_notifications(1, N_AGGREGATES * EVENTS_PER)
    return [(key(n.originator_id), n.originator_version, n.topic, n.state) for n in stored]


def bench_sqlite(tmp: Path) -> list[Result]:
    """Against a raw multi-row INSERT of the rows (in the statements our recorder writes; the
    faster raw insert here, 1.04–1.22 times executemany's rate) and, on a line of its own, against
    executemany (the baseline of sessions before 18)."""

    def sqlite_app(name: str) -> BenchApplication:
        return BenchApplication(sqlite_env(tmp / name))

    probe = sqlite_app("p.db")
    rows = stored_rows(probe, lambda id_: id_.hex)  # the library's SQLite tables hold hex
    probe.close()

    def raw(write: Callable[[sqlite3.Connection], None]) -> Callable[[int], float]:
        def timed(i: int) -> float:
            name = f"r{uuid.uuid4().hex[:8]}.db"
            sqlite_app(name).close()  # a store of our schema, empty
            conn = sqlite3.connect(tmp / name)
            started = time.perf_counter()
            with conn:
                write(conn)
            seconds = time.perf_counter() - started
            conn.close()
            return seconds

        return timed

    def multi_row(conn: sqlite3.Connection) -> None:
        insert_in_statements(conn, rows)

    def executemany(conn: sqlite3.Connection) -> None:
        conn.executemany(SQLITE_INSERT, rows)

    ours, by_rows, by_executemany = medians_in_turns(
        lambda i: save_rate(sqlite_app(f"o{i}.db")),
        lambda i: insert_rate(raw(multi_row)(i)),
        lambda i: insert_rate(raw(executemany)(i)),
    )
    return [
        Result(
            "event-store append, SQLite",
            "events/s",
            ours,
            by_rows,
            f"raw multi-row INSERT (up to {ROWS_PER_INSERT} rows), sqlite3",
            0.5,
        ),
        Result(
            "  the same, against executemany", "events/s", ours, by_executemany, "raw executemany, sqlite3"
        ),
    ]


def bench_postgres() -> list[Result]:
    """Against a raw INSERT of the rows as arrays in binary (as our recorder writes them; the
    fastest raw insert found, ~1.6 times executemany's rate here) and, on a line of its own,
    against executemany."""
    with fresh_database() as dbname:
        env = postgres_env(dbname)
        app = BenchApplication(env)
        rows = stored_rows(app, lambda id_: id_)
        table = app.recorder.events_table_name  # type: ignore[attr-defined]
        columns = list(map(list, zip(*rows, strict=True)))

        def raw(insert: Callable[[psycopg.Cursor[Any], str], None]) -> Callable[[int], float]:
            def timed(i: int) -> float:
                with psycopg.connect(**PG, dbname=dbname) as conn:
                    name = f"raw_{uuid.uuid4().hex[:8]}"
                    conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING ALL)")  # our schema
                    conn.commit()
                    started = time.perf_counter()
                    with conn.cursor() as cur:
                        insert(cur, name)
                    conn.commit()
                    return time.perf_counter() - started

            return timed

        def arrays(cur: psycopg.Cursor[Any], name: str) -> None:
            cur.execute(
                f"INSERT INTO {name} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
                "RETURNING notification_id",
                columns,
            )
            cur.fetchall()

        def executemany(cur: psycopg.Cursor[Any], name: str) -> None:
            cur.executemany(
                f"INSERT INTO {name} (originator_id, originator_version, topic, state) VALUES (%s,%s,%s,%s)",
                rows,
            )

        ours, by_arrays, by_executemany = medians_in_turns(
            lambda _: save_rate(BenchApplication(env)),
            lambda i: insert_rate(raw(arrays)(i)),
            lambda i: insert_rate(raw(executemany)(i)),
        )
        results = [
            Result(
                "event-store append, PostgreSQL",
                "events/s",
                ours,
                by_arrays,
                "raw INSERT of the rows as binary arrays, psycopg",
                0.5,
            ),
            Result(
                "  the same, against executemany",
                "events/s",
                ours,
                by_executemany,
                "raw executemany INSERT, psycopg",
            ),
        ]
        app.close()
        return results


def main() -> None:
    header(f"event store append: {N_AGGREGATES} aggregates × {EVENTS_PER} events per save")
    with tempfile.TemporaryDirectory() as tmp:
        for result in bench_sqlite(Path(tmp)):
            print(result.line())
    for result in bench_postgres():
        print(result.line())


if __name__ == "__main__":
    main()
