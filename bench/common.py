"""Benchmark helpers: medians of repeated runs, and one line per measure with its baseline."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import psycopg

from shared.codec import CHECK
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
