"""Outbox relay (its backlog read by reader processes, as a service runs it; and reading in a
thread, beside it) vs a raw aiokafka producer sending the same payloads a `send` each (the target's
baseline), and vs one sending them in record batches it builds itself, as the relay does (what
sending alone can do); consumer rebuild (decode, apply, track) vs a raw aiokafka consumer decoding
the same messages. Needs the local broker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import CpuUse, Result, header, in_turns
from shared.domain import Meta
from shared.events.catalog import decode
from shared.kafka import default_partitions, ensure_topics, make_producer
from shared.metrics import Metrics
from shared.relay import OutboxRelay, ReaderProcesses, ReaderSpec
from shared.replay_processes import ReplayProcesses
from shared.settings import AGGREGATE_CACHE_SIZE, RELAY_READERS, REPLAY_PROCESSES, cache_env
from tests.support.probe import ProbeApplication, TallyApplication, tally_consumer, translate
from tests.support.stores import sqlite_env

KAFKA = os.environ.get("IRONARMY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
N_EVENTS = int(os.environ.get("BENCH_KAFKA_EVENTS", "20000"))
PER_AGGREGATE = 20


def filled_store(path: Path) -> ProbeApplication:
    app = ProbeApplication(sqlite_env(path))
    meta = Meta("bench", "system", datetime.now(UTC))
    for _ in range(N_EVENTS // PER_AGGREGATE):
        probe_id = app.create("p", meta)
        app.assign_many(probe_id, [f"rep-{n}" for n in range(PER_AGGREGATE)], meta)
    return app


def probe_relay(
    app: ProbeApplication, topic: str, batch_size: int = 1000, *, reader: str = "thread"
) -> OutboxRelay:
    """A relay over the probe's store; `reader="process"` reads as a service does by default
    (IRONARMY_RELAY_READER), in processes of their own that open the same store."""
    spec = ReaderSpec(ProbeApplication, (dict(app.env),), translate, batch_size)
    return OutboxRelay(
        app,
        translate,
        topic=topic,
        bootstrap_servers=KAFKA,
        partitions=3,
        metrics=Metrics("bench"),
        batch_size=batch_size,
        reader=ReaderProcesses(spec, RELAY_READERS) if reader == "process" else None,
    )


async def publish_all(
    app: ProbeApplication, reader: str = "thread", cpu: CpuUse | None = None
) -> tuple[str, float]:
    """Relay everything stored to a fresh topic: the topic, and events/s (the reader process,
    if any, started before the clock starts, as a service starts it with its producer); `cpu`
    is told what this process, the reader processes and the broker spent on it."""
    topic = f"bench{uuid.uuid4().hex[:8]}.leads"
    relay = probe_relay(app, topic, reader=reader)
    await relay.start_producer()
    readers = await relay.reader.start() if relay.reader is not None else []  # already running
    target = app.recorder.max_notification_id() or 0
    with cpu.measuring(readers) if cpu is not None else contextlib.nullcontext():
        started = time.perf_counter()
        position = await relay.pump(0)
        elapsed = time.perf_counter() - started
    assert position == target
    await relay.stop()
    return topic, N_EVENTS / elapsed


Payloads = list[tuple[bytes, bytes]]


async def send_each(producer: AIOKafkaProducer, topic: str, payloads: Payloads) -> None:
    """A `send` a message (the producer batches them), then every acknowledgement."""
    futures = [await producer.send(topic, value=value, key=key) for key, value in payloads]
    await asyncio.gather(*futures)


async def send_in_batches(producer: AIOKafkaProducer, topic: str, payloads: Payloads) -> None:
    """Record batches built here, a partition each (the default partitioner's choice, as the
    relay's), all sent before any acknowledgement is awaited."""
    partitions = sorted(await producer.partitions_for(topic))
    chosen = default_partitions([key for key, _ in payloads], partitions)
    batches = {partition: producer.create_batch() for partition in partitions}
    futures = []
    for (key, value), partition in zip(payloads, chosen, strict=True):
        while batches[partition].append(key=key, value=value, timestamp=None) is None:  # full
            batches[partition].close()
            futures.append(await producer.send_batch(batches[partition], topic, partition=partition))
            batches[partition] = producer.create_batch()
    for partition, batch in batches.items():
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*futures)


