"""Runs jobs on the service's clock (daily distribution, reclaim, moves due): moving a
movable clock forward makes them run, so a simulated week needs no real week."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventsourcing.persistence import PersistenceError

from shared.aio import wait_until
from shared.clock import Clock
from shared.domain import DomainError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    every: timedelta  # in the clock's time
    run: Callable[[datetime], object]  # synchronous; runs in a worker thread


class Scheduler:
    def __init__(self, clock: Clock, jobs: list[ScheduledJob], tick_seconds: float) -> None:
        self.clock = clock
        self.jobs = jobs
        self.tick_seconds = tick_seconds
        self._stopping = asyncio.Event()
        self.runs: dict[str, int] = {job.name: 0 for job in jobs}
        self.ticks = 0

    async def run(self) -> None:
        next_due = {job.name: self.clock.now() for job in self.jobs}
        while not self._stopping.is_set():
            now = self.clock.now()
            for job in self.jobs:
                if now < next_due[job.name]:
                    continue
                try:
                    await asyncio.to_thread(job.run, now)
                    self.runs[job.name] += 1
                except (DomainError, PersistenceError) as error:
                    log.warning("scheduled job %s failed at %s: %s", job.name, now, error)
                next_due[job.name] = now + job.every
            self.ticks += 1
            await wait_until(self._stopping, self.tick_seconds)

    async def stop(self) -> None:
        self._stopping.set()
