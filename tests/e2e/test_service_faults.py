"""Faults of a service process (issue 8), on the real broker: the visits service killed with -9
while it consumes a backlog of leads events, then restarted, answers as a clean rebuild from the
topics does; a consumer that falls behind shows its lag on /metrics and catches up."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.visits.api.schemas import AuditEntryPublic, OwnershipPeriodPublic
from services.visits.application import VisitsApplication
from services.visits.config import VisitsSettings
from services.visits.rebuild import end_offsets, rebuild_from_topics
from shared.auth import TokenAuthority
from shared.cli.processes import System
from shared.domain import stable_id
from shared.events import leads
from shared.events.catalog import Published, make_envelope
from shared.kafka import ensure_topics, make_producer
from shared.settings import ServiceSettings
from tests.conftest import KAFKA
from tests.support.kafka_helpers import eventually_blocking

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PARTITIONS = 3
REPS = [f"rep-{i}" for i in range(7)]


@dataclass
class VisitsProcess:
    """The visits service alone, as `ironarmy up` starts it, on topics of its own."""

    system: System
    prefix: str
    data_dir: Path
    log_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.system.port('visits')}"

    @property
    def leads_topic(self) -> str:
        return f"{self.prefix}.leads"

    @property
    def group(self) -> str:
        return f"{self.prefix}.visits"

    def start(self) -> None:
        self.system.start_service("visits", self.log_dir)
        self.system.wait_ready("visits")

    def kill(self) -> None:
        """kill -9: no lifespan shutdown, no last commit."""
        process = self.system.processes["visits"]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def metrics(self) -> dict[str, float]:
        """consumer outcome totals (`applied`, ...) and `lag:<partition>` from /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "consumer_messages_total":
                    outcome = sample.labels["outcome"]
                    found[outcome] = found.get(outcome, 0) + sample.value
                elif sample.name == "consumer_lag_messages":
                    found[f"lag:{sample.labels['partition']}"] = sample.value
        return found

    def store(self) -> VisitsApplication:
        """The service's own store, opened by another instance (it only reads)."""
        env = VisitsSettings(data_dir=self.data_dir).eventsourcing_env("visits")
        return VisitsApplication(env)


@pytest.fixture
def visits_process(tmp_path: Path) -> Iterator[VisitsProcess]:
    prefix = f"faults{uuid.uuid4().hex[:8]}"
    env = {
        "IRONARMY_ENVIRONMENT": "test",
        "IRONARMY_STORE": "sqlite",
        "IRONARMY_DATA_DIR": str(tmp_path / "data"),
        "IRONARMY_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "IRONARMY_TOPIC_PREFIX": prefix,
        "IRONARMY_CLOCK": "movable",
        "IRONARMY_CLOCK_START": START.isoformat(),
        # Small batches: many transactions, so a kill lands between and inside them.
        "IRONARMY_CONSUMER_BATCH_SIZE": "10",
    }
    system = System(env=env, base_port=18101)
    process = VisitsProcess(system, prefix, tmp_path / "data", tmp_path / "log")
    try:
        yield process
    finally:
        system.stop()


def lead_ids(count: int, prefix: str) -> list[str]:
    return [str(stable_id("fault-lead", prefix, str(i))) for i in range(count)]


async def put_backlog(topic: str, lead_ids: list[str]) -> int:
    """The leads service's real envelopes for each lead: registered, assigned, and for every third
    one reclaimed and assigned to a colleague. Returns how many messages went on the topic."""
    await ensure_topics(KAFKA, [topic], PARTITIONS)
    producer = make_producer(KAFKA, client_id="faults-leads")
    await producer.start()
    sent = []
    try:
        for n, lead in enumerate(lead_ids):
            at = START - timedelta(days=3) + timedelta(seconds=n)
            rep, colleague = REPS[n % len(REPS)], REPS[(n + 1) % len(REPS)]
            assigned, reclaimed = at + timedelta(minutes=1), at + timedelta(hours=49)
            events: list[tuple[datetime, leads.LeadsEvent]] = [
                (
                    at,
                    leads.LeadRegistered(
                        lead_id=lead,
                        company_name=f"Company {n}",
                        company_key=f"key-{n}",
                        region="hangzhou",
                        address_line=f"{n} West Lake Road",
                        city="Hangzhou",
                        customer_lat=30.27,
                        customer_lon=120.15,
                        score=50.0,
                        source="trade-fair",
                        registered_at=at,
                    ),
                ),
                (
                    assigned,
                    leads.LeadAssigned(
                        lead_id=lead,
                        rep_id=rep,
                        region="hangzhou",
                        assigned_at=assigned,
                        follow_up_deadline=assigned + timedelta(hours=48),
                    ),
                ),
            ]
            if n % 3 == 0:
                again = reclaimed + timedelta(minutes=1)
                events += [
                    (
                        reclaimed,
                        leads.LeadReclaimed(
                            lead_id=lead,
                            rep_id=rep,
                            region="hangzhou",
                            reason="follow_up_overdue",
                            reclaimed_at=reclaimed,
                        ),
                    ),
                    (
                        again,
                        leads.LeadAssigned(
                            lead_id=lead,
                            rep_id=colleague,
                            region="hangzhou",
                            assigned_at=again,
                            follow_up_deadline=again + timedelta(hours=48),
                        ),
                    ),
                ]
            for version, (when, event) in enumerate(events, start=1):
                envelope = make_envelope(
                    Published(event, aggregate_type="Lead"),
                    aggregate_id=lead,
                    aggregate_version=version,
                    meta={"actor_id": "scheduler", "actor_role": "system", "at": when},
                    recorded_at=when,
                )
                sent.append(await producer.send(topic, value=envelope.to_bytes(), key=lead.encode()))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(sent)