async def raw_producer_rate(
    payloads: Payloads,
    send: Callable[[AIOKafkaProducer, str, Payloads], Awaitable[None]] = send_each,
    cpu: CpuUse | None = None,
) -> float:
    """Messages/s of a raw producer sending the payloads to a fresh topic: a `send` each (the
    relay target's baseline), or `send_in_batches` (what sending alone can do here, with no store
    to read and nothing to translate); `cpu` is told what this process and the broker spent."""
    topic = f"bench{uuid.uuid4().hex[:8]}.raw"
    await ensure_topics(KAFKA, [topic], 3)
    producer = make_producer(KAFKA, "bench-raw")
    await producer.start()
    with cpu.measuring() if cpu is not None else contextlib.nullcontext():
        started = time.perf_counter()
        await send(producer, topic, payloads)
        elapsed = time.perf_counter() - started
    await producer.stop()
    return len(payloads) / elapsed


def cpu_line(relay: CpuUse, raw: CpuUse, events: int) -> str:
    """What the relay and the per-message baseline cost the machine, all processes counted: on
    two cores the broker's CPU is taken from the same cores as the relay's."""
    here, readers, broker = relay.per_thousand(events)
    raw_here, _, raw_broker = raw.per_thousand(events)
    cores = os.cpu_count() or 1
    return (
        f"  CPU per 1,000 events: relay {here:.1f} ms + its readers {readers:.1f} + broker "
        f"{broker:.1f} = {here + readers + broker:.1f} ms; raw producer {raw_here:.1f} + broker "
        f"{raw_broker:.1f} = {raw_here + raw_broker:.1f} ms (over {cores} cores at best "
        f"{(here + readers + broker) / cores:.1f} and {(raw_here + raw_broker) / cores:.1f} ms of time)"
    )


def tally_app(path: Path) -> TallyApplication:
    return TallyApplication({**sqlite_env(path), **cache_env(AGGREGATE_CACHE_SIZE)})  # as a service runs


async def applied_rate(tally: TallyApplication, topic: str, expected: int) -> float:
    """Events/s of a consumer reading the topic to its end from where the store says, as a
    rebuild does (no group to join); it must apply `expected` events."""
    consumer = tally_consumer(tally, topic=topic, bootstrap=KAFKA, group="bench-tally")
    started = time.perf_counter()
    await consumer.run_to_end()
    elapsed = time.perf_counter() - started
    applied = consumer.metrics.consumed.labels(consumer.group_id, topic, "applied")._value.get()
    if applied != expected:  # a consumer that missed events measures nothing
        raise RuntimeError(f"applied {applied} of {expected} events")
    return expected / elapsed


async def rebuild_rate(topic: str, tmp: Path, run: int) -> float:
    tally = tally_app(tmp / f"t{run}.db")
    try:
        return await applied_rate(tally, topic, N_EVENTS)
    finally:
        tally.close()


async def split_rebuild_rate(topic: str, tmp: Path, run: int) -> float:
    """Events/s of the same rebuild, its partitions shared among processes (as ops' rebuild of the
    visits service runs a large one: a process a partition), the processes' start included."""
    tally = tally_app(tmp / f"s{run}.db")
    make_consumer = functools.partial(tally_consumer, topic=topic, bootstrap=KAFKA, group="bench-tally")
    parent = make_consumer(tally)
    make_tally = functools.partial(TallyApplication, dict(tally.env))
    try:
        started = time.perf_counter()
        async with ReplayProcesses(make_tally, REPLAY_PROCESSES, split_from=0) as replay:
            split = await replay.run_to_end(parent, make_consumer)
        elapsed = time.perf_counter() - started
    finally:
        tally.close()
    applied = parent.outcomes[(topic, "applied")]
    if applied != N_EVENTS or split.processes != REPLAY_PROCESSES:
        raise RuntimeError(f"applied {applied} of {N_EVENTS} events in {split.processes} processes")
    return N_EVENTS / elapsed


