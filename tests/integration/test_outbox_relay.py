"""The outbox relay and the exactly-once consumer against the real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sqlite3
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.partitioner import DefaultPartitioner

from shared.consumer import ExactlyOnceConsumer
from shared.domain import Meta
from shared.events.catalog import decode, event_id_for
from shared.kafka import VECTOR_MIN_KEYS
from shared.metrics import Metrics
from shared.relay import HANDOVER_EVENTS, OutboxRelay, ReaderProcesses, ReaderSpec, read_outgoing
from shared.replay_processes import ReplayFailed, ReplayProcesses, shareable_store, shares
from tests.conftest import REPO, Broker
from tests.support.kafka_helpers import eventually, read_topic
from tests.support.probe import (
    REFUSED_REP,
    ProbeApplication,
    TallyApplication,
    tally_consumer,
    translate,
)
from tests.support.stores import sqlite_env


def meta() -> Meta:
    return Meta(
        actor_id="ops-1", actor_role="ops", at=datetime(2026, 3, 2, 9, tzinfo=UTC), correlation_id="c-1"
    )


def relay_for(
    app: ProbeApplication, topic: str, bootstrap: str, batch_size: int = 7, **options: Any
) -> OutboxRelay:
    return OutboxRelay(
        app,
        translate,
        topic=topic,
        bootstrap_servers=bootstrap,
        partitions=3,
        metrics=Metrics("probe"),
        batch_size=batch_size,
        **{"idle_seconds": 0.05, **options},
    )


def consumer_for(app: TallyApplication, topic: str, bootstrap: str, group: str) -> ExactlyOnceConsumer:
    return tally_consumer(app, topic=topic, bootstrap=bootstrap, group=group)


def stored_assignments(app: ProbeApplication, probe_ids: list) -> int:
    return sum(app.repository.get(pid).assignments for pid in probe_ids)


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    """The relay's loop running in a task, until the block ends."""
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)


async def run_until(relay: OutboxRelay, app: ProbeApplication) -> None:
    """Run the relay until everything stored is published, then stop it."""
    async with running(relay):
        target = app.recorder.max_notification_id() or 0
        await eventually(lambda: relay.published_position() >= target, what="relay caught up")


def three_probes_assigned_five_times(app: ProbeApplication) -> list[UUID]:
    """18 stored events, 15 of them public (each probe's creation is not)."""
    probe_ids = [app.create(f"p{i}", meta()) for i in range(3)]
    for pid in probe_ids:
        app.assign_many(pid, [f"rep-{n}" for n in range(5)], meta())
    return probe_ids


async def test_stored_events_reach_the_topic_in_order_keyed_by_aggregate(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    probe_ids = three_probes_assigned_five_times(app)
    topic = f"{topic_prefix}.leads"

    await run_until(relay_for(app, topic, kafka_bootstrap), app)

    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= 15)
    assert len(records) == 15
    versions_by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        envelope, event = decode(record.value)
        assert record.key == envelope.aggregate_id.encode()
        assert envelope.event_type == "LeadAssigned" and event.lead_id == envelope.aggregate_id
        assert envelope.event_id == event_id_for(envelope.aggregate_id, envelope.aggregate_version)
        assert envelope.actor_id == "ops-1" and envelope.correlation_id == "c-1"
        versions_by_key[record.key].append(envelope.aggregate_version)
        # where any producer with the default partitioner would have put it (the relay caches it)
        assert record.partition == DefaultPartitioner()(record.key, [0, 1, 2], [0, 1, 2])
    assert sorted(versions_by_key) == sorted(str(p).encode() for p in probe_ids)
    for versions in versions_by_key.values():
        assert versions == [2, 3, 4, 5, 6]  # version 1 (created) has no public form


async def test_a_batch_of_many_aggregates_lands_where_the_default_partitioner_puts_each_key(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    """More aggregates in one batch than are hashed one by one: their keys are hashed together
    (shared.kafka.default_partitions), and each event still lands where any producer would put it."""
    app = ProbeApplication(store_env)
    probe_ids = [app.create(f"p{i}", meta()) for i in range(4 * VECTOR_MIN_KEYS)]
    for pid in probe_ids:
        app.assign_many(pid, ["rep-1"], meta())
    topic = f"{topic_prefix}.leads"

    await run_until(relay_for(app, topic, kafka_bootstrap, batch_size=500), app)

    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= len(probe_ids))
    assert sorted(r.key for r in records) == sorted(str(p).encode() for p in probe_ids)
    for record in records:
        assert record.partition == DefaultPartitioner()(record.key, [0, 1, 2], [0, 1, 2])
    assert {r.partition for r in records} == {0, 1, 2}


