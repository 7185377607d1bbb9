"""Leads: one daily distribution of 10,000 reps × 40 leads (400,000 assignments, all regions, one
run with batched saves) in assignments/s, until every LeadAssigned is on the Kafka topic (the
service's outbox relay runs beside the distribution, its reader process reading the backlog, as in
the service), against a raw batched INSERT of the same stored rows, in the order the run stored them
(the store's index order: `shared.application.in_store_order`), into the same kind of store with
the same driver (sqlite3) — empty, and already holding the setup's events as the application's
store does; the distribution's own time (stored, not yet relayed) on a line of its
own; and the process's peak memory. Medians of BENCH_REPEATS runs, each on a freshly stocked store
(about a minute each at full size). Needs the local broker.

    .venv/bin/python -m bench.bench_leads      (BENCH_LEADS_REPS, BENCH_LEADS_PER_REP, BENCH_LEADS_REGIONS)
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from bench.common import REPEATS, Result, header, insert_in_statements
from services.leads.application import DistributionReport, LeadsApplication
from services.leads.domain.values import Address, NewLead
from services.leads.integration import to_integration
from services.leads.policy import LeadsPolicy
from shared.domain import Meta
from shared.metrics import Metrics
from shared.relay import OutboxRelay, ReaderProcesses, ReaderSpec
from shared.settings import AGGREGATE_CACHE_SIZE, RELAY_READERS, cache_env
from tests.support.kafka_helpers import eventually
from tests.support.stores import sqlite_env

N_REPS = int(os.environ.get("BENCH_LEADS_REPS", "10000"))
PER_REP = int(os.environ.get("BENCH_LEADS_PER_REP", "40"))
N_REGIONS = int(os.environ.get("BENCH_LEADS_REGIONS", "20"))
KAFKA = os.environ.get("IRONARMY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
DAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Hangzhou
ADDRESS = Address("1 Wensan Road", "Hangzhou", 30.2741, 120.1551)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def stocked(path: Path) -> LeadsApplication:
    """A store with N_REPS reps and N_REPS × PER_REP pool leads, spread over N_REGIONS regions."""
    policy = LeadsPolicy(default_daily_quota=PER_REP, quota_min=min(30, PER_REP), quota_max=max(50, PER_REP))
    env = sqlite_env(path)
    app = LeadsApplication({**env, **cache_env(AGGREGATE_CACHE_SIZE)}, policy)  # as the service runs
    admin = Meta("bench", "admin", NOW)
    regions = [f"region-{r:02d}" for r in range(N_REGIONS)]
    for i in range(N_REPS):
        app.register_rep(f"rep-{i:05d}", f"Rep {i}", regions[i % N_REGIONS], date(2025, 1, 6), admin)
    batch = 20_000
    total = N_REPS * PER_REP
    for start in range(0, total, batch):
        app.register_leads(
            [
                NewLead(f"Company {n}", regions[n % N_REGIONS], ADDRESS, float(n % 1000) / 10, "bench")
                for n in range(start, min(start + batch, total))
            ],
            admin,
        )
    return app


Row = tuple[str, int, str, bytes]


def raw_insert_rate(path: Path, rows: Sequence[Row], already: Sequence[Row] = ()) -> float:
    """The same rows, batched, into the same table shape, with the same driver and statements (the
    append's baseline); into a table that holds `already` first (untimed), as the application's
    store holds the setup's events."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
        "state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    with conn:
        conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", already)
    started = time.perf_counter()
    size = 5000  # the application's save batch
    for first in range(0, len(rows), size):
        with conn:
            insert_in_statements(conn, rows[first : first + size])
    seconds = time.perf_counter() - started
    conn.close()
    return len(rows) / seconds


async def distribute_and_relay(app: LeadsApplication, after: int) -> tuple[DistributionReport, float, float]:
    """The run, with the relay publishing what it stores as it goes (woken by each save, as in the
    service): the report, seconds until the last event was on the topic, and the run's own seconds."""
    relay = OutboxRelay(
        app,
        to_integration,
        topic=f"bench{uuid.uuid4().hex[:8]}.leads",
        bootstrap_servers=KAFKA,
        partitions=3,
        metrics=Metrics("bench"),
        batch_size=5000,
        # As the service reads (IRONARMY_RELAY_READER=process): processes of their own, the same store.
        reader=ReaderProcesses(
            ReaderSpec(LeadsApplication, (dict(app.env), app.policy), to_integration, 5000), RELAY_READERS
        ),
    )
    await relay.start_producer()
    relay.record_position(after)  # the setup's events are not the run's
    loop = asyncio.get_running_loop()
    app.on_recorded.append(lambda recordings: loop.call_soon_threadsafe(relay.hand_over, recordings))
    relaying = asyncio.create_task(relay.run())
    started = time.perf_counter()
    report = await asyncio.to_thread(
        app.distribute, DAY, Meta("scheduler", "system", NOW, correlation_id="bench")
    )
    stored = time.perf_counter() - started
    last = app.recorder.max_notification_id() or 0
    await eventually(lambda: relay.published >= last, timeout=900, what="relayed")
    relayed = time.perf_counter() - started
    await relay.stop()
    await relaying
    app.on_recorded.clear()
    return report, relayed, stored


@dataclass(frozen=True)
class Run:
    """One repetition: our rates and the baselines measured right after it."""

    relayed: float  # assignments/s until the last event was on the topic
    stored: float  # assignments/s until the run had stored everything
    baseline: float  # raw insert into an empty table
    baseline_filled: float  # raw insert into a table holding the setup's rows
    setup_rows: int
    peak_rss_mb: float  # the process's peak so far, taken right after the run
    line: str


def one_run(tmp: Path, run: int) -> Run:
    started = time.perf_counter()
    app = stocked(tmp / f"leads-{run}.sqlite")
    before = app.recorder.max_notification_id() or 0
    setup = time.perf_counter() - started
    report, seconds, stored_seconds = asyncio.run(distribute_and_relay(app, before))
    rss = peak_rss_mb()  # before the baselines' rows are read into memory
    assert report.assigned == N_REPS * PER_REP, report
    stored = app.recorder.select_notifications(before, report.assigned + 10, inclusive_of_start=False)
    rows = [(str(n.originator_id), n.originator_version, n.topic, n.state) for n in stored]
    # The same again into a table already holding the setup's events, as the store does: a
    # larger index takes each insert and each commit writes more pages.
    setup_rows = [
        (str(n.originator_id), n.originator_version, n.topic, n.state)
        for n in app.recorder.select_notifications(1, before, stop=before)
    ]
    app.close()
    result = Run(
        relayed=report.assigned / seconds,
        stored=report.assigned / stored_seconds,
        baseline=raw_insert_rate(tmp / f"raw-{run}.sqlite", rows),
        baseline_filled=raw_insert_rate(tmp / f"raw-filled-{run}.sqlite", rows, setup_rows),
        setup_rows=len(setup_rows),
        peak_rss_mb=rss,
        line=(
            f"run {run + 1}: setup {setup:,.1f}s; {report.assigned:,} assignments ({len(rows):,} events) "
            f"stored in {stored_seconds:,.1f}s, all on the topic in {seconds:,.1f}s; "
            f"spread {report.spread.min}–{report.spread.max}, fair={report.spread.fair}"
        ),
    )
    for path in tmp.iterdir():  # the next run starts from an empty disk
        path.unlink()
    del app, stored, rows, setup_rows
    gc.collect()  # and with this run's store and read model gone (they hold reference cycles)
    return result


def main() -> None:
    header(f"daily distribution: {N_REPS:,} reps × {PER_REP} leads over {N_REGIONS} regions, SQLite")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(REPEATS):
            runs.append(one_run(Path(tmp), run))
            print(runs[-1].line)

    def median(field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs)

    baseline = median("baseline")
    print(
        Result(
            "daily distribution, stored and on Kafka",
            "rows/s",
            median("relayed"),
            baseline,
            "raw batched INSERT, sqlite3",
            0.5,
        ).line()
    )
    print(
        Result(
            "  the same, into the setup's rows",
            "rows/s",
            median("relayed"),
            median("baseline_filled"),
            f"raw INSERT after {runs[0].setup_rows:,} rows",
        ).line()
    )
    print(
        Result(
            "  stored only (the relay still catching up)",
            "rows/s",
            median("stored"),
            baseline,
            "raw batched INSERT, sqlite3",
        ).line()
    )
    # Later runs' peaks also count the memory an earlier run's baselines left to the allocator.
    print(f"peak RSS of the first run, setup and distribution: {runs[0].peak_rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