async def catch_up_rate(tmp: Path, run: int) -> float:
    """A consumer started again after half of every probe's assignments: the other half go to
    tallies and inbox cursors that its store holds and that it has not cached."""
    app = ProbeApplication(sqlite_env(tmp / f"c{run}.db"))
    meta = Meta("bench", "system", datetime.now(UTC))
    probes = [app.create("p", meta) for _ in range(N_EVENTS // PER_AGGREGATE)]
    half = PER_AGGREGATE // 2
    topic = f"bench{uuid.uuid4().hex[:8]}.leads"
    relay = probe_relay(app, topic)
    await relay.start_producer()
    position = 0
    rates = []
    for round_ in range(2):
        for probe_id in probes:
            app.assign_many(probe_id, [f"rep-{round_}-{n}" for n in range(half)], meta)
        position = await relay.pump(position)
        tally = tally_app(tmp / f"ct{run}.db")  # a fresh process: nothing cached
        try:
            rates.append(await applied_rate(tally, topic, len(probes) * half))
        finally:
            tally.close()
    await relay.stop()
    app.close()
    return rates[1]


async def raw_consumer_rate(topics: list[str], count: int) -> float:
    """Messages/s of a plain consumer reading `count` messages off the topics and decoding each."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=KAFKA,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    started = time.perf_counter()
    await consumer.start()
    seen = 0
    while seen < count:
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        for records in batches.values():
            for record in records:
                decode(record.value)
                seen += 1
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return count / elapsed


def against_raw_consumer(measure: str, ours: float, raw: float) -> str:
    """A consumer's events/s against the raw consumer's on the same messages, with the target."""
    return Result(measure, "events/s", ours, raw, "raw aiokafka consumer + decode", 0.5).line()


async def main() -> None:
    header(f"Kafka paths: {N_EVENTS} LeadAssigned events")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        app = filled_store(tmp / "store.db")
        outgoing, _ = probe_relay(app, "x", batch_size=N_EVENTS * 2).read_batch(0)
        payloads = [(o.key, o.value) for o in outgoing]

        relay_cpu, raw_cpu = CpuUse(), CpuUse()

        async def relayed(_: int) -> float:
            return (await publish_all(app, "process", relay_cpu))[1]

        async def relayed_in_thread(_: int) -> float:
            return (await publish_all(app))[1]

        ours, in_thread, raw, raw_batches = map(
            statistics.median,
            await in_turns(
                relayed,
                relayed_in_thread,
                lambda _: raw_producer_rate(payloads, cpu=raw_cpu),
                lambda _: raw_producer_rate(payloads, send_in_batches),
            ),
        )
        print(Result("outbox relay to Kafka", "events/s", ours, raw, "raw aiokafka producer", 0.7).line())
        print(
            Result(
                "  the same, reading in a worker thread", "events/s", in_thread, raw, "raw aiokafka producer"
            ).line()
        )
        print(
            Result(
                "  the same, against record batches sent raw",
                "events/s",
                ours,
                raw_batches,
                "raw producer, record batches",
            ).line()
        )
        print(cpu_line(relay_cpu, raw_cpu, len(payloads)))

        topic, _ = await publish_all(app)
        rebuilt, raw, caught_up, split = map(
            statistics.median,
            await in_turns(
                lambda i: rebuild_rate(topic, tmp, i),
                lambda _: raw_consumer_rate([topic], N_EVENTS),
                lambda i: catch_up_rate(tmp, i),
                lambda i: split_rebuild_rate(topic, tmp, i),
            ),
        )
        print(against_raw_consumer("consumer rebuild from Kafka (apply+track)", rebuilt, raw))
        print(
            Result(
                f"  the same, in {REPLAY_PROCESSES} processes (a partition each)",
                "events/s",
                split,
                raw,
                "raw aiokafka consumer + decode",
            ).line()
        )
        print(
            against_raw_consumer("consumer catching up, its aggregates stored, none cached", caught_up, raw)
        )


if __name__ == "__main__":
    asyncio.run(main())