async def test_a_save_the_relays_last_read_just_missed_is_sent_without_waiting_to_fall_idle(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "s.db"))
    relay = relay_for(app, f"{topic_prefix}.leads", kafka_bootstrap, idle_seconds=60)
    app.assign_many(app.create("p1", meta()), ["rep-1"], meta())
    loop = asyncio.get_running_loop()
    read_batch = relay.read_batch
    armed = threading.Event()  # read in the relay's reading thread
    missed: list[UUID] = []

    def read_then_save(after: int) -> tuple[list[Any], int]:
        batch = read_batch(after)
        if armed.is_set() and not missed:  # a save lands just after this read
            missed.append(app.create("p2", meta()))
            app.assign_many(missed[0], ["rep-2"], meta())
            loop.call_soon_threadsafe(relay.wake)  # as a service's save does, before the read returns
        return batch

    relay.read_batch = read_then_save  # type: ignore[method-assign]
    async with running(relay):
        await eventually(lambda: relay.published >= 2, what="p1 sent")
        armed.set()
        relay.wake()  # nothing new: the round's one read finds nothing, and p2 is saved just after it
        await eventually(
            lambda: bool(missed) and relay.published >= (app.recorder.max_notification_id() or 0),
            timeout=10,
            what="p2 sent without waiting 60 s to fall idle",
        )


class PacedRelay(OutboxRelay):
    """Notes the pauses it would take instead of taking them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paused: list[float] = []

    async def _pause(self, seconds: float) -> None:
        self.paused.append(seconds)


async def test_a_trickles_rounds_start_a_linger_apart_and_a_round_after_a_quiet_spell_at_once(
    tmp_path: Path,
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "s.db"))
    now = [1000.0]
    relay = PacedRelay(
        app,
        translate,
        topic="probe.leads",
        bootstrap_servers="unused:9092",  # rounds read the store; nothing here is sent
        partitions=3,
        metrics=Metrics("probe"),
        linger_seconds=0.005,
        clock=lambda: now[0],
    )
    probe_id = app.create("p", meta())
    app.assign_many(probe_id, ["rep-1"], meta())
    outgoing, last = await relay._round(0)
    assert relay.paused == [] and len(outgoing) == 1  # the first round reads at once

    now[0] += 0.002
    app.assign_many(probe_id, ["rep-2"], meta())
    relay.wake()
    outgoing, last = await relay._round(last)
    assert relay.paused == [pytest.approx(0.003)] and len(outgoing) == 1  # the 3 ms left of the linger
    assert not relay._wake.is_set()  # cleared as that round read

    now[0] += 0.010
    app.assign_many(probe_id, ["rep-3"], meta())
    outgoing, _ = await relay._round(last)
    assert relay.paused == [pytest.approx(0.003)] and len(outgoing) == 1  # quiet for 10 ms: at once
    app.close()


async def test_a_relay_that_dies_mid_batch_resends_and_the_consumer_counts_each_event_once(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str], tmp_path: Path
) -> None:
    app = ProbeApplication(store_env)
    probe_ids = [app.create(f"p{i}", meta()) for i in range(4)]
    for pid in probe_ids:
        app.assign_many(pid, [f"rep-{n}" for n in range(6)], meta())
    topic = f"{topic_prefix}.leads"

    # The first relay publishes a batch and dies before it can record how far it got.
    doomed = relay_for(app, topic, kafka_bootstrap, batch_size=10)
    await doomed.start_producer()
    outgoing, _ = doomed.read_batch(doomed.published_position())
    await doomed.publish(outgoing)
    await doomed.stop()
    assert doomed.published_position() == 0

    await run_until(relay_for(app, topic, kafka_bootstrap, batch_size=10), app)

    published = len(outgoing)
    total = stored_assignments(app, probe_ids)
    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= total + published)
    assert published > 0 and len(records) == total + published  # duplicates really are on the topic

    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    consumer = consumer_for(tally, topic, kafka_bootstrap, f"{topic_prefix}.tally")
    last_offsets = {r.partition: r.offset for r in records}  # records are in offset order per partition
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(
            lambda: all(
                tally.processed_offset(consumer.group_id, topic, p) == o for p, o in last_offsets.items()
            ),
            what="every record applied or recognised",
        )
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 20)
    assert {str(p): tally.count(str(p)) for p in probe_ids} == {str(p): 6 for p in probe_ids}
    outcomes = {
        o: consumer.metrics.consumed.labels(consumer.group_id, topic, o)._value.get()
        for o in ("applied", "duplicate")
    }
    # Each stored event applied once; each re-published one recognised (a redelivery after a
    # group rebalance under load may add store-level duplicates, never applications).
    assert outcomes["applied"] == total
    assert outcomes["duplicate"] >= published


@pytest.mark.parametrize("how", ["in-its-group", "a-bounded-replay"])
async def test_a_consumer_with_no_position_stored_starts_at_the_first_message_the_topic_still_holds(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, how: str
) -> None:
    """Retention deletes a topic's oldest messages: a consumer whose store holds no position for a
    partition reads it from the earliest message still there, not from offset 0, and applies
    every one of them, as a service joining its group and as ops' bounded replay."""
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    probe_ids = three_probes_assigned_five_times(app)
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= 15)
    firsts: dict[int, int] = {}
    for record in records:
        firsts.setdefault(record.partition, record.offset)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # each partition's first message gone, as retention would take it
        await admin.delete_records(
            {TopicPartition(topic, p): RecordsToDelete(offset + 1) for p, offset in firsts.items()}
        )
    finally:
        await admin.close()
    kept = [r for r in records if r.offset != firsts[r.partition]]

    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    consumer = consumer_for(tally, topic, kafka_bootstrap, f"{topic_prefix}.tally")
    if how == "a-bounded-replay":
        await consumer.run_to_end()
    else:
        task = asyncio.create_task(consumer.run())
        try:
            await eventually(lambda: consumer.outcomes[(topic, "applied")] >= len(kept), what="applied")
        finally:
            await consumer.stop()
            await asyncio.wait_for(task, 20)
    # In its group a rebalance while a batch is applied (the group's first generations, as the
    # topic's metadata arrives) seeks back to the position stored before that batch: what comes
    # again is recognised, never applied twice. A bounded replay has no group: nothing comes again.
    redelivered = consumer.outcomes[(topic, "redelivered")] if how == "in-its-group" else 0
    assert consumer.outcomes == Counter({(topic, "applied"): len(kept), (topic, "redelivered"): redelivered})
    counted = {str(pid): tally.count(str(pid)) for pid in probe_ids}
    assert counted == {str(pid): sum(1 for r in kept if r.key == str(pid).encode()) for pid in probe_ids}
    assert sum(counted.values()) == len(kept) == 15 - len(firsts)
    tally.close()
    app.close()


