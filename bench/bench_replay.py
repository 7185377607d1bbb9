"""Ops' replay of the visits service from its topics (services/visits/rebuild.py): a fresh store
filled from the leads topic, then the visits topic, every visit judged again by the rules and its
flags checked against the ones on the topic, as ops' rebuild runs by default (a topic's partitions
split among processes from SPLIT_FROM messages, as here only when BENCH_REPLAY_VISITS is large)
and, beside it, in one process and split whatever the size; against a raw aiokafka consumer
decoding the same messages. Needs the local broker.

    .venv/bin/python -m bench.bench_replay      (BENCH_REPLAY_VISITS)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from bench.bench_kafka import against_raw_consumer, raw_consumer_rate
from bench.common import Result, header, in_turns
from services.visits.application import VisitsApplication
from services.visits.domain.values import GeoPoint
from services.visits.policy import VisitsPolicy
from services.visits.rebuild import end_offsets, rebuild_from_topics
from shared.clock import MovableClock
from shared.domain import Meta
from shared.replay_processes import SPLIT_FROM
from shared.settings import AGGREGATE_CACHE_SIZE, REPLAY_PROCESSES, cache_env
from tests.integration.visits.support import (
    PHOTO,
    LeadsTopicWriter,
    consumed,
    running_visits,
    visits_settings,
)
from tests.support.kafka_helpers import eventually
from tests.support.services import SIMULATION_START
from tests.support.stores import sqlite_env

KAFKA = os.environ.get("IRONARMY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
N_VISITS = int(os.environ.get("BENCH_REPLAY_VISITS", "3000"))
REPS = 40
LEADS_PER_REP = 5
HERE = GeoPoint(30.2741, 120.1551, 10.0)


async def stocked_topics(tmp: Path) -> tuple[str, VisitsPolicy]:
    """The visits service's topics after N_VISITS visits from REPS reps, each visiting their own
    leads in turn every four hours (one visit in ten without check-in evidence, so flagged): the
    topic prefix, and the policy the service judged by."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = visits_settings(KAFKA, prefix, tmp / prefix)
    clock = MovableClock(SIMULATION_START)
    async with running_visits(settings, clock) as svc:
        app: VisitsApplication = svc.application
        leads = []
        async with LeadsTopicWriter(KAFKA, prefix) as writer:
            for n in range(REPS * LEADS_PER_REP):  # lead n belongs to rep n % REPS
                lead = str(uuid.uuid4())
                where = (HERE.lat, HERE.lon)
                await writer.registered(lead, "hangzhou", where, SIMULATION_START - timedelta(days=2))
                await writer.assigned(
                    lead, f"rep-{n % REPS}", "hangzhou", SIMULATION_START - timedelta(days=1)
                )
                leads.append(lead)
            await consumed(app, f"{prefix}.visits", writer)

        def log_all() -> None:
            for n in range(N_VISITS):
                clock.advance(timedelta(minutes=6))  # each rep: a visit every four hours
                evidence = n % 10 != 0
                app.log_visit(
                    lead_id=leads[n % len(leads)],
                    visited_at=clock.now() - timedelta(minutes=30),
                    position=HERE,
                    checkin_position=HERE if evidence else None,
                    photo_hash=f"{PHOTO[:-8]}{n:08d}" if evidence else None,
                    meta=Meta(f"rep-{n % REPS}", "rep", clock.now()),
                )

        await asyncio.to_thread(log_all)
        relay = svc.context.relay
        stored = app.recorder.max_notification_id() or 0
        await eventually(lambda: relay.published >= stored, timeout=300, what="visits published")
        return prefix, app.policy


async def messages(prefix: str) -> int:
    total = 0
    for topic in (f"{prefix}.leads", f"{prefix}.visits"):
        total += sum((await end_offsets(KAFKA, topic, 3)).values())
    return total


async def replay_rate(
    tmp: Path,
    prefix: str,
    policy: VisitsPolicy,
    count: int,
    *,
    processes: int = REPLAY_PROCESSES,
    split_from: int = SPLIT_FROM,
) -> float:
    rebuilt = VisitsApplication(
        {
            **sqlite_env(tmp / f"rebuilt-{uuid.uuid4().hex[:6]}.sqlite"),
            **cache_env(AGGREGATE_CACHE_SIZE),  # as the service runs
        },
        policy=policy,
    )
    try:
        started = time.perf_counter()
        report = await rebuild_from_topics(
            rebuilt,
            bootstrap_servers=KAFKA,
            topic_prefix=prefix,
            group_id=f"{prefix}.replay.{uuid.uuid4().hex[:6]}",
            processes=processes,
            split_from=split_from,
            timeout=900,
        )
        seconds = time.perf_counter() - started
    finally:
        rebuilt.close()
    if report.divergences:  # a replay that differs measures nothing
        raise RuntimeError(f"the replay diverged: {report.divergences[:3]}")
    return count / seconds


async def main() -> None:
    header(f"Replay: the visits service rebuilt from its topics after {N_VISITS} visits of {REPS} reps")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prefix, policy = await stocked_topics(tmp)
        count = await messages(prefix)
        topics = [f"{prefix}.leads", f"{prefix}.visits"]
        ours, raw, alone, split = map(
            statistics.median,
            await in_turns(
                lambda _: replay_rate(tmp, prefix, policy, count),
                lambda _: raw_consumer_rate(topics, count),
                lambda _: replay_rate(tmp, prefix, policy, count, processes=1),
                lambda _: replay_rate(tmp, prefix, policy, count, split_from=0),
            ),
        )
        raw_name = "raw aiokafka consumer + decode"
        print(against_raw_consumer(f"visits replayed from the topics ({count:,} messages)", ours, raw))
        print(Result("  the same, in one process", "events/s", alone, raw, raw_name).line())
        split_name = f"  the same, split among {REPLAY_PROCESSES} processes whatever its size"
        print(Result(split_name, "events/s", split, raw, raw_name).line())


if __name__ == "__main__":
    asyncio.run(main())
