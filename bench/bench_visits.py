"""Visits: how many visits/s the service ingests over HTTP (POST /visits through the real app,
judged by every rule, stored, relayed; the relay reading a backlog in its own process, as the
service does by default) against a bare FastAPI endpoint doing one raw SQLite insert of the same
body, for reps logging their visits as they make them (one in ten without check-in evidence, so
flagged) and, for reference, for reps sending one visit again and again (each a duplicate of all
before it, flagged); the same on PostgreSQL against a bare endpoint inserting with psycopg; the
visit→flag latency (POST until VisitFlagged is read off the topic) at a steady rate, against one
message's broker round trip at the same rate; and what logging a visit costs a rep with a long
history, against a rep's first visits. Needs the local broker and PostgreSQL.

    .venv/bin/python -m bench.bench_visits      (BENCH_VISITS, BENCH_LATENCY_VISITS, BENCH_RATE,
                                                 BENCH_HISTORY)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from bench.common import PG, REPEATS, Result, fresh_database, header, in_turns
from services.visits.api.schemas import VisitCreate, VisitCreatedPublic
from services.visits.application import VisitsApplication
from services.visits.domain.values import GeoPoint
from shared.clock import MovableClock
from shared.kafka import ensure_topics, make_producer
from shared.settings import AGGREGATE_CACHE_SIZE, ServiceSettings, cache_env
from tests.integration.visits.support import (
    PHOTO,
    LeadsTopicWriter,
    consumed,
    running_visits,
    visits_settings,
)
from tests.support.kafka_helpers import eventually
from tests.support.services import SIMULATION_START, RunningService
from tests.support.stores import sqlite_env
from tests.unit.visits.support import LeadsTopic, at, rep

KAFKA = os.environ.get("IRONARMY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
N_VISITS = int(os.environ.get("BENCH_VISITS", "1000"))
N_LATENCY = int(os.environ.get("BENCH_LATENCY_VISITS", "200"))
RATE = float(os.environ.get("BENCH_RATE", "20"))  # visits (or messages) per second, steady
HISTORY = int(os.environ.get("BENCH_HISTORY", "3000"))  # visits a long-serving rep has logged
SAMPLE = 200  # visits timed at each point
REPS = 40
LEADS_PER_REP = 5
VISIT_EVERY = timedelta(minutes=6)  # across the reps: each rep visits every four hours
CONCURRENCY = 8
HERE = (30.2741, 120.1551)
HANGZHOU_POINT = GeoPoint(*HERE, 10.0)


def body(lead: str, n: int, *, evidence: bool = True, visited: datetime | None = None) -> dict[str, Any]:
    visited = visited or SIMULATION_START - timedelta(minutes=30)
    checkin = {
        "position": {"lat": HERE[0], "lon": HERE[1], "accuracy_m": 10},
        "photo_hash": f"{PHOTO[:-8]}{n:08d}",
    }
    return {
        "lead_id": lead,
        "visited_at": visited.isoformat(),
        "position": {"lat": HERE[0], "lon": HERE[1]},
        **({"checkin": checkin} if evidence else {}),
        "notes": "met the buyer",
        "client_ref": f"bench-{n}",
    }


@dataclass(frozen=True)
class Posted:
    rate: float  # visits/s
    latencies: list[float]  # ms from each POST to its answer, sorted


async def post_all(
    post: Callable[[int], Awaitable[httpx.Response]], count: int, concurrency: int = CONCURRENCY
) -> Posted:
    """`count` POSTs, `concurrency` at a time (each wave to different reps): visits/s, and how long
    each request took."""
    latencies: list[float] = []

    async def timed(n: int) -> httpx.Response:
        sent = time.perf_counter()
        response = await post(n)
        latencies.append((time.perf_counter() - sent) * 1000)
        return response

    started = time.perf_counter()
    for first in range(0, count, concurrency):
        responses = await asyncio.gather(*(timed(n) for n in range(first, min(first + concurrency, count))))
        assert all(r.status_code == 201 for r in responses), responses[0].text
    return Posted(count / (time.perf_counter() - started), sorted(latencies))


# --- ours: the visits service, in-process with its relay and consumer --------------------------


async def with_visits(
    tmp: Path, run: Callable[[RunningService, list[str], str], Awaitable[Any]], **settings_: Any
) -> Any:
    """The visits service (on SQLite, unless `settings_` say otherwise), told by the leads topic of
    LEADS_PER_REP leads for each rep: lead m is rep m % REPS's (so visit n, to lead n % len(leads),
    is rep n % REPS's)."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = visits_settings(KAFKA, prefix, tmp / prefix, relay_reader="process", **settings_)
    async with running_visits(settings, MovableClock(SIMULATION_START)) as svc:
        leads: list[str] = []
        async with LeadsTopicWriter(KAFKA, prefix) as writer:
            registered, assigned = SIMULATION_START - timedelta(days=2), SIMULATION_START - timedelta(days=1)
            for m in range(REPS * LEADS_PER_REP):
                lead = str(uuid.uuid4())
                await writer.registered(lead, "hangzhou", HERE, registered)
                await writer.assigned(lead, f"rep-{m % REPS}", "hangzhou", assigned)
                leads.append(lead)
            await consumed(svc.application, f"{prefix}.visits", writer)
        return await run(svc, leads, prefix)


