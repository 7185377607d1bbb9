"""A service consuming another's topic at scale: the visits service reading the leads topic after
BENCH_CONSUME_LEADS leads were registered (in no order) and each assigned (in lead order, as a
daily run publishes them), through its exactly-once consumer into a fresh store, as it would
follow a day of the leads service; more leads than a service caches (5,000 aggregates), so most
of the timelines a batch reads come from the store. Against a raw aiokafka consumer decoding the
same messages; into SQLite, and into PostgreSQL (the production store); and the same replay split
among processes, a partition each, as ops' rebuild runs it. Needs the local broker and PostgreSQL.

    .venv/bin/python -m bench.bench_consume      (BENCH_CONSUME_LEADS)
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bench_kafka import KAFKA, against_raw_consumer, raw_consumer_rate
from bench.common import Result, fresh_database, header, in_turns
from services.visits.application import VisitsApplication
from shared.application import ServiceApplication
from shared.consumer import ExactlyOnceConsumer
from shared.events.base import IntegrationEvent
from shared.events.catalog import Published, envelope_bytes
from shared.events.leads import LeadAssigned, LeadRegistered
from shared.kafka import ensure_topics, make_producer
from shared.metrics import Metrics
from shared.replay_processes import ReplayProcesses
from shared.settings import AGGREGATE_CACHE_SIZE, REPLAY_PROCESSES, cache_env
from tests.support.stores import postgres_env, sqlite_env

N_LEADS = int(os.environ.get("BENCH_CONSUME_LEADS", "20000"))
REGISTERED = datetime(2026, 3, 1, 1, tzinfo=UTC)
ASSIGNED = REGISTERED + timedelta(days=1)


def envelope(event: IntegrationEvent, lead_id: str, version: int, at: datetime) -> bytes:
    """The message the leads service's relay would send for this event of the lead."""
    meta = {"at": at, "actor_id": "leads-scheduler", "actor_role": "system"}
    published = Published(event, aggregate_type="Lead")
    return envelope_bytes(
        published, aggregate_id=lead_id, aggregate_version=version, meta=meta, recorded_at=at
    )


async def stocked_topic() -> str:
    """A leads topic holding N_LEADS registrations, then their assignments in lead order."""
    topic = f"bench{uuid.uuid4().hex[:8]}.leads"
    await ensure_topics(KAFKA, [topic], 3)
    leads = [str(uuid.uuid4()) for _ in range(N_LEADS)]
    registered = [
        (
            lead,
            envelope(
                LeadRegistered(
                    lead_id=lead,
                    company_name=f"Company {lead}",
                    company_key=lead,
                    region="hangzhou",
                    address_line="1 West Lake Road",
                    city="Hangzhou",
                    customer_lat=30.2741,
                    customer_lon=120.1551,
                    score=50.0,
                    source="bench",
                    registered_at=REGISTERED,
                ),
                lead,
                1,
                REGISTERED,
            ),
        )
        for lead in leads
    ]
    assigned = [
        (
            lead,
            envelope(
                LeadAssigned(
                    lead_id=lead,
                    rep_id=f"rep-{n % 500}",
                    region="hangzhou",
                    assigned_at=ASSIGNED,
                    follow_up_deadline=ASSIGNED + timedelta(hours=48),
                ),
                lead,
                2,
                ASSIGNED,
            ),
        )
        for n, lead in enumerate(sorted(leads, key=lambda lead: uuid.UUID(lead).int))
    ]
    producer = make_producer(KAFKA, "bench-consume")
    await producer.start()
    try:
        messages = registered + assigned
        await asyncio.gather(*[await producer.send(topic, value=v, key=k.encode()) for k, v in messages])
    finally:
        await producer.stop()
    return topic


async def consumed_rate(
    topic: str, tmp: Path, run: int, *, postgres: bool = False, processes: int = 1
) -> float:
    """Events/s of the visits service's consumer reading the topic to its end into a fresh store
    (SQLite, or a fresh PostgreSQL database: the production store)."""
    if postgres:
        with fresh_database() as dbname:
            return await consumed_into(topic, postgres_env(dbname), processes)
    return await consumed_into(topic, sqlite_env(tmp / f"visits-{run}-{processes}.db"), processes)


def visits_consumer(app: ServiceApplication, *, topic: str) -> ExactlyOnceConsumer:
    """The visits service's consumer of the leads topic (module-level: a process of a split replay
    makes its own)."""
    assert isinstance(app, VisitsApplication)
    return ExactlyOnceConsumer(
        app,
        app.handlers(),
        group_id="ironarmy.visits",
        topics=[topic],
        bootstrap_servers=KAFKA,
        partitions=3,
        metrics=Metrics("bench"),
    )


async def consumed_into(topic: str, store_env: dict[str, str], processes: int = 1) -> float:
    """`processes`: 1, the service's consumer as it runs; more, the same replay split among them
    (a partition each, `shared.replay_processes`), their start included."""
    env = {**store_env, **cache_env(AGGREGATE_CACHE_SIZE)}
    app = VisitsApplication(env)
    make_consumer = functools.partial(visits_consumer, topic=topic)
    consumer = make_consumer(app)
    try:
        started = time.perf_counter()
        if processes > 1:
            async with ReplayProcesses(
                functools.partial(VisitsApplication, env), processes, split_from=0
            ) as replay:
                await replay.run_to_end(consumer, make_consumer)
        else:
            await consumer.run_to_end()
        elapsed = time.perf_counter() - started
        applied = consumer.outcomes[(topic, "applied")]
        if applied != 2 * N_LEADS:  # a consumer that missed events measures nothing
            raise RuntimeError(f"applied {applied} of {2 * N_LEADS} events")
        return 2 * N_LEADS / elapsed
    finally:
        app.close()


async def main() -> None:
    header(f"the visits service consuming the leads topic: {N_LEADS:,} leads registered, then assigned")
    topic = await stocked_topic()
    with tempfile.TemporaryDirectory() as tmp_name:
        ours, ours_pg, raw, split, split_pg = map(
            statistics.median,
            await in_turns(
                lambda i: consumed_rate(topic, Path(tmp_name), i),
                lambda i: consumed_rate(topic, Path(tmp_name), i, postgres=True),
                lambda _: raw_consumer_rate([topic], 2 * N_LEADS),
                lambda i: consumed_rate(topic, Path(tmp_name), i, processes=REPLAY_PROCESSES),
                lambda i: consumed_rate(topic, Path(tmp_name), i, postgres=True, processes=REPLAY_PROCESSES),
            ),
        )
    print(against_raw_consumer(f"visits consuming {2 * N_LEADS:,} leads events", ours, raw))
    print(against_raw_consumer("  the same, into PostgreSQL", ours_pg, raw))
    raw_name = "raw aiokafka consumer + decode"
    split_name = f"  replayed in {REPLAY_PROCESSES} processes (a partition each)"
    print(Result(split_name, "events/s", split, raw, raw_name).line())
    print(Result(f"{split_name}, into PostgreSQL", "events/s", split_pg, raw, raw_name).line())


if __name__ == "__main__":
    asyncio.run(main())
