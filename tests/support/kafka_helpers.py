"""Reading what is really on a topic, for assertions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[ConsumerRecord]], bool], timeout: float = 30.0
) -> list[ConsumerRecord]:
    """Every record on the topic from the start, read until `until(records)` holds (or fail)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met after {timeout}s; read {len(records)} records"
                )
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                records.extend(messages)
    finally:
        await consumer.stop()
    return records


async def eventually(check: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll a condition that another task or process makes true (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        await asyncio.sleep(0.05)


async def eventually_async(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Like `eventually`, for a condition that has to be asked asynchronously (an HTTP call)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        await asyncio.sleep(0.05)


def eventually_blocking(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """`eventually` for synchronous tests and worker threads: poll, with a deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        time.sleep(0.05)