def reader_for(store_env: dict[str, str], batch_size: int = 7, processes: int = 2) -> ReaderProcesses:
    return ReaderProcesses(ReaderSpec(ProbeApplication, (store_env,), translate, batch_size), processes)


def alive(pid: int) -> bool:
    """Running (a zombie, ended and not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


SERVICE_WITH_A_READER = """
import asyncio, sys, time
from shared.relay import ReaderProcesses, ReaderSpec
from tests.support.probe import ProbeApplication, translate

async def main() -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": sys.argv[1]}
    reader = ReaderProcesses(ReaderSpec(ProbeApplication, (env,), translate, 10), 2)
    print(*await reader.start(), flush=True)
    time.sleep(120)

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_a_reader_whose_service_is_killed_ends_too(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(SERVICE_WITH_A_READER)
    service = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(tmp_path / "store.db"),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert service.stdout is not None
        readers = [int(pid) for pid in (await asyncio.wait_for(service.stdout.readline(), 60)).split()]
        assert len(set(readers)) == 2 and all(map(alive, readers))
    finally:
        service.kill()  # -9: no shutdown, the readers are not told
        await service.wait()
    await eventually(lambda: not any(map(alive, readers)), timeout=10, what="the orphaned readers ended")


async def test_saves_handed_over_in_order_are_sent_as_stored_and_the_rest_is_read_from_the_store(
    tmp_path: Path,
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "s.db"))
    relay = relay_for(app, "probe.leads", "unused:9092")  # reads only; batches of 7
    store_reads: list[int] = []
    read_batch = relay.read_batch

    def counted(after: int) -> tuple[list[Any], int]:
        store_reads.append(after)
        return read_batch(after)

    relay.read_batch = counted  # type: ignore[method-assign]
    saves: list[list[Any]] = []
    app.on_recorded.append(saves.append)  # as a service hands each save's events over

    probe_id = app.create("p", meta())  # id 1
    app.assign_many(probe_id, ["rep-1"], meta())  # id 2
    relay.hand_over(saves[1])  # the creation's save has not handed its event over: a gap
    outgoing, last = await relay._read(0)
    assert store_reads == [0] and last == 2 and len(outgoing) == 1

    app.assign_many(probe_id, ["rep-2"], meta())  # id 3
    relay.hand_over(saves[2])
    outgoing, last = await relay._read(2)
    assert store_reads == [0] and last == 3  # as stored, not read back
    assert (outgoing, last) == read_batch(2)  # the same bytes a read of the store gives

    app.assign_many(probe_id, [f"rep-{n}" for n in range(10)], meta())  # ids 4..13, in one save
    relay.hand_over(saves[3])
    first, last = await relay._read(3)
    rest, last = await relay._read(last)
    assert store_reads == [0] and [o.notification_id for o in first + rest] == list(range(4, 14))
    assert (first, 10) == read_batch(3)  # a batch at most

    too_big = [f"bulk-{n}" for n in range(HANDOVER_EVENTS + 1)]
    app.assign_many(probe_id, too_big, meta())  # read back from the store (in bulk, with a reader)
    relay.hand_over(saves[4])
    outgoing, last = await relay._read(13)
    assert store_reads == [0, 13] and last == 20
    assert relay.metrics.relay_handed_over.labels("probe.leads")._value.get() == 11
    app.close()


