"""Bounded replays (`ExactlyOnceConsumer.run_to_end`) split across processes: each takes a share
of a topic's partitions and applies it, through an application of its own on the same store, up
to the ends the replay fixed when it began.

A replay is bound by one interpreter's lock: decoding, the domain's handlers, encoding and
hashing the events it stores are Python. Partitions are independent streams (keyed by
aggregate: one lead's, one rep's events stay in one), so their shares can be applied side by
side, on as many cores as there are, each with its own tracking records in its own
transactions; the store orders their commits. What one process applied stays applied if
another fails: running the replay again goes on from the store's positions, as a replay in one
process does.

Starting the processes costs a second or two (each imports the service), so a replay with less
to apply than `split_from` messages runs in this process; once started, the processes serve
the replays that follow (a rebuild's next topic) whatever their size. The store must be one that
other processes can open (a SQLite file, PostgreSQL), not the in-memory one: `shareable_store`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Self

from aiokafka import TopicPartition

from shared.application import ServiceApplication
from shared.consumer import ExactlyOnceConsumer
from shared.runtime import tune_gc

# Below this many messages to apply, a replay runs in this process: the processes' start (each
# imports the service, ~1–2 s on two cores) would cost more than they save.
SPLIT_FROM = 20_000
FOLLOW_SECONDS = 0.5  # how often this process's read models follow the processes' commits

MakeApplication = Callable[[], ServiceApplication]
MakeConsumer = Callable[[ServiceApplication], ExactlyOnceConsumer]
# What a replay has to say once done (divergences, messages it parked), from its application
# and its consumer.
Report = Callable[[ServiceApplication, ExactlyOnceConsumer], list[str]]


class ReplayFailed(RuntimeError):
    """A process of a split replay failed or died; what the others applied stays applied."""


def shareable_store(env: Mapping[str, str]) -> bool:
    """Whether another process can open the store this environment names."""
    module = env.get("PERSISTENCE_MODULE", "")
    if module == "eventsourcing.sqlite":
        name = env.get("SQLITE_DBNAME", "")
        return bool(name) and ":memory:" not in name and "mode=memory" not in name
    return module == "eventsourcing.postgres"


def shares(ends: Mapping[TopicPartition, int], processes: int) -> list[dict[TopicPartition, int]]:
    """The partitions dealt out in turn to at most `processes` shares (each partition whole)."""
    if processes < 1:
        raise ValueError(f"a replay needs at least one process, not {processes}")
    ordered = sorted(ends, key=lambda tp: (tp.topic, tp.partition))
    dealt: list[dict[TopicPartition, int]] = [{} for _ in range(min(processes, len(ordered)))]
    for n, tp in enumerate(ordered):
        dealt[n % len(dealt)][tp] = ends[tp]
    return dealt


def backlog(application: ServiceApplication, group_id: str, ends: Mapping[TopicPartition, int]) -> int:
    """Messages a replay has left to apply: from each partition's stored position to its end."""
    left = 0
    for tp, end in ends.items():
        applied = application.processed_offset(group_id, tp.topic, tp.partition)
        left += max(end - (0 if applied is None else applied + 1), 0)
    return left


@dataclass(frozen=True)
class ReplayShare:
    """One process's part of a replay; it pickles (module-level factories, `functools.partial`s
    of them, plain values)."""

    make_consumer: MakeConsumer
    ends: dict[TopicPartition, int]
    report: Report | None


@dataclass(frozen=True)
class ShareDone:
    outcomes: dict[tuple[str, str], int]  # (topic, outcome) → messages
    notes: list[str]


@dataclass(frozen=True)
class SplitReplay:
    ends: dict[TopicPartition, int]
    processes: int  # how many applied it (1: this one)
    notes: list[str]  # the report's, of each process in the order of their partitions


