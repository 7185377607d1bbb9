"""Benchmark helpers: medians of repeated runs, and one line per measure with its baseline."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from shared.codec import CHECK
from shared.persistence import rows_insert, statement_sizes
from shared.runtime import tune_gc
from tests.support.stores import PG  # the local PostgreSQL the tests use (IRONARMY_POSTGRES_*)

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
T = TypeVar("T")

tune_gc()  # as every service process runs (shared.web's lifespan)


@dataclass(frozen=True)
class Result:
    measure: str
    unit: str
    ours: float
    baseline: float
    baseline_name: str
    target: float | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    def line(self) -> str:
        verdict = ""
        if self.target is not None:
            verdict = "  meets target" if self.ratio >= self.target else f"  BELOW target {self.target}"
        return (
            f"{self.measure:<48} ours {self.ours:>12,.1f} {self.unit:<10} "
            f"baseline ({self.baseline_name}) {self.baseline:>12,.1f}  ratio {self.ratio:5.2f}{verdict}"
        )


SQLITE_INSERT = "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?,?,?,?)"


def insert_in_statements(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """The raw SQLite baseline: the rows into `stored_events` by the multi-row INSERTs our store
    writes (`statement_sizes`, `rows_insert`), in the caller's transaction."""
    first = 0
    for size in statement_sizes(len(rows)):
        part = rows[first : first + size]
        conn.execute(rows_insert(SQLITE_INSERT, size), [value for row in part for value in row])
        first += size


# Ours and its baselines are run in turns, repeat by repeat (ours, the baseline, ours again …):
# a shared machine slowing down or speeding up during a benchmark then moves both sides alike.


def medians_in_turns(*runs: Callable[[int], float], repeats: int = REPEATS) -> list[float]:
    """Each run's median over `repeats`, the runs taken in turns (each called with the repeat)."""
    results = [[run(i) for run in runs] for i in range(repeats)]
    return [statistics.median(column) for column in zip(*results, strict=True)]


async def in_turns(*runs: Callable[[int], Awaitable[T]]) -> list[list[T]]:
    """Each run's results over REPEATS, the runs taken in turns (each awaited with the repeat)."""
    results = [[await run(i) for run in runs] for i in range(REPEATS)]
    return [list(column) for column in zip(*results, strict=True)]


def seconds(run: Callable[[int], object]) -> Callable[[int], float]:
    """`run` (called with the repeat), answering how many seconds it took."""

    def timed(i: int) -> float:
        started = time.perf_counter()
        run(i)
        return time.perf_counter() - started

    return timed


def header(title: str) -> None:
    checked = " — IRONARMY_CHECK_CODEC is on: every state is decoded again, not comparable" if CHECK else ""
    python = f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"
    print(
        f"# {title} — {platform.node()} {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"median of {REPEATS}, {python}{checked}"
    )


@contextmanager
def fresh_database() -> Iterator[str]:
    """A PostgreSQL database of its own for a benchmark, dropped afterwards: its name."""
    dbname = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield dbname
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


# Where the CPU goes: on two cores shared by the services, the broker and the database, a path's
# rate is bounded by the CPU all of them spend on it, not only by what the process measured does.

KAFKA_PID_FILE = Path(
    os.environ.get("KAFKA_DATA_DIR", Path(__file__).resolve().parent.parent / "var" / "kafka"), "kafka.pid"
)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process (all its threads) has used so far, from Linux's /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The local broker's process (deploy/kafka/kafka.sh's pid file), if it is running here."""
    try:
        pid = int(KAFKA_PID_FILE.read_text())
        cpu_seconds(pid)
    except (OSError, ValueError):
        return None
    return pid


@dataclass
class CpuUse:
    """The CPU seconds each party spent on a measured stretch of work, repeat after repeat: this
    process, the other processes it named (say, its reader processes), and the broker."""

    here: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)
    broker: list[float] = field(default_factory=list)

    @contextmanager
    def measuring(self, other_pids: Sequence[int] = ()) -> Iterator[None]:
        broker = broker_pid()

        def spent() -> tuple[float, float, float]:
            return (
                time.process_time(),
                sum(map(cpu_seconds, other_pids)),
                float("nan") if broker is None else cpu_seconds(broker),
            )

        before = spent()
        yield
        for parts, after, was in zip((self.here, self.others, self.broker), spent(), before, strict=True):
            parts.append(after - was)

    def per_thousand(self, events: int) -> tuple[float, float, float]:
        """Milliseconds of CPU per 1,000 events (medians over the repeats): here, others, broker."""
        here, others, broker = (
            statistics.median(parts) * 1e6 / events if parts else 0.0
            for parts in (self.here, self.others, self.broker)
        )
        return here, others, broker
