"""Jobs run on the service's clock: moving a movable clock makes the due ones run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shared.clock import MovableClock
from shared.scheduler import ScheduledJob, Scheduler
from tests.support.kafka_helpers import eventually


async def test_a_daily_job_runs_again_only_when_the_clock_has_moved_a_day() -> None:
    clock = MovableClock(datetime(2026, 3, 2, 8, tzinfo=UTC))
    seen: list[datetime] = []
    scheduler = Scheduler(clock, [ScheduledJob("daily", timedelta(days=1), seen.append)], tick_seconds=0.01)
    task = asyncio.create_task(scheduler.run())
    try:
        await eventually(lambda: len(seen) == 1, what="first run at start")
        clock.advance(timedelta(hours=23))
        ticks = scheduler.ticks
        await eventually(lambda: scheduler.ticks >= ticks + 3, what="three ticks at 23 h")
        assert len(seen) == 1  # not due yet
        clock.advance(timedelta(hours=1))
        await eventually(lambda: len(seen) == 2, what="run after a day")
    finally:
        await scheduler.stop()
        await task
    assert seen == [datetime(2026, 3, 2, 8, tzinfo=UTC), datetime(2026, 3, 3, 8, tzinfo=UTC)]