def nth_visit(clock: MovableClock, leads: list[str], n: int, *, evidence: bool = True) -> dict[str, Any]:
    """Visit n as a rep at work logs it: the rep's leads in turn, a visit every four hours each
    (VISIT_EVERY apart across the REPS reps), logged half an hour after it began."""
    clock.advance(VISIT_EVERY)
    return body(leads[n % len(leads)], n, evidence=evidence, visited=clock.now() - timedelta(minutes=30))


async def visits_rate(tmp: Path, *, repeated: bool = False, postgres: bool = False) -> Posted:
    """Reps logging their visits as they make them, one in ten without check-in evidence (flagged).
    `repeated`: every visit of a rep is to its first lead at one claimed time instead, so each is
    a duplicate of all the rep's visits before it (flagged, with each of them as evidence).
    `postgres`: the service's store is a fresh PostgreSQL database (production's store)."""

    async def run(svc: RunningService, leads: list[str], _: str) -> Posted:
        tokens = [svc.token(f"rep-{r}", "rep") for r in range(REPS)]
        clock = svc.context.clock
        assert isinstance(clock, MovableClock)

        async def post(n: int) -> httpx.Response:
            if repeated:
                clock.advance(timedelta(seconds=1))
                visit = body(leads[n % REPS], n)
            else:
                visit = nth_visit(clock, leads, n, evidence=n % 10 != 0)
            return await svc.client.post("/visits", json=visit, headers=tokens[n % REPS])

        return await post_all(post, N_VISITS)

    if not postgres:
        posted: Posted = await with_visits(tmp, run)
        return posted
    with fresh_database() as dbname:
        posted = await with_visits(
            tmp, run, store="postgres", postgres_dbname=dbname, postgres_port=int(PG["port"])
        )
        return posted


# --- baseline: a bare endpoint doing the raw insert --------------------------------------------


def bare_app(path: Path) -> FastAPI:
    app = FastAPI()
    # Like the event store's SQLite recorder: WAL, one connection, writers take turns in-process
    # (SQLite's own busy-waiting between connections would make the baseline slower, not fairer).
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE visits (id TEXT PRIMARY KEY, rep TEXT, body BLOB)")
    writing = threading.Lock()

    @app.post("/visits", status_code=201, response_model=VisitCreatedPublic)
    def log_visit(visit: VisitCreate) -> VisitCreatedPublic:
        visit_id = str(uuid.uuid4())
        with writing, db:
            db.execute(
                "INSERT INTO visits VALUES (?, ?, ?)",
                (visit_id, visit.lead_id, visit.model_dump_json().encode()),
            )
        return VisitCreatedPublic(id=visit_id, recorded_at=SIMULATION_START)

    return app