async def test_a_relay_reading_in_a_process_of_its_own_sends_what_a_thread_would(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    probe_ids = three_probes_assigned_five_times(app)
    topic = f"{topic_prefix}.leads"
    relay = relay_for(app, topic, kafka_bootstrap, reader=reader_for(store_env))
    assert relay.reader is not None
    position, batches = 0, 0
    while True:  # batch by batch, the same bytes as the thread reads
        read = await relay.reader.read(position)
        assert read == relay.read_batch(position)
        if read[1] == position:
            break
        position, batches = read[1], batches + 1
    assert batches == 3  # 18 events, 7 a batch
    readers = await relay.reader.start()  # the ones already running
    assert len(set(readers)) == 2 and os.getpid() not in readers and all(map(alive, readers))

    await run_until(relay, app)  # and through the relay's own loop, to the topic

    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= 15)
    assert sorted((r.key, decode(r.value)[0].aggregate_version) for r in records) == sorted(
        (str(p).encode(), v) for p in probe_ids for v in range(2, 7)
    )
    await eventually(lambda: not any(map(alive, readers)), what="the reader processes ended")


class CountingReader(ReaderProcesses):
    """Reader processes that count the batches the relay asked them for."""

    reads = 0

    async def read(self, after: int) -> tuple[list[Any], int]:
        self.reads += 1
        return await super().read(after)