def applied(store: VisitsApplication, group: str, topic: str, ends: dict[int, int]) -> int:
    """How many of the topic's messages the store says were applied (offsets start at 0)."""
    total = 0
    for partition in ends:
        offset = store.processed_offset(group, topic, partition)
        total += 0 if offset is None else offset + 1
    return total


async def test_killed_mid_consume_and_restarted_the_service_answers_as_a_clean_rebuild(
    visits_process: VisitsProcess,
) -> None:
    svc = visits_process
    ids = lead_ids(1500, svc.prefix)
    total = await put_backlog(svc.leads_topic, ids)
    ends = await end_offsets(KAFKA, svc.leads_topic, PARTITIONS)
    assert sum(ends.values()) == total

    svc.start()
    seen: list[float] = []

    def part_way() -> bool:
        seen.append(svc.metrics().get("applied", 0))
        return seen[-1] >= total * 0.1

    await asyncio.to_thread(eventually_blocking, "a tenth of the backlog applied", part_way, 45)
    svc.kill()
    before = svc.store()
    try:
        applied_before = applied(before, svc.group, svc.leads_topic, ends)
    finally:
        before.close()
    # Killed part-way: the store holds at least what /metrics last said, and not everything.
    assert seen[-1] <= applied_before < total, (seen[-1], applied_before, total)

    svc.start()
    store = svc.store()
    try:
        await asyncio.to_thread(
            eventually_blocking,
            "the restarted service caught up",
            lambda: applied(store, svc.group, svc.leads_topic, ends) == total,
            45,
        )
        # It went on from its stored position: each message applied once across both lives.
        await asyncio.to_thread(
            eventually_blocking,
            "the counter caught up",
            lambda: svc.metrics()["applied"] >= total - applied_before,
            10,
        )
        assert svc.metrics()["applied"] == total - applied_before
        rebuilt = VisitsApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"})
        try:
            report = await rebuild_from_topics(
                rebuilt,
                bootstrap_servers=KAFKA,
                topic_prefix=svc.prefix,
                group_id=f"{svc.prefix}.clean-rebuild",
                partitions=PARTITIONS,
                timeout=45,
            )
            assert report.divergences == []
            # Every lead's timeline, fact by fact (event ids, kinds, times): nothing lost, none twice.
            timelines = {lead: store.lead(lead) for lead in ids}
            for lead, timeline in timelines.items():
                assert timeline == rebuilt.lead(lead), lead
            assert sum(len(timeline.facts) for timeline in timelines.values()) == total
            # And what the restarted process answers over HTTP (a spread of 100 leads) is what the
            # rebuild answers.
            settings = ServiceSettings()
            token = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer).issue(
                "qc-1", "qc"
            )
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=svc.url, headers=headers, timeout=10) as client:
                for lead in ids[:: len(ids) // 100]:
                    answer = (await client.get(f"/leads/{lead}/owners")).json()
                    expected = [
                        OwnershipPeriodPublic.model_validate(p).model_dump(mode="json")
                        for p in rebuilt.ownership_history(lead)
                    ]
                    assert answer == expected, lead
                    # The in-memory audit trail the restarted process built, entry by entry.
                    trail = (await client.get(f"/audit/leads/{lead}")).json()
                    assert trail == [
                        AuditEntryPublic.model_validate(e).model_dump(mode="json")
                        for e in rebuilt.audit_trail(lead_id=lead)
                    ], lead
        finally:
            rebuilt.close()
    finally:
        store.close()


async def test_a_consumer_that_falls_behind_shows_its_lag_on_metrics_and_catches_up(
    visits_process: VisitsProcess,
) -> None:
    svc = visits_process
    svc.start()  # idle on an empty leads topic
    ids = lead_ids(1500, svc.prefix)
    producing = asyncio.create_task(put_backlog(svc.leads_topic, ids))
    lags: list[float] = []

    def behind() -> bool:
        metrics = svc.metrics()
        lags.append(sum(v for k, v in metrics.items() if k.startswith("lag:")))
        return lags[-1] > 0

    await asyncio.to_thread(eventually_blocking, "consumer_lag_messages above 0", behind, 45)
    total = await producing
    ends = await end_offsets(KAFKA, svc.leads_topic, PARTITIONS)
    assert sum(ends.values()) == total

    def caught_up() -> bool:
        metrics = svc.metrics()
        lags.append(sum(v for k, v in metrics.items() if k.startswith("lag:")))
        return metrics.get("applied", 0) >= total and all(metrics.get(f"lag:{p}") == 0 for p in ends)

    await asyncio.to_thread(eventually_blocking, "lag back to 0 with every message applied", caught_up, 45)
    assert max(lags) > 0 and lags[-1] == 0
    metrics = svc.metrics()
    assert metrics["applied"] == total and metrics.get("duplicate", 0) == 0
    store = svc.store()
    try:
        assert applied(store, svc.group, svc.leads_topic, ends) == total
        assert all(len(store.lead(lead).facts) in (2, 4) for lead in ids)
    finally:
        store.close()
