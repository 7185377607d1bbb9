"""Event-store append through our write path vs a raw batched INSERT of the same rows, with the
same driver, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
from eventsourcing.domain import Aggregate, event

from bench.common import PG, REPEATS, Result, fresh_database, header
from shared.application import ServiceApplication
from shared.domain import Meta
from tests.support.stores import postgres_env

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


def timed_saves(app_for: Callable[[int], BenchApplication], count: int) -> float:
    """Append rate of save() alone: the aggregates are made before the clock starts."""
    rates = []
    for i in range(REPEATS):
        app = app_for(i)
        accounts = make_accounts(N_AGGREGATES)
        started = time.perf_counter()
        app.save(*accounts)
        rates.append(count / (time.perf_counter() - started))
        app.close()
    return statistics.median(rates)


def insert_rate(count: int, insert: Callable[[int], float]) -> float:
    """Rows/s of the raw insert: the median over repeats, each timing only the insert and its
    commit (its table made and its connection opened and closed off the clock), as `timed_saves`
    times only the save."""
    return statistics.median(count / insert(i) for i in range(REPEATS))


def sample_rows(app: BenchApplication, n: int) -> list[tuple[UUID, int, str, bytes]]:
    """The same stored rows our write path makes (same topics and state sizes)."""
    rows = []
    for account in make_accounts(n):
        for domain_event in account.collect_events():
            stored = app.mapper.to_stored_event(domain_event)
            rows.append((stored.originator_id, stored.originator_version, stored.topic, stored.state))
    return rows


def bench_sqlite(tmp: Path) -> Result:
    count = N_AGGREGATES * EVENTS_PER

    def sqlite_app(i: int) -> BenchApplication:
        return BenchApplication(
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / f"o{i}.db")}
        )

    probe = BenchApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "p.db")}
    )
    rows = [(str(a), v, t, s) for a, v, t, s in sample_rows(probe, N_AGGREGATES)]

    def raw(i: int) -> float:
        conn = sqlite3.connect(tmp / f"r{i}.db")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE stored_events (notification_id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "UNIQUE(originator_id, originator_version))"
        )
        started = time.perf_counter()
        with conn:
            conn.executemany(
                "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
                "VALUES (?,?,?,?)",
                rows,
            )
        seconds = time.perf_counter() - started
        conn.close()
        return seconds

    return Result(
        "event-store append, SQLite",
        "events/s",
        timed_saves(sqlite_app, count),
        insert_rate(count, raw),
        "raw batched INSERT, sqlite3",
        0.5,
    )


def bench_postgres() -> Result:
    count = N_AGGREGATES * EVENTS_PER
    with fresh_database() as dbname:
        env = postgres_env(dbname)
        app = BenchApplication(env)
        rows = sample_rows(app, N_AGGREGATES)

        def raw(i: int) -> float:
            with psycopg.connect(**PG, dbname=dbname) as conn:
                conn.execute(
                    f"CREATE TABLE raw{i} (notification_id BIGSERIAL PRIMARY KEY, originator_id uuid, "
                    "originator_version bigint, topic text, state bytea, "
                    "UNIQUE(originator_id, originator_version))"
                )
                conn.commit()
                started = time.perf_counter()
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO raw{i} (originator_id, originator_version, topic, state) "
                        "VALUES (%s,%s,%s,%s)",
                        rows,
                    )
                conn.commit()
                return time.perf_counter() - started

        result = Result(
            "event-store append, PostgreSQL",
            "events/s",
            timed_saves(lambda _: BenchApplication(env), count),
            insert_rate(count, raw),
            "raw batched INSERT, psycopg",
            0.5,
        )
        app.close()
        return result


def main() -> None:
    header(f"event store append: {N_AGGREGATES} aggregates × {EVENTS_PER} events per save")
    with tempfile.TemporaryDirectory() as tmp:
        print(bench_sqlite(Path(tmp)).line())
    print(bench_postgres().line())


if __name__ == "__main__":
    main()
