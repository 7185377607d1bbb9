"""Outbox relay: follows a service's notification log and publishes each stored event's public form.

The event store is the only write on the request path. The relay reads what was stored,
sends it to the service's topic (key = aggregate id, idempotent producer, acks=all), and then
records how far it got in the same store. A crash between the two resends a suffix: at least
once on the topic, and consumers make it exactly once in effect (event ids and positions).

Recording a position is a commit (an fsync on SQLite) that takes the store's write lock from the
requests, so while events keep coming it is recorded at most every `record_seconds`; the rest is
recorded when the relay falls idle or stops. A crash resends at most that much more.

Under a trickle (requests saving a few events each), a round starts at most every `linger_seconds`
(5 ms, as a Kafka producer lingers by default since Kafka 4.0): a round costs a read and a send
however few events it carries, and while requests keep coming the saves of the last few
milliseconds go in one. A save after a quiet spell is sent at once.

Reading a batch (select, decode, translate, encode: 13–35 µs an event) is most of the relay's
work. It runs in a worker thread; with `ReaderProcesses` (IRONARMY_RELAY_READER=process, the
default), a backlog is read in processes of their own that open the same store and read the next
batches ahead, side by side (IRONARMY_RELAY_READERS, 2), so that while the service stores events
in bulk (a daily distribution) its requests, consumers and runs keep the process's GIL, and the
reading keeps up with the broker on the cores the service leaves. A trickle is not read back at
all: each save of this process hands the events it committed over (`hand_over`), and a round
sends those that follow on from what was sent as they are; the store is read for the rest. The
store stays the only truth: what is handed over is only ever a shortcut to what a read would
return.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from eventsourcing.persistence import Notification, PersistenceError, Recording, Tracking

from shared.aio import wait_until
from shared.application import ServiceApplication
from shared.events.catalog import Published, envelope_bytes
from shared.kafka import default_partitions, ensure_topics, make_producer
from shared.metrics import Metrics
from shared.runtime import tune_gc

log = logging.getLogger(__name__)

Translator = Callable[[Any], Published | None]
T = TypeVar("T")

PARTITION_CACHE_SIZE = 100_000  # keys whose partition the relay remembers
HANDOVER_EVENTS = 100  # a save of more events is read back from the store instead (in bulk)
HANDOVER_KEEP = 10_000  # events handed over and not yet sent that the relay keeps, at most


class Outgoing(NamedTuple):
    """One message to send (a tuple: the relay makes one for every event it publishes)."""

    key: bytes
    value: bytes
    notification_id: int


def read_outgoing(
    application: ServiceApplication, translate: Translator, after: int, batch_size: int
) -> tuple[list[Outgoing], int]:
    """The stored events with ids after `after` and up to `after + batch_size`, in their public
    form, and how far that is known to be read: `after + batch_size` when the store holds an id
    that far or further, else the last id read (the store's end).

    A batch is a range of ids, so that the range after it can be read before it is (by another
    reader process) and still follow on. Ids become visible in order (one writer at a time on
    SQLite; PostgreSQL's inserts lock the table), so a read that sees an id sees every one before
    it: a gap in a range (an id a rolled-back insert took) is one for good."""
    stop = after + batch_size
    notifications: Sequence[Notification] = application.recorder.select_notifications(
        after, batch_size, inclusive_of_start=False
    )
    outgoing: list[Outgoing] = []
    last = after
    to_domain_event = application.mapper.to_domain_event
    for notification in notifications:
        if notification.id > stop:  # past a gap: the range is whole
            last = stop
            break
        last = notification.id
        message = outgoing_of(to_domain_event(notification), notification.id, translate)
        if message is not None:
            outgoing.append(message)
    return outgoing, last


def outgoing_of(domain_event: Any, notification_id: int, translate: Translator) -> Outgoing | None:
    """A stored event's message, or None when it is internal to the service (nothing public)."""
    published = translate(domain_event)
    if published is None:
        return None
    aggregate_id = str(domain_event.originator_id)
    value = envelope_bytes(
        published,
        aggregate_id=aggregate_id,
        aggregate_version=domain_event.originator_version,
        meta=domain_event.meta.as_dict(),
        recorded_at=domain_event.timestamp,
    )
    return Outgoing(aggregate_id.encode(), value, notification_id)


@dataclass(frozen=True)
class ReaderSpec:
    """How a reader process makes the service's application on the same store: a module-level
    factory and its arguments, and the translator, all of which must pickle."""

    make_application: Callable[..., ServiceApplication]
    args: tuple[Any, ...]
    translate: Translator
    batch_size: int


# In a reader process: what it reads with.
_reading: tuple[ServiceApplication, Translator, int] | None = None


def _start_reader(spec: ReaderSpec) -> None:
    global _reading
    tune_gc()  # as the service's own process runs
    threading.Thread(target=_end_with, args=(os.getppid(),), name="relay-reader-parent", daemon=True).start()
    _reading = (spec.make_application(*spec.args), spec.translate, spec.batch_size)


def _end_with(parent: int) -> None:
    """A reader whose service was killed (kill -9: no shutdown) ends within a second or so, instead
    of waiting forever for a request on a pipe it holds both ends of."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _read_in_reader(after: int) -> tuple[list[tuple[bytes, bytes, int]], int]:
    """`read_outgoing`, its messages as plain tuples for the trip back: a NamedTuple pickles by a
    Python call each, ~1.2 µs a message in the reader and 0.3 µs more to unpickle, where plain
    tuples take ~0.1 µs both ways (and ~0.2 µs to become `Outgoing` again in the service)."""
    assert _reading is not None, "the reader process was not started"
    application, translate, batch_size = _reading
    outgoing, last = read_outgoing(application, translate, after, batch_size)
    return [(o.key, o.value, o.notification_id) for o in outgoing], last


class ReaderProcesses:
    """Reads the relay's batches in processes of their own (started with `spawn`: nothing of this
    process's threads or connections is inherited), each through the service's own application
    on the same store, made by `spec`; what comes back is bytes to send.

    A batch is a range of ids (`read_outgoing`), so the ranges after the one asked for are read
    ahead, side by side (one at a time in each process, taking turns): while the relay sends a
    batch the next ones are being read, on the cores the service's own process leaves. A batch
    read ahead is used only where the relay goes on from; one that came back short or empty
    (the store's end, when it was read) ends the reading ahead, as what was read after it no
    longer follows on (and an empty one may be out of date: it is read again).

    If a process dies, the read that finds it fails (the relay reads in a thread for a while) and
    the next one starts them all again."""

    def __init__(self, spec: ReaderSpec, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError(f"a relay reader needs at least one process, not {processes}")
        try:
            pickle.dumps(spec)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise ValueError(f"a relay reader process needs a picklable spec: {error}") from error
        self.spec = spec
        self._pools: list[ProcessPoolExecutor | None] = [None] * processes
        self._ahead: deque[tuple[int, asyncio.Future[tuple[list[Outgoing], int]]]] = deque()
        self._turn = 0  # the process the next read goes to

    @property
    def processes(self) -> int:
        return len(self._pools)

    async def start(self) -> list[int]:
        """Start the processes that are not running, and wait until they can read: their ids."""
        return list(await asyncio.gather(*(self._call(n, os.getpid) for n in range(self.processes))))

    async def read(self, after: int) -> tuple[list[Outgoing], int]:
        """The batch after `after` (read ahead, if it was), and the following ones read ahead:
        one more than there are processes, so that each has the next to read when it is done."""
        ahead = self._ahead
        if ahead and ahead[0][0] != after:  # the relay goes on from elsewhere (it started over)
            self._drop_ahead()
        if not ahead:
            ahead.append((after, self._submit(after)))
        while len(ahead) <= self.processes:
            start = ahead[-1][0] + self.spec.batch_size
            ahead.append((start, self._submit(start)))
        start, reading = ahead.popleft()
        try:
            batch = await reading
        except BaseException:
            self._drop_ahead()
            raise
        if batch[1] - start < self.spec.batch_size:  # short: what was read after it does not follow on
            self._drop_ahead()
            if batch[1] == start:  # empty when it was read, perhaps long ago: read it now
                batch = await self._submit(start)
        return batch

    def _submit(self, after: int) -> asyncio.Future[tuple[list[Outgoing], int]]:
        process = self._turn
        self._turn = (process + 1) % self.processes
        return asyncio.ensure_future(self._read_in(process, after))

    async def _read_in(self, process: int, after: int) -> tuple[list[Outgoing], int]:
        rows, last = await self._call(process, _read_in_reader, after)
        return list(map(Outgoing._make, rows)), last

    def _drop_ahead(self) -> None:
        while self._ahead:
            _, reading = self._ahead.popleft()
            reading.cancel()  # one not yet begun is not read at all
            reading.add_done_callback(_quietly)

    async def _call(self, process: int, function: Callable[..., T], *args: Any) -> T:
        pool = self._pools[process]
        if pool is None:
            pool = self._pools[process] = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_reader,
                initargs=(self.spec,),
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool:
            if pool in self._pools:  # not one already replaced
                self._lost()
            raise

    def _lost(self) -> None:
        """A process died: the others are ended too, and all are started again when next asked."""
        for pool in self._let_go():
            pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        for pool in self._let_go():
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _let_go(self) -> list[ProcessPoolExecutor]:
        """The running pools, no longer this reader's (the next read starts new ones), and no
        reads ahead."""
        self._drop_ahead()
        pools, self._pools = self._pools, [None] * self.processes
        return [pool for pool in pools if pool is not None]


def _quietly(future: asyncio.Future[Any]) -> None:
    """Take the outcome of a read nobody waits for any more (else asyncio logs its error)."""
    if not future.cancelled():
        future.exception()


class OutboxRelay:
    bulk_seconds = 1.0  # how long after a full batch the reader processes keep reading
    reader_retry_seconds = 10.0  # after a reader process was lost, before they are started again

    def __init__(
        self,
        application: ServiceApplication,
        translate: Translator,
        *,
        topic: str,
        bootstrap_servers: str,
        partitions: int,
        metrics: Metrics,
        batch_size: int = 500,
        idle_seconds: float = 0.2,
        record_seconds: float = 1.0,
        linger_seconds: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
        reader: ReaderProcesses | None = None,
    ) -> None:
        self.application = application
        self.translate = translate
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.metrics = metrics
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.record_seconds = record_seconds
        self.linger_seconds = linger_seconds
        self._clock = clock
        self._round_at = -float("inf")  # when the last round read (a trickle's rounds are paced)
        self.reader = reader  # None: batches are read in a worker thread
        self._bulk_until = -float("inf")  # until when batches go to the reader processes
        self._reader_retry_at = -float("inf")
        # Acknowledged by the broker, and recorded in the store (the recorded one may lag).
        self.published = 0
        self._recorded = 0
        self._recorded_at = -float("inf")
        self.tracking_name = f"relay:{topic}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._partition_of: dict[bytes, int] = {}
        self._partition_count = 0
        self.connected = False
        self._running = False
        self.failure: str | None = None  # the last unexpected error, until a batch goes through
        # Events of saves this process committed, as they were stored, by notification id.
        self._handed: dict[int, Any] = {}

    # --- reading the store (runs in a worker thread) ---------------------------------

    def published_position(self) -> int:
        """The position recorded in the store: where a restarted relay resumes. While busy it
        may trail `published` (what the broker has acknowledged) by up to `record_seconds`."""
        return self.application.process_recorder.max_tracking_id(self.tracking_name) or 0

    def read_batch(self, after: int) -> tuple[list[Outgoing], int]:
        """The next stored events after `after`, in their public form, and the last id read."""
        return read_outgoing(self.application, self.translate, after, self.batch_size)

    async def _read(self, after: int) -> tuple[list[Outgoing], int]:
        """What follows `after`: the events handed over by the saves that stored them, when
        they follow on from it; else read from the store. In bulk (a batch came back full less
        than `bulk_seconds` ago) the reader processes read, and read ahead; a trickle (a
        request's few events) is read in a thread, where a small read costs less than a round
        trip to another process. A bulk writer (a daily distribution saving 5,000 events at a
        time) keeps the relay in bulk between its saves."""
        handed = self._take_handed(after)
        if handed is not None:
            return handed
        batch = None
        now = self._clock()
        if self.reader is not None and now < self._bulk_until and now >= self._reader_retry_at:
            try:
                batch = await self.reader.read(after)
            except BrokenProcessPool as error:  # started again after reader_retry_seconds
                self._reader_lost(error)
        if batch is None:
            batch = await asyncio.to_thread(self.read_batch, after)
        if self._full(after, batch[1]):
            self._bulk_until = self._clock() + self.bulk_seconds
        return batch

    def hand_over(self, recordings: Sequence[Recording[Any]]) -> None:
        """Called on the loop when a save of this process has committed, with its events as
        stored: the relay wakes, and sends them as they are instead of reading them back from
        the store (a thread's hop, a query and decoding them again: most of a trickle's round),
        when they follow on from what it has sent. A big save (a distribution's batch) is read
        back in bulk instead, and so is anything handed over with a gap before it (a save that
        has not handed its events over yet, or one whose events reach the store otherwise)."""
        handed = self._handed
        if len(recordings) <= HANDOVER_EVENTS and len(handed) + len(recordings) <= HANDOVER_KEEP:
            for recording in recordings:
                handed[recording.notification.id] = recording.domain_event
        self._wake.set()

    def _take_handed(self, after: int) -> tuple[list[Outgoing], int] | None:
        """The events handed over that follow on from `after` with no gap, up to a batch, in
        their public form, and the last id taken; None when `after + 1` was not handed over."""
        handed = self._handed
        for stale in [n for n in handed if n <= after]:  # read from the store meanwhile
            del handed[stale]
        if after + 1 not in handed:
            return None
        outgoing: list[Outgoing] = []
        last = after
        while last + 1 in handed and last - after < self.batch_size:
            last += 1
            message = outgoing_of(handed.pop(last), last, self.translate)
            if message is not None:
                outgoing.append(message)
        self.metrics.relay_handed_over.labels(self.topic).inc(last - after)
        return outgoing, last

    def lingering(self) -> float:
        """How long the next round waits: until `linger_seconds` after the last one began."""
        since = self._clock() - self._round_at
        return min(max(self.linger_seconds - since, 0.0), self.linger_seconds)

    async def _round(self, after: int) -> tuple[list[Outgoing], int]:
        """A round's first read, no sooner than `linger_seconds` after the last one's. The wake is
        cleared just before it: a save from then on, even one this read just misses, wakes the
        next round instead of waiting `idle_seconds`; one while it lingered is read now."""
        wait = self.lingering()
        if wait > 0:
            await self._pause(wait)
        self._wake.clear()
        self._round_at = self._clock()
        return await self._read(after)

    def _full(self, after: int, last: int) -> bool:
        """A batch read after `after` up to `last` was full: more may be waiting. (Ids may have
        gaps: a full batch spans at least `batch_size` of them, a short one may too.)"""
        return last - after >= self.batch_size

    def _reader_lost(self, error: BaseException) -> None:
        log.warning(
            "relay %s: reader process lost (%s); reading in a thread for %.0fs",
            self.topic,
            error,
            self.reader_retry_seconds,
        )
        self._reader_retry_at = self._clock() + self.reader_retry_seconds

    def record_position(self, position: int) -> None:
        self.application.process_recorder.insert_tracking(Tracking(self.tracking_name, position))

    # --- publishing -------------------------------------------------------------------

    async def publish(self, outgoing: Sequence[Outgoing]) -> None:
        """Send a batch and wait until the broker has acknowledged every message.

        Messages are grouped by partition (the default partitioner on the key, as any producer
        would choose) and sent as whole record batches, in order: far less work per message
        than one send() each."""
        producer = self._producer
        if producer is None:
            raise KafkaConnectionError("relay is stopping")
        partitions = sorted(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[Outgoing]] = {}
        chosen = self._partitions([o.key for o in outgoing], partitions)
        for o, partition in zip(outgoing, chosen, strict=True):
            by_partition.setdefault(partition, []).append(o)
        futures = []
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for o in items:
                if batch.append(key=o.key, value=o.value, timestamp=None) is None:  # batch full
                    batch.close()
                    futures.append(await producer.send_batch(batch, self.topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=o.key, value=o.value, timestamp=None)
            batch.close()
            futures.append(await producer.send_batch(batch, self.topic, partition=partition))
        if futures:
            await asyncio.gather(*futures)

    def _partitions(self, keys: list[bytes], partitions: list[int]) -> list[int]:
        """The default partitioner's choice for each key, remembered per key (an aggregate's
        events come in runs); the keys not remembered are hashed together (`default_partitions`)."""
        if len(partitions) != self._partition_count:
            self._partition_of.clear()
            self._partition_count = len(partitions)
        known = self._partition_of
        new = list(dict.fromkeys(key for key in keys if key not in known))
        if new and len(known) + len(new) > PARTITION_CACHE_SIZE:
            known.clear()  # full: start again from this batch's keys, every one of them
            new = list(dict.fromkeys(keys))
        if new:
            known.update(zip(new, default_partitions(new, partitions), strict=True))
        return [known[key] for key in keys]

    async def pump(self, position: int) -> int:
        """Publish batch after batch until caught up; returns the last position published.

        Caught up: a read found nothing new, or found less than a batch and no save has woken the
        relay since (the wake is cleared before each round's read; see `_round`). So a trickle of
        a few events a request costs one read, not a second one to find nothing.

        In a backlog three things overlap: the next batch is read from the store while the broker
        acknowledges the current one, and a position is recorded (a commit; at most every
        `record_seconds`) while the next batch is sent. Positions are recorded in order, each only
        once its batch is acknowledged; `flush` records the last one."""
        reading: asyncio.Task[tuple[list[Outgoing], int]] | None = asyncio.create_task(self._round(position))
        recording: asyncio.Task[None] | None = None
        try:
            while reading is not None:
                outgoing, last = await reading
                if last == position:
                    return position
                reading = asyncio.create_task(self._read(last)) if self._full(position, last) else None
                await self.publish(outgoing)
                self.metrics.relay_published.labels(self.topic).inc(len(outgoing))
                position = self.published = last
                if self._clock() - self._recorded_at >= self.record_seconds:
                    if recording is not None:
                        await recording
                    recording = asyncio.create_task(self._record(last))
                if reading is None and self._wake.is_set():  # saved while this batch was sent
                    reading = asyncio.create_task(self._round(position))
            return position
        finally:
            if reading is not None:
                reading.cancel()  # a read-ahead nobody will use (its thread or process just finishes)
            if recording is not None:
                await recording

    async def flush(self) -> None:
        """Record the last acknowledged position, if it is not recorded yet."""
        if self.published > self._recorded:
            await self._record(self.published)

    async def _record(self, position: int) -> None:
        self._recorded_at = self._clock()
        await asyncio.to_thread(self.record_position, position)
        self._recorded = position
        self.metrics.relay_position.labels(self.topic).set(position)

    def wake(self) -> None:
        """Called (thread-safely, via the loop) when the application has stored new events."""
        self._wake.set()

    async def start_producer(self) -> None:
        """Connect to Kafka; start the reader processes, if the relay has them (without, the
        relay reads in a thread)."""
        if self.reader is not None:
            try:
                await self.reader.start()
            except BrokenProcessPool as error:
                self._reader_lost(error)
        producer = make_producer(self.bootstrap_servers, client_id=f"relay-{self.topic}")
        try:
            await ensure_topics(self.bootstrap_servers, [self.topic], self.partitions)
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self.connected = True

    async def run(self) -> None:
        """Publish forever; when Kafka is away, keep the position and try again later."""
        self._running = True
        try:
            await self._run_loop()
        finally:
            self._running = False
            # stop() may have come while a producer was being started: close that one too.
            await self._drop_producer()
            await self._flush_quietly()
            if self.reader is not None:
                await self.reader.close()

    async def _run_loop(self) -> None:
        backoff = 0.5
        position: int | None = None
        while not self._stopping.is_set():
            try:
                if self._producer is None:
                    await self.start_producer()
                if position is None:
                    position = await asyncio.to_thread(self.published_position)
                    self.published = self._recorded = position
                position = await self.pump(position)
                self.failure = None
                backoff = 0.5
                await self._idle()
            except (KafkaError, OSError) as error:
                log.warning("relay %s: Kafka unavailable (%s); retrying", self.topic, error)
                self.connected = False
                await self._flush_quietly()  # what the broker did acknowledge is not sent again
                position = None
                await self._drop_producer()
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)
            except PersistenceError as error:
                # The store is away, or another relay recorded first: re-read where we are.
                log.warning("relay %s: store error (%s); retrying", self.topic, error)
                position = None
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as error:
                # A bug (say, in a translator): loud in the log and /readyz, retried, never silent.
                log.exception("relay %s failed; retrying in %.1fs", self.topic, backoff)
                self.failure = f"{type(error).__name__}: {error}"
                position = None
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _idle(self) -> None:
        """Wait to be woken (at once, if a save came since the round began); falling idle is when
        what was published is recorded."""
        if not await wait_until(self._wake, self.idle_seconds):
            await self.flush()

    async def _flush_quietly(self) -> None:
        """Flush where failing to is no worse than a crash: the suffix is sent again later."""
        try:
            await self.flush()
        except PersistenceError as error:
            log.warning("relay %s: could not record position %d (%s)", self.topic, self.published, error)

    async def _pause(self, seconds: float) -> None:
        await wait_until(self._stopping, seconds)

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except KafkaError:
                log.debug("relay %s: producer stop failed", self.topic, exc_info=True)

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if not self._running:  # else run() closes the producer when it has stopped sending
            await self._drop_producer()
            if self.reader is not None:
                await self.reader.close()