def bare_postgres_app(pool: ConnectionPool) -> FastAPI:
    """The bare endpoint on PostgreSQL: one insert a request, committed, on a pool of as many
    connections as a service has (IRONARMY_POSTGRES_POOL_SIZE)."""
    app = FastAPI()
    with pool.connection() as conn:
        conn.execute("CREATE TABLE visits (id TEXT PRIMARY KEY, rep TEXT, body BYTEA)")

    @app.post("/visits", status_code=201, response_model=VisitCreatedPublic)
    def log_visit(visit: VisitCreate) -> VisitCreatedPublic:
        visit_id = str(uuid.uuid4())
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO visits VALUES (%s, %s, %s)",
                (visit_id, visit.lead_id, visit.model_dump_json().encode()),
            )
        return VisitCreatedPublic(id=visit_id, recorded_at=SIMULATION_START)

    return app


async def bare_rate(tmp: Path, *, postgres: bool = False) -> Posted:
    if postgres:
        with fresh_database() as dbname:
            size = ServiceSettings.model_fields["postgres_pool_size"].default
            kwargs = {**PG, "dbname": dbname, "autocommit": True}
            with ConnectionPool(kwargs=kwargs, min_size=size, max_size=size, open=True) as pool:
                return await post_to_bare(bare_postgres_app(pool))
    return await post_to_bare(bare_app(tmp / f"bare-{uuid.uuid4().hex[:6]}.sqlite"))


async def post_to_bare(app: FastAPI) -> Posted:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bare") as client:

        async def post(n: int) -> httpx.Response:
            return await client.post("/visits", json=body(f"lead-{n % REPS}", n))

        return await post_all(post, N_VISITS)


# --- latency ----------------------------------------------------------------------------------


async def arrivals(topic: str, kind: str | None, seen: dict[str, float], ready: asyncio.Event) -> None:
    """Note when each message (a VisitFlagged's visit, or a raw message's key) is read."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    ready.set()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    if kind is None:
                        seen.setdefault(record.key.decode(), now)
                        continue
                    envelope = orjson.loads(record.value)
                    if envelope["event_type"] == kind:
                        seen.setdefault(envelope["payload"]["visit_id"], now)
    finally:
        await consumer.stop()


async def steady(count: int, send: Callable[[int], Awaitable[str]], seen: dict[str, float]) -> list[float]:
    """Send at RATE per second; milliseconds from each send to its arrival."""
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / RATE - time.perf_counter()))
        t0 = time.perf_counter()
        sent[await send(n)] = t0
    with contextlib.suppress(AssertionError):  # report what arrived, whatever did not
        await eventually(lambda: all(k in seen for k in sent), timeout=60, what="arrivals")
    return sorted((seen[k] - t0) * 1000 for k, t0 in sent.items() if k in seen)


def p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def visit_to_flag(tmp: Path) -> list[float]:
    async def run(svc: RunningService, leads: list[str], prefix: str) -> list[float]:
        tokens = [svc.token(f"rep-{r}", "rep") for r in range(REPS)]
        clock = svc.context.clock
        assert isinstance(clock, MovableClock)
        seen: dict[str, float] = {}
        ready = asyncio.Event()
        watcher = asyncio.create_task(arrivals(f"{prefix}.visits", "VisitFlagged", seen, ready))
        await ready.wait()

        async def send(n: int) -> str:
            # No check-in evidence: flagged at once (missing_checkin_evidence).
            visit = nth_visit(clock, leads, n, evidence=False)
            response = await svc.client.post("/visits", json=visit, headers=tokens[n % REPS])
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        try:
            return await steady(N_LATENCY, send, seen)
        finally:
            watcher.cancel()

    latencies: list[float] = await with_visits(tmp, run)
    return latencies


async def broker_round_trip() -> list[float]:
    topic = f"bench{uuid.uuid4().hex[:8]}.raw"
    await ensure_topics(KAFKA, [topic], 3)
    producer = make_producer(KAFKA, "bench-rtt")
    await producer.start()
    seen: dict[str, float] = {}
    ready = asyncio.Event()
    watcher = asyncio.create_task(arrivals(topic, None, seen, ready))
    await ready.wait()

    async def send(n: int) -> str:
        key = f"m-{n}"
        await producer.send_and_wait(topic, value=orjson.dumps(body("lead", n)), key=key.encode())
        return key

    try:
        return await steady(N_LATENCY, send, seen)
    finally:
        watcher.cancel()
        await producer.stop()


# --- a long history -------------------------------------------------------------------------


def history_cost(tmp: Path) -> tuple[float, float]:
    """Milliseconds to log a visit (the application: judged by every rule, stored), for one rep's
    first SAMPLE visits and for SAMPLE more after HISTORY of them: about two years of visits."""
    app = VisitsApplication(
        {
            **sqlite_env(tmp / f"history-{uuid.uuid4().hex[:6]}.sqlite"),
            **cache_env(AGGREGATE_CACHE_SIZE),  # as the service runs
        }
    )
    leads = LeadsTopic(app)
    lead_ids = [f"L{n}" for n in range(REPS)]
    for lead_id in lead_ids:
        leads.owned_lead(lead_id, "rep-1", at(-48))

    def log(n: int) -> None:
        when = at(2 * n)  # a visit every two hours, each with its own photo
        app.log_visit(
            lead_id=lead_ids[n % REPS],
            visited_at=when - timedelta(minutes=30),
            position=HANGZHOU_POINT,
            checkin_position=HANGZHOU_POINT,
            photo_hash=f"{PHOTO[:-8]}{n:08d}",
            meta=rep("rep-1", when),
        )

    def timed(first: int) -> float:
        started = time.perf_counter()
        for n in range(first, first + SAMPLE):
            log(n)
        return (time.perf_counter() - started) * 1000 / SAMPLE

    early = timed(0)
    for n in range(SAMPLE, HISTORY):
        log(n)
    return early, timed(HISTORY)


def against_bare(measure: str, ours: list[Posted], bare: list[Posted], target: float | None = None) -> str:
    """The median visits/s of our runs against the bare endpoint's."""
    return Result(
        measure,
        "visits/s",
        statistics.median(r.rate for r in ours),
        statistics.median(r.rate for r in bare),
        "bare FastAPI + raw insert",
        target,
    ).line()