class ReplayProcesses:
    """Up to `processes` processes applying shares of bounded replays side by side, each through an
    application of its own made by `make_application` (which pickles), started by the first replay
    worth splitting and kept for those that follow; ended when the block ends."""

    def __init__(self, make_application: MakeApplication, processes: int, *, split_from: int = SPLIT_FROM):
        if processes < 1:
            raise ValueError(f"a replay needs at least one process, not {processes}")
        self.make_application = make_application
        self.processes = processes
        self.split_from = split_from
        self._children: list[tuple[BaseProcess, Connection]] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        children, self._children = self._children, []
        for process, connection in children:
            if not process.is_alive():
                continue
            if kind is None:
                connection.send(None)  # done: the process ends when it reads this
            else:  # failed or cancelled: whatever it is doing is not wanted
                process.terminate()
        for process, connection in children:
            await asyncio.to_thread(process.join)
            connection.close()

    async def run_to_end(
        self, consumer: ExactlyOnceConsumer, make_consumer: MakeConsumer, report: Report | None = None
    ) -> SplitReplay:
        """`consumer.run_to_end()`, its partitions shared among the processes, each making its
        consumer with `make_consumer` (the same handlers, group and topics as `consumer`); in this
        process, through `consumer` itself, when it is not worth splitting. `consumer` fixes the
        ends and counts what was applied in its metrics; when the processes applied it, its own
        application's read models learn of what they stored at their next `catch_up`."""
        ends = await consumer.replay_ends()
        if not self._children:
            if self.processes == 1 or len(ends) < 2 or await self._too_small(consumer, ends):
                await consumer.run_to_end()
                notes = report(consumer.application, consumer) if report is not None else []
                return SplitReplay(ends, 1, notes)
            self._start(min(self.processes, len(ends)))
        dealt = shares(ends, len(self._children))
        children = self._children[: len(dealt)]
        for (_, connection), share in zip(children, dealt, strict=True):
            connection.send(ReplayShare(make_consumer, share, report))
        replies = asyncio.gather(*(asyncio.to_thread(_reply, *child) for child in children))
        try:
            await _follow(consumer.application, replies)
            done = await replies
        finally:
            replies.cancel()  # if the following failed (when done, nothing happens)
        notes = []
        for share_done in done:
            for (topic, outcome), messages in share_done.outcomes.items():
                consumer.count(topic, outcome, messages)
            notes.extend(share_done.notes)
        return SplitReplay(ends, len(dealt), notes)

    async def _too_small(self, consumer: ExactlyOnceConsumer, ends: Mapping[TopicPartition, int]) -> bool:
        left = await asyncio.to_thread(backlog, consumer.application, consumer.group_id, ends)
        return left < self.split_from

    def _start(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")  # nothing of this process's threads inherited
        for n in range(processes):
            here, there = context.Pipe()
            process = context.Process(target=_serve, args=(self.make_application, there), name=f"replay-{n}")
            process.start()
            there.close()  # the child's end: once it exits, a read here ends instead of waiting
            self._children.append((process, here))


async def _follow(application: ServiceApplication, work: asyncio.Future[Any]) -> None:
    """Until the work is done, the application's read models follow what the processes store
    (they would otherwise read it all once it is done: a third of the time again for the visits
    service's, on the core the processes leave while they work). The store gives ids in commit
    order, so nothing committed later can come before what was read."""
    while not work.done():
        await asyncio.to_thread(application.catch_up)
        await asyncio.wait({work}, timeout=FOLLOW_SECONDS)


def _reply(process: BaseProcess, connection: Connection) -> ShareDone:
    try:
        kind, value = connection.recv()
    except EOFError:
        process.join()
        raise ReplayFailed(f"{process.name} ended without a word (exit code {process.exitcode})") from None
    if kind == "failed":
        raise ReplayFailed(f"{process.name} failed: {value}")
    assert isinstance(value, ShareDone)
    return value


def _serve(make_application: MakeApplication, connection: Connection) -> None:
    """In a child: apply each share sent, and answer what it applied (or why it could not), until
    told it is done."""
    tune_gc()  # as a service's process runs
    while True:
        try:
            share = connection.recv()
        except EOFError:  # the parent is gone
            return
        if share is None:
            return
        try:
            connection.send(("done", asyncio.run(_apply(make_application, share))))
        except Exception:
            connection.send(("failed", traceback.format_exc(limit=8)))


async def _apply(make_application: MakeApplication, share: ReplayShare) -> ShareDone:
    application = make_application()
    try:
        consumer = share.make_consumer(application)
        await consumer.run_to_end(share.ends)
        notes = share.report(application, consumer) if share.report is not None else []
        return ShareDone(dict(consumer.outcomes), notes)
    finally:
        application.close()