async def test_a_backlog_is_read_by_the_reader_process_and_a_trickle_in_a_thread(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    pid = app.create("p", meta())
    app.assign_many(pid, [f"rep-{n}" for n in range(17)], meta())  # 18 events: 7, 7 and 4
    reader = CountingReader(ReaderSpec(ProbeApplication, (store_env,), translate, 7))
    now = [1000.0]
    relay = relay_for(app, f"{topic_prefix}.leads", kafka_bootstrap, reader=reader, clock=lambda: now[0])
    async with running(relay):
        await eventually(lambda: relay.published == 18, what="the backlog published")
        # The first batch (full) in a thread, then 7 and 4: less than a batch, and nothing saved
        # since, so no read to find nothing.
        assert reader.reads == 2
        app.assign_many(pid, ["rep-soon"], meta())  # within a second of the full batch: still bulk
        relay.wake()
        await eventually(lambda: relay.published == 19, what="published in bulk")
        assert reader.reads == 3
        now[0] += relay.bulk_seconds
        for n in range(3):  # a request's worth at a time, from now on
            app.assign_many(pid, [f"rep-late-{n}"], meta())
            relay.wake()
            await eventually(lambda n=n: relay.published == 20 + n, what="the trickle published")
        assert reader.reads == 3


async def test_a_reader_process_that_dies_is_replaced_and_nothing_is_lost(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    pid = app.create("p", meta())
    app.assign_many(pid, [f"rep-{n}" for n in range(4)], meta())  # 5 events: batches of 2, 2, 1
    topic = f"{topic_prefix}.leads"
    reader = CountingReader(ReaderSpec(ProbeApplication, (store_env,), translate, 2))
    now = [1000.0]  # time stands still unless the test moves it
    relay = relay_for(app, topic, kafka_bootstrap, batch_size=2, reader=reader, clock=lambda: now[0])

    def backlog(count: int) -> None:
        app.assign_many(pid, [f"rep-{relay.published}-{n}" for n in range(count)], meta())
        relay.wake()

    async with running(relay):
        await eventually(lambda: relay.published == 5, what="the first events published")
        assert reader.reads == 2  # after the thread's first (full) batch: 2→4 and 4→5
        first = await reader.start()
        for process in first:
            os.kill(process, signal.SIGKILL)
        backlog(3)
        await eventually(lambda: relay.published == 8, what="published, read in a thread")
        assert reader.reads == 3 and relay.failure is None  # the read that found it dead
        now[0] += relay.reader_retry_seconds
        backlog(3)
        await eventually(lambda: relay.published == 11, timeout=30, what="published by a new reader")
        assert reader.reads > 3
        second = await reader.start()
        assert not set(second) & set(first) and all(map(alive, second))
    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= 10)
    assert {decode(r.value)[0].aggregate_version for r in records} == set(range(2, 12))


async def test_a_reader_process_that_cannot_start_leaves_the_relay_reading_in_a_thread(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    pid = app.create("p", meta())
    app.assign_many(pid, [f"rep-{n}" for n in range(9)], meta())  # 10 events, batches of 2
    broken = {**store_env, "PERSISTENCE_MODULE": "no.such.module"}  # the reader's store: none
    reader = CountingReader(ReaderSpec(ProbeApplication, (broken,), translate, 2))
    relay = relay_for(
        app, f"{topic_prefix}.leads", kafka_bootstrap, batch_size=2, reader=reader, clock=lambda: 1000.0
    )
    async with running(relay):
        await eventually(lambda: relay.published == 10, what="published all the same")
        assert relay.failure is None and reader.reads == 0  # not tried again within 10 s


class SubmittingReader(ReaderProcesses):
    """Reader processes that note each read they are given: from where, and in which process."""

    def __init__(self, spec: ReaderSpec, processes: int) -> None:
        super().__init__(spec, processes)
        self.submitted: list[tuple[int, int]] = []

    def _submit(self, after: int) -> asyncio.Future[tuple[list[Any], int]]:
        self.submitted.append((after, self._turn))
        return super()._submit(after)


async def test_readers_read_the_next_batches_ahead_side_by_side_and_never_trust_an_empty_one(
    store_env: dict[str, str],
) -> None:
    """The batches after the one asked for are read ahead, taking turns in the processes; one read
    ahead that came back empty is read again when it is asked for (events may have come since)."""
    app = ProbeApplication(store_env)
    pid = app.create("p", meta())
    app.assign_many(pid, [f"rep-{n}" for n in range(13)], meta())  # 14 events: batches of 7 and 7
    reader = SubmittingReader(ReaderSpec(ProbeApplication, (store_env,), translate, 7), 2)
    relay = relay_for(app, "unused", "unused")
    try:
        first = await reader.read(0)
        assert first == relay.read_batch(0) and first[1] == 7
        assert reader.submitted == [(0, 0), (7, 1), (14, 0)]  # this batch and the two after it
        second = await reader.read(7)
        assert second == relay.read_batch(7) and second[1] == 14
        assert reader.submitted[3:] == [(21, 1)]  # one more ahead, in the next process's turn
        assert await reader._ahead[0][1] == ([], 14)  # read ahead: nothing after 14 yet

        app.assign_many(pid, ["rep-late"], meta())  # id 15
        third = await reader.read(14)
        assert third == relay.read_batch(14) and third[1] == 15 and len(third[0]) == 1
        assert reader.submitted[4:] == [(28, 0), (14, 1)]  # read again; short: no more ahead
        assert not reader._ahead
        assert await reader.read(0) == first  # from elsewhere (a relay starting over): read again
    finally:
        await reader.close()
        app.close()


def test_a_batch_is_a_range_of_ids_so_the_next_can_be_read_before_it(tmp_path: Path) -> None:
    """With ids missing (an insert rolled back on PostgreSQL takes its ids for good), a batch
    stops at its range's end, and says how far that is known to be read."""
    path = tmp_path / "s.db"
    app = ProbeApplication(sqlite_env(path))
    pid = app.create("p", meta())
    app.assign_many(pid, [f"rep-{n}" for n in range(11)], meta())  # ids 1..12
    with sqlite3.connect(path) as db:
        db.execute(f"DELETE FROM {app.recorder.events_table_name} WHERE rowid IN (3, 4, 9, 10)")

    def ids(after: int, batch_size: int) -> tuple[list[int], int]:
        outgoing, last = read_outgoing(app, translate, after, batch_size)
        return [o.notification_id for o in outgoing], last

    assert ids(0, 5) == ([2, 5], 5)  # the creation (id 1) is not public
    assert ids(5, 5) == ([6, 7, 8], 10)  # up to its end, though 9 and 10 are missing
    assert ids(10, 5) == ([11, 12], 12)  # the store's end
    assert ids(12, 5) == ([], 12)
    app.close()


def test_a_reader_process_needs_what_it_is_made_from_to_pickle() -> None:
    def local(settings: object, env: dict[str, str]) -> ProbeApplication:
        return ProbeApplication(env)

    with pytest.raises(ValueError, match="picklable"):
        ReaderProcesses(ReaderSpec(local, ({},), translate, 10))


async def test_a_busy_relay_records_its_position_now_and_then_and_all_of_it_when_it_stops(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    pid = app.create("p", meta())
    app.assign_many(pid, [f"rep-{n}" for n in range(20)], meta())
    now = [1000.0]
    relay = relay_for(
        app,
        f"{topic_prefix}.leads",
        kafka_bootstrap,
        batch_size=5,
        idle_seconds=30,  # never idle during this test
        record_seconds=10,
        clock=lambda: now[0],
    )
    stored = app.recorder.max_notification_id() or 0
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay.published == stored, what="all published")
        assert relay.published_position() == 5  # the first batch's commit; the rest would wait 10 s
        now[0] += 10
        app.assign_many(pid, ["rep-late"], meta())
        relay.wake()
        await eventually(lambda: relay.published_position() == stored + 1, what="recorded after 10 s")
        app.assign_many(pid, ["rep-last"], meta())
        relay.wake()
        await eventually(lambda: relay.published == stored + 2, what="the last one published")
        assert relay.published_position() == stored + 1  # within 10 s of the last record
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)
    assert relay.published_position() == stored + 2  # stopping records what was acknowledged
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}.leads", until=lambda r: len(r) >= 22)
    assert len(records) == 22  # nothing sent twice: each batch's position was known in memory


