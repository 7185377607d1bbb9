"""Exactly-once consumer: applies each message through the application with its offset, in one
transaction, and seeks to the stored position on every partition assignment.

Kafka's own committed offsets are written too, but only so that lag shows in Kafka's tools:
the store's tracking records are what decide where to resume. A message that cannot be read
(undecodable, unknown type, newer schema) or that the domain refuses is parked in
`<topic>.dlq` with its origin, and the consumer goes on.

`run` follows the topics for good, as a member of its consumer group. `run_to_end` is a bounded
replay (ops rebuilding a store from the topics): the partitions are assigned rather than joined
through a group, it applies each up to where it ended when the replay began, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from eventsourcing.persistence import PersistenceError, Tracking

from shared.aio import wait_until
from shared.application import Delivery, ServiceApplication, StepFailed, tracking_name
from shared.events.base import Envelope
from shared.events.catalog import UndecodableEvent, decode
from shared.kafka import ensure_topics, make_producer
from shared.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# Applies one event; returns False when it had already been applied.
Handler = Callable[[Delivery, Any, Envelope], bool]


@dataclass(frozen=True)
class Applied:
    outcomes: list[str]  # one per message applied, in order: applied, duplicate, redelivered, ignored
    parked: tuple[Any, str] | None  # the message after them that must be parked, and why


async def partition_ends(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Where each partition of these topics ends now (the next offset to be written), asked of a
    started consumer subscribed to them (so it holds their metadata)."""
    partitions = [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    return dict(await consumer.end_offsets(partitions))


class _SeekToStoredPosition(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ExactlyOnceConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self.owner.seek_to_stored(assigned)


class ExactlyOnceConsumer:
    def __init__(
        self,
        application: ServiceApplication,
        handlers: Mapping[str, Handler],
        *,
        group_id: str,
        topics: Sequence[str],
        bootstrap_servers: str,
        partitions: int,
        metrics: Metrics,
        batch_size: int = 500,
    ) -> None:
        self.application = application
        self.handlers = handlers
        self.group_id = group_id
        self.topics = list(topics)
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_seconds = 0.5  # how long a poll waits for messages
        self._consumer: AIOKafkaConsumer | None = None
        self._dead_letters: AIOKafkaProducer | None = None  # started when first needed
        self._ends: dict[TopicPartition, int] | None = None  # where a bounded replay stops
        self._stopping = asyncio.Event()
        self.connected = False
        self.failure: str | None = None  # the last unexpected error, until a batch goes through
        # Last applied offset per partition, as the store says; a message at or below it
        # is a redelivery (e.g. fetched before a seek) and is passed over without a write.
        self._applied: dict[tuple[str, int], int] = {}
        # (topic, outcome) → messages, as the metrics count them: what a replay reports.
        self.outcomes: Counter[tuple[str, str]] = Counter()

    async def seek_to_stored(self, assigned: Sequence[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:  # stopped while the group was assigning partitions
            return
        for tp in assigned:
            offset = await asyncio.to_thread(
                self.application.processed_offset, self.group_id, tp.topic, tp.partition
            )
            if offset is None:
                # From the start: offset 0, or, once retention has deleted it, the earliest
                # message left (`auto_offset_reset`). Not `seek_to_beginning`, which asks the
                # partition's leader now: on topics just made, before the client knows their
                # leaders, it waited ~2 s, and a stop meanwhile (a service shutting down just
                # after it started) waited with it.
                self._applied.pop((tp.topic, tp.partition), None)
                consumer.seek(tp, 0)
            else:
                self._applied[(tp.topic, tp.partition)] = offset
                consumer.seek(tp, offset + 1)

    # --- applying a batch of one partition (runs in a worker thread) ------------------

    def apply_batch(self, topic: str, partition: int, messages: Sequence[Any]) -> Applied:
        """Apply consecutive messages of one partition in one transaction with their last offset.

        Stops before the first message that must be parked (unreadable, or refused by the
        domain) and returns it, with the outcomes of the messages before it.
        """
        outcomes: list[str] = []
        items: list[tuple[Any, Envelope, Any]] = []
        parked: tuple[Any, str] | None = None
        known = self._applied.get((topic, partition), -1)
        for message in messages:
            if message.offset <= known:
                outcomes.append("redelivered")
                continue
            try:
                envelope, event = decode(message.value)
            except UndecodableEvent as error:
                parked = (message, str(error))
                break
            items.append((message, envelope, event))
        while items:
            tracking = Tracking(tracking_name(self.group_id, topic, partition), items[-1][0].offset)
            steps = [functools.partial(self._apply_one, topic, partition, *item) for item in items]
            application = self.application
            touched = application.touched_by(self.group_id, [(e, event) for _, e, event in items])
            inbox = application.inbox_names(self.group_id, [e for _, e, _ in items])
            try:
                results = application.apply_in_one_transaction(tracking, steps, touched=touched, inbox=inbox)
            except StepFailed as failed:
                # Nothing was saved: park that one, then apply those before it on their own.
                parked = (items[failed.index][0], f"{failed.error.code}: {failed.error.message}")
                items = items[: failed.index]
                continue
            outcomes.extend(results if results is not None else ["duplicate"] * len(steps))
            self._applied[(topic, partition)] = items[-1][0].offset
            break
        return Applied(outcomes, parked)

    def _apply_one(self, topic: str, partition: int, message: Any, envelope: Envelope, event: Any) -> str:
        handler = self.handlers.get(envelope.event_type)
        if handler is None:
            return "ignored"
        delivery = Delivery(
            consumer=self.group_id,
            topic=topic,
            partition=partition,
            offset=message.offset,
            source_aggregate_id=envelope.aggregate_id,
            source_version=envelope.aggregate_version,
        )
        return "applied" if handler(delivery, event, envelope) else "duplicate"

    def mark_parked(self, topic: str, partition: int, offset: int) -> None:
        """Move past a parked message durably, once its dead-letter copy is on the broker."""
        tracking = Tracking(tracking_name(self.group_id, topic, partition), offset)
        if not self.application.process_recorder.has_tracking_id(
            tracking.application_name, tracking.notification_id
        ):
            self.application.process_recorder.insert_tracking(tracking)
        self._applied[(topic, partition)] = offset

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self._run_once()
                backoff = 0.5
            except (KafkaError, OSError, PersistenceError) as error:
                log.warning("consumer %s: %s; restarting in %.1fs", self.group_id, error, backoff)
                self.connected = False
                await self._close()
                await wait_until(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as error:
                # A bug in a handler: say so loudly (log, /readyz) and retry, rather than let the
                # consumer die unseen; the message is not skipped.
                log.exception("consumer %s failed; retrying in %.1fs", self.group_id, backoff)
                self.failure = f"{type(error).__name__}: {error}"
                self.connected = False
                await self._close()
                await wait_until(self._stopping, backoff)
                backoff = min(backoff * 2, 30.0)

    async def run_to_end(self, ends: Mapping[TopicPartition, int] | None = None) -> dict[TopicPartition, int]:
        """Apply every partition of the topics, from where the store says, up to where it ended
        when the replay began (the first call fixes that), and return those ends. `ends`: only
        these partitions, up to these offsets (a share of a replay split across processes,
        `shared.replay_processes`).

        A bounded replay: no consumer group to join or rebalance, and it returns at the end
        instead of waiting for more. Kafka or the store going away is retried, as `run` does,
        from the store's positions; a handler's bug is raised."""
        if ends is not None:
            self._ends = dict(ends)
        return await self._retrying(self._replay_once)

    async def replay_ends(self) -> dict[TopicPartition, int]:
        """Where each partition of the topics ends now: where a replay stops (the first call
        fixes it, as `run_to_end`'s does). Kafka going away is retried."""
        if self._ends is None:
            self._ends = await self._retrying(self._ask_ends)
        return dict(self._ends)

    async def _ask_ends(self) -> dict[TopicPartition, int]:
        await ensure_topics(self.bootstrap_servers, self.topics, self.partitions)
        consumer = self._make_consumer(*self.topics, group_id=None)
        try:
            await consumer.start()
            return await partition_ends(consumer, self.topics)
        finally:
            await consumer.stop()

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        backoff = 0.5
        while True:
            try:
                return await attempt()
            except (KafkaError, OSError, PersistenceError) as error:
                if self._stopping.is_set():
                    raise
                log.warning("replay %s: %s; resuming in %.1fs", self.group_id, error, backoff)
                await wait_until(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _replay_once(self) -> dict[TopicPartition, int]:
        await ensure_topics(self.bootstrap_servers, self.topics, self.partitions)
        # Subscribed without a group only to learn the topics' partitions, then assigned them.
        consumer = self._consumer = self._make_consumer(*self.topics, group_id=None)
        try:
            await consumer.start()
            if self._ends is None:
                self._ends = await partition_ends(consumer, self.topics)
            ends = self._ends
            consumer.unsubscribe()
            consumer.assign(list(ends))
            await self.seek_to_stored(list(ends))
            self.connected = True
            while not await self._replayed(consumer, ends):
                if self._stopping.is_set():
                    raise RuntimeError(f"replay {self.group_id} stopped before the end")
                for tp, messages in (await self._poll(consumer)).items():
                    before_end = [m for m in messages if m.offset < ends[tp]]
                    if before_end:
                        self.failure = None
                        await self._apply_partition(tp, before_end)
            return dict(ends)
        finally:
            await self._close()

    @staticmethod
    async def _replayed(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
        """Every partition handed over (and so applied) up to its end. A partition's position
        also passes offsets that hold no message for us, such as transaction markers."""
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        return True

    def _make_consumer(self, *topics: str, group_id: str | None) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.batch_size,
        )

    async def _run_once(self) -> None:
        await ensure_topics(self.bootstrap_servers, self.topics, self.partitions)
        consumer = self._consumer = self._make_consumer(group_id=self.group_id)
        consumer.subscribe(self.topics, listener=_SeekToStoredPosition(self))
        committing: asyncio.Task[None] | None = None
        try:
            await consumer.start()
            self.connected = True
            while not self._stopping.is_set():
                batches = await self._poll(consumer)
                done_upto: dict[TopicPartition, OffsetAndMetadata] = {}
                for tp, messages in batches.items():
                    self.failure = None
                    await self._apply_partition(tp, messages)
                    done_upto[tp] = OffsetAndMetadata(messages[-1].offset + 1, "")
                if done_upto:
                    # For Kafka's tools only (the store decides where to resume): one commit a
                    # poll, sent while the next poll is applied.
                    if committing is not None:
                        await committing
                    committing = asyncio.create_task(consumer.commit(done_upto))
                self._report_lag(consumer)
            if committing is not None:
                await committing
        finally:
            if committing is not None:
                if not committing.done():
                    committing.cancel()  # failing: the next run commits again
                elif not committing.cancelled():
                    committing.exception()  # seen here, or by the loop that failed
            await self._close()

    async def _poll(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """The next poll's messages; none when asked to stop meanwhile. A poll waits a while for
        messages, and a stop (a service shutting down, a replay moving on to its next topic)
        should not wait with it."""
        timeout_ms = int(self.poll_seconds * 1000)
        poll = asyncio.ensure_future(consumer.getmany(timeout_ms=timeout_ms, max_records=self.batch_size))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            poll.cancel()
            raise
        finally:
            stopping.cancel()
        if poll.done():
            return poll.result()  # type: ignore[no-any-return]
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
        return {}

    async def _apply_partition(self, tp: TopicPartition, messages: Sequence[Any]) -> None:
        """Apply one partition's messages of a poll, parking those that cannot be applied."""
        outcomes: Counter[str] = Counter()
        remaining = list(messages)
        try:
            while remaining:
                applied = await asyncio.to_thread(self.apply_batch, tp.topic, tp.partition, remaining)
                outcomes.update(applied.outcomes)
                done = len(applied.outcomes)
                if applied.parked is not None:
                    message, reason = applied.parked
                    await self._dead_letter(tp, message, reason)
                    await asyncio.to_thread(self.mark_parked, tp.topic, tp.partition, message.offset)
                    outcomes["dead_lettered"] += 1
                    done += 1
                remaining = remaining[done:]
        finally:  # counted per batch, not per message (a labelled counter costs a microsecond)
            for outcome, count in outcomes.items():
                self.count(tp.topic, outcome, count)

    def count(self, topic: str, outcome: str, messages: int) -> None:
        """Count messages of a topic by outcome, in the metrics and in `outcomes`."""
        self.outcomes[(topic, outcome)] += messages
        self.metrics.consumed.labels(self.group_id, topic, outcome).inc(messages)

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        """After every poll, for every assigned partition, even a quiet or a stuck one."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # no fetch answered yet for this partition
            applied = self._applied.get((tp.topic, tp.partition), -1)
            lag = max(highwater - (applied + 1), 0)
            self.metrics.consumer_lag.labels(self.group_id, tp.topic, str(tp.partition)).set(lag)

    async def _dead_letter(self, tp: TopicPartition, message: Any, reason: str) -> None:
        log.error(
            "consumer %s parked %s[%d]@%d: %s", self.group_id, tp.topic, tp.partition, message.offset, reason
        )
        headers = [
            ("origin-topic", tp.topic.encode()),
            ("origin-partition", str(tp.partition).encode()),
            ("origin-offset", str(message.offset).encode()),
            ("consumer-group", self.group_id.encode()),
            ("reason", reason[:1000].encode()),
        ]
        await ensure_topics(self.bootstrap_servers, [f"{tp.topic}.dlq"], 1)
        if self._dead_letters is None:  # most consumers never park anything
            producer = make_producer(self.bootstrap_servers, client_id=f"{self.group_id}-dlq")
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._dead_letters = producer
        await self._dead_letters.send_and_wait(
            f"{tp.topic}.dlq", value=message.value, key=message.key, headers=headers
        )

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        producer, self._dead_letters = self._dead_letters, None
        for client in (consumer, producer):
            if client is not None:
                try:
                    await client.stop()
                except KafkaError:
                    log.debug("consumer %s: stop failed", self.group_id, exc_info=True)

    async def stop(self) -> None:
        self._stopping.set()