def latency_against_bare(ours: list[Posted], bare: list[Posted], q: float, name: str) -> str:
    """The median over runs of the requests' latency at quantile `q`, against the bare endpoint's."""
    return Result(
        f"  its requests' latency, {name}",
        "ms",
        statistics.median(p(r.latencies, q) for r in ours),
        statistics.median(p(r.latencies, q) for r in bare),
        "bare FastAPI + raw insert",
    ).line()


async def main() -> None:
    header(f"Visits: {N_VISITS} over HTTP from {REPS} reps, {CONCURRENCY} at a time; latency at {RATE:.0f}/s")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ours, bare, repeated, ours_pg, bare_pg = await in_turns(
            lambda _: visits_rate(tmp),
            lambda _: bare_rate(tmp),
            lambda _: visits_rate(tmp, repeated=True),
            lambda _: visits_rate(tmp, postgres=True),
            lambda _: bare_rate(tmp, postgres=True),
        )
        print(against_bare("POST /visits ingested (judged, stored)", ours, bare, 0.6))
        print(latency_against_bare(ours, bare, 0.5, "p50"))
        print(latency_against_bare(ours, bare, 0.99, "p99"))
        print(against_bare("  the same, each a duplicate of the rep's before", repeated, bare))
        print(against_bare("POST /visits on PostgreSQL", ours_pg, bare_pg, 0.6))
        print(latency_against_bare(ours_pg, bare_pg, 0.5, "p50"))
        flag = await visit_to_flag(tmp)
        rtt = await broker_round_trip()
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            print(
                Result(
                    f"visit→VisitFlagged on the topic, {name}",
                    "ms",
                    p(flag, q),
                    p(rtt, q),
                    "one message's broker round trip",
                ).line()
            )
        arrived = f"{len(flag)}/{N_LATENCY} flags and {len(rtt)}/{N_LATENCY} messages arrived"
        print(f"  (ratio = ours / baseline; {arrived})")
        runs = [history_cost(tmp) for _ in range(REPEATS)]
        print(
            Result(
                f"log a visit after {HISTORY:,} visits",
                "ms/visit",
                statistics.median(late for _, late in runs),
                statistics.median(early for early, _ in runs),
                f"the rep's first {SAMPLE}",
            ).line()
        )


if __name__ == "__main__":
    asyncio.run(main())