async def test_a_consumer_waiting_for_messages_stops_at_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    consumer = consumer_for(tally, f"{topic_prefix}.quiet", kafka_bootstrap, f"{topic_prefix}.tally")
    consumer.poll_seconds = 120  # a poll that would outlast the test
    task = asyncio.create_task(consumer.run())
    await eventually(
        lambda: consumer._consumer is not None and bool(consumer._consumer.assignment()), what="polling"
    )
    await consumer.stop()
    await asyncio.wait_for(task, 20)  # done well before its poll would have ended


async def test_a_bounded_replay_applies_every_partition_to_its_end_and_resumes_from_the_store(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    probe_ids = [app.create(f"p{n}", meta()) for n in range(6)]
    for n, pid in enumerate(probe_ids):
        app.assign_many(pid, [f"rep-{k}" for k in range(n + 1)], meta())
    topic = f"{topic_prefix}.leads"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not json at all", key=str(probe_ids[0]).encode())
    finally:
        await producer.stop()
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    group = f"{topic_prefix}.replay"

    ends = await asyncio.wait_for(consumer_for(tally, topic, kafka_bootstrap, group).run_to_end(), 60)
    assert sum(ends.values()) == 21 + 1  # every assignment, and the poison message
    assert {tally.count(str(pid)) for pid in probe_ids} == set(range(1, 7))
    for tp, end in ends.items():
        assert tally.processed_offset(group, topic, tp.partition) == (end - 1 if end else None)
    parked = await read_topic(kafka_bootstrap, f"{topic}.dlq", until=lambda r: len(r) >= 1)
    assert [r.value for r in parked] == [b"not json at all"]

    # Published after the first replay: a second one applies those alone, from the store.
    app.assign_many(probe_ids[0], ["rep-late-1", "rep-late-2"], meta())
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    again = consumer_for(tally, topic, kafka_bootstrap, group)
    later = await asyncio.wait_for(again.run_to_end(), 60)
    assert sum(later.values()) == sum(ends.values()) + 2
    assert tally.count(str(probe_ids[0])) == 3
    applied = again.metrics.consumed.labels(group, topic, "applied")._value.get()
    assert applied == 2


async def test_a_replay_split_across_processes_applies_each_partition_once_and_resumes_from_the_store(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str], tmp_path: Path
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    probe_ids = [app.create(f"p{n}", meta()) for n in range(9)]
    for n, pid in enumerate(probe_ids):
        app.assign_many(pid, [f"rep-{k}" for k in range(n + 1)], meta())
    app.assign_many(probe_ids[4], [REFUSED_REP], meta())  # the tally's domain refuses it: parked
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    tally = TallyApplication(store_env)
    group = f"{topic_prefix}.replay"
    make_consumer = functools.partial(tally_consumer, topic=topic, bootstrap=kafka_bootstrap, group=group)
    make_tally = functools.partial(TallyApplication, dict(tally.env))

    async with ReplayProcesses(make_tally, 3, split_from=0) as replay:
        parent = make_consumer(tally)
        split = await asyncio.wait_for(replay.run_to_end(parent, make_consumer), 90)
        assert split.processes == 3
        assert sum(split.ends.values()) == 45 + 1
        assert [tally.count(str(pid)) for pid in probe_ids] == list(range(1, 10))  # each once
        for tp, end in split.ends.items():
            assert tally.processed_offset(group, topic, tp.partition) == (end - 1 if end else None)
        assert parent.outcomes == {(topic, "applied"): 45, (topic, "dead_lettered"): 1}
        assert parent.metrics.consumed.labels(group, topic, "applied")._value.get() == 45
        parked = await read_topic(kafka_bootstrap, f"{topic}.dlq", until=lambda r: len(r) >= 1)
        assert [decode(r.value)[1].rep_id for r in parked] == [REFUSED_REP]

        # Published after the first replay: a second one, by the same processes, applies those
        # alone, from the store.
        app.assign_many(probe_ids[0], ["rep-late-1", "rep-late-2"], meta())
        await run_until(relay_for(app, topic, kafka_bootstrap), app)
        again = make_consumer(tally)
        assert (await asyncio.wait_for(replay.run_to_end(again, make_consumer), 90)).processes == 3
        assert again.outcomes == {(topic, "applied"): 2}
        assert tally.count(str(probe_ids[0])) == 3


@pytest.mark.parametrize(("split_from", "split"), [(16, 1), (15, 3)], ids=["below", "at"])
async def test_a_replay_is_split_only_from_so_many_messages_left_to_apply(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, split_from: int, split: int
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    probe_ids = three_probes_assigned_five_times(app)  # 15 messages
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    group = f"{topic_prefix}.replay"
    make_consumer = functools.partial(tally_consumer, topic=topic, bootstrap=kafka_bootstrap, group=group)
    make_tally = functools.partial(TallyApplication, dict(tally.env))
    async with ReplayProcesses(make_tally, 3, split_from=split_from) as replay:
        first = await asyncio.wait_for(replay.run_to_end(make_consumer(tally), make_consumer), 60)
        assert first.processes == split and len(replay._children) == (split if split > 1 else 0)
    assert [tally.count(str(pid)) for pid in probe_ids] == [5, 5, 5]

    # Nothing left to apply: even from one message on, a new replay starts no process.
    async with ReplayProcesses(make_tally, 3, split_from=1) as replay:
        again = make_consumer(tally)
        assert (await asyncio.wait_for(replay.run_to_end(again, make_consumer), 60)).processes == 1
        assert replay._children == [] and again.outcomes == {}


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"bug": "a handler's bug"}, "a handler's bug"),
        ({"dies": True}, r"ended without a word \(exit code 3\)"),
    ],
    ids=["a-handler-bug", "the-process-dies"],
)
async def test_a_process_of_a_split_replay_that_fails_or_dies_fails_the_replay_and_says_why(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, fault: dict[str, Any], says: str
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    three_probes_assigned_five_times(app)
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    faulty = functools.partial(
        tally_consumer, topic=topic, bootstrap=kafka_bootstrap, group=f"{topic_prefix}.replay", **fault
    )
    make_tally = functools.partial(TallyApplication, dict(tally.env))
    with pytest.raises(ReplayFailed, match=says):
        async with ReplayProcesses(make_tally, 3, split_from=0) as replay:
            started = replay._children  # the processes it starts, as it keeps them
            await asyncio.wait_for(replay.run_to_end(faulty(tally), faulty), 90)
    assert len(started) == 3 and not any(process.is_alive() for process, _ in started)  # none left
    assert tally.recorder.max_notification_id() is None  # nothing applied, nothing half-written


def test_partitions_are_dealt_whole_to_at_most_as_many_processes_as_there_are_partitions() -> None:
    ends = {TopicPartition("t", p): 10 * p for p in range(5)}
    assert shares(ends, 2) == [
        {TopicPartition("t", 0): 0, TopicPartition("t", 2): 20, TopicPartition("t", 4): 40},
        {TopicPartition("t", 1): 10, TopicPartition("t", 3): 30},
    ]
    assert shares(ends, 9) == [{tp: end} for tp, end in ends.items()]
    with pytest.raises(ValueError, match="at least one process"):
        shares(ends, 0)


def test_only_a_store_another_process_can_open_is_shared() -> None:
    assert shareable_store(sqlite_env(Path("/tmp/x.sqlite")))
    assert shareable_store({"PERSISTENCE_MODULE": "eventsourcing.postgres"})
    assert not shareable_store({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    assert not shareable_store(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": "file:x?mode=memory&cache=shared"}
    )
    assert not shareable_store({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert not shareable_store({})


async def test_the_same_message_delivered_twice_changes_nothing(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str], tmp_path: Path
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    pid = app.create("p", meta())
    app.assign_many(pid, ["rep-1", "rep-2"], meta())
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= 2)

    tally = TallyApplication(store_env)
    consumer = consumer_for(tally, topic, kafka_bootstrap, "g")
    first = records[0]
    assert consumer.apply_batch(topic, first.partition, [first]).outcomes == ["applied"]
    events_after_first = tally.recorder.max_notification_id()
    assert consumer.apply_batch(topic, first.partition, [first]).outcomes == ["redelivered"]
    # A consumer that knows nothing in memory (a restart) is stopped by the store itself.
    restarted = consumer_for(tally, topic, kafka_bootstrap, "g")
    assert restarted.apply_batch(topic, first.partition, [first]).outcomes == ["duplicate"]
    assert tally.recorder.max_notification_id() == events_after_first
    assert tally.count(str(pid)) == 1
    assert tally.processed_offset("g", topic, first.partition) == first.offset


async def test_a_poison_message_is_parked_in_the_dead_letter_topic_and_the_consumer_goes_on(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    pid = app.create("p", meta())
    app.assign_many(pid, ["rep-1"], meta())
    topic = f"{topic_prefix}.leads"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    newer = orjson.loads(b"{}")
    try:
        await producer.send_and_wait(topic, b"not json at all", key=str(pid).encode())
        newer = {
            "event_id": "00000000-0000-0000-0000-000000000001",
            "event_type": "LeadAssigned",
            "schema_version": 99,
            "aggregate_type": "Lead",
            "aggregate_id": str(pid),
            "aggregate_version": 1,
            "occurred_at": "2026-01-01T00:00:00Z",
            "recorded_at": "2026-01-01T00:00:00Z",
            "actor_id": "x",
            "actor_role": "ops",
            "payload": {},
        }
        await producer.send_and_wait(topic, orjson.dumps(newer), key=str(pid).encode())
    finally:
        await producer.stop()
    await run_until(relay_for(app, topic, kafka_bootstrap), app)

    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    consumer = consumer_for(tally, topic, kafka_bootstrap, f"{topic_prefix}.tally")
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: tally.count(str(pid)) == 1, what="good event applied after the poison")
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 20)
    parked = await read_topic(kafka_bootstrap, f"{topic}.dlq", until=lambda r: len(r) >= 2)
    assert [r.value for r in parked] == [b"not json at all", orjson.dumps(newer)]
    reasons = [dict(r.headers)["reason"].decode() for r in parked]
    assert "not an event envelope" in reasons[0]
    assert "LeadAssigned v99 cannot be read here" in reasons[1]


async def test_an_event_the_domain_refuses_mid_batch_is_parked_and_the_others_are_applied(
    kafka_bootstrap: str, topic_prefix: str, store_env: dict[str, str], tmp_path: Path
) -> None:
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    pid = app.create("p", meta())
    app.assign_many(pid, ["rep-1", REFUSED_REP, "rep-2", "rep-3"], meta())
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(app, topic, kafka_bootstrap), app)
    records = await read_topic(kafka_bootstrap, topic, until=lambda r: len(r) >= 4)

    tally = TallyApplication(store_env)
    consumer = consumer_for(tally, topic, kafka_bootstrap, "g")
    applied = consumer.apply_batch(topic, records[0].partition, records)
    assert applied.outcomes == ["applied"]  # stops before the refused one, having saved the first
    assert applied.parked is not None and applied.parked[0].offset == records[1].offset
    assert "rule_violated" in applied.parked[1]
    assert tally.count(str(pid)) == 1
    consumer.mark_parked(topic, records[1].partition, records[1].offset)
    rest = consumer.apply_batch(topic, records[0].partition, records[2:])
    assert rest.outcomes == ["applied", "applied"] and rest.parked is None
    assert tally.count(str(pid)) == 3
    assert tally.processed_offset("g", topic, records[0].partition) == records[-1].offset


@pytest.mark.slow
async def test_commands_succeed_while_the_broker_is_down_and_nothing_is_lost(
    fault_broker: Broker, topic_prefix: str, store_env: dict[str, str]
) -> None:
    app = ProbeApplication(store_env)
    pid = app.create("p", meta())
    topic = f"{topic_prefix}.leads"
    relay = relay_for(app, topic, fault_broker.bootstrap)
    task = asyncio.create_task(relay.run())
    try:
        app.assign_many(pid, ["rep-1", "rep-2"], meta())
        await eventually(lambda: relay.published_position() >= (app.recorder.max_notification_id() or 0))
        await asyncio.to_thread(fault_broker.run, "stop")
        try:
            # The store is the only write on the request path: commands go on succeeding.
            for n in range(3, 8):
                app.assign_many(pid, [f"rep-{n}"], meta())
            stored_while_down = app.recorder.max_notification_id() or 0
            assert relay.published_position() < stored_while_down
        finally:
            await asyncio.to_thread(fault_broker.run, "up")
        await eventually(
            lambda: relay.published_position() >= stored_while_down,
            timeout=90,
            what="relay caught up after the broker came back",
        )
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)
    records = await read_topic(fault_broker.bootstrap, topic, until=lambda r: len(r) >= 7)
    versions = sorted({decode(r.value)[0].aggregate_version for r in records})
    assert versions == list(range(2, 9))


@pytest.mark.slow
async def test_a_broker_killed_under_steady_load_loses_nothing_and_counts_nothing_twice(
    fault_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    """kill -9 of the broker while commands keep coming: every accepted command reaches the
    consumer exactly once in effect, once the broker is back."""
    app = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    tally = TallyApplication(sqlite_env(tmp_path / "t.db"))
    topic = f"{topic_prefix}.leads"
    relay = relay_for(app, topic, fault_broker.bootstrap)
    consumer = consumer_for(tally, topic, fault_broker.bootstrap, f"{topic_prefix}.tally")
    probes = [app.create(f"p{i}", meta()) for i in range(5)]
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    accepted = 0

    async def load(rounds: int) -> None:
        nonlocal accepted
        for n in range(rounds):
            for pid in probes:
                await asyncio.to_thread(app.assign_many, pid, [f"rep-{n}"], meta())
                accepted += 1

    try:
        await load(4)
        await eventually(lambda: tally.count(str(probes[0])) >= 1, what="flowing before the kill")
        await asyncio.to_thread(fault_broker.run, "kill")  # kill -9: no clean shutdown
        await load(4)  # accepted while the broker is dead
        await asyncio.to_thread(fault_broker.run, "up")
        await load(4)
        await eventually(
            lambda: sum(tally.count(str(p)) for p in probes) >= accepted,
            timeout=120,
            what="every accepted command counted",
        )
    finally:
        await relay.stop()
        await consumer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert accepted == 60
    assert {str(p): tally.count(str(p)) for p in probes} == {str(p): 12 for p in probes}
