"""For the visits integration tests: the leads service's real envelopes put on its topic (as its
relay would, while services/leads has no runnable spec yet), and a visits service to run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from services.visits.application import VisitsApplication
from services.visits.bootstrap import spec
from services.visits.config import VisitsSettings
from shared.clock import Clock
from shared.domain import stable_id
from shared.events import leads
from shared.events.catalog import Published, make_envelope
from shared.kafka import ensure_topics, make_producer
from tests.support.kafka_helpers import eventually
from tests.support.services import RunningService, running_service, service_settings

PHOTO = "sha256:" + "ab" * 32


def lead_id(name: str) -> str:
    """A lead id as the leads service makes them: its aggregate id, as a string."""
    return str(stable_id("test-lead", name))


def visits_settings(kafka: str, topic_prefix: str, data_dir: Path, **overrides: Any) -> VisitsSettings:
    settings = service_settings(
        VisitsSettings, kafka=kafka, topic_prefix=topic_prefix, data_dir=data_dir, **overrides
    )
    assert isinstance(settings, VisitsSettings)
    return settings


@asynccontextmanager
async def running_visits(settings: VisitsSettings, clock: Clock) -> AsyncIterator[RunningService]:
    async with running_service(spec(), settings, clock) as svc:
        yield svc


class LeadsTopicWriter:
    """Writes real leads envelopes (shared.events.leads models, catalog.make_envelope) onto
    `<prefix>.leads`, keyed by the lead's aggregate id, as the leads relay does."""

    def __init__(self, bootstrap: str, topic_prefix: str) -> None:
        self.bootstrap = bootstrap
        self.topic = f"{topic_prefix}.leads"
        self.versions: dict[str, int] = {}
        self.sent = 0
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> LeadsTopicWriter:
        await ensure_topics(self.bootstrap, [self.topic], 3)
        self._producer = make_producer(self.bootstrap, client_id="test-leads")
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._producer is not None
        await self._producer.stop()

    async def publish(self, event: leads.LeadsEvent, lead: str, at: datetime, actor: str = "leads") -> str:
        """One leads event about a lead; returns its envelope's event id (the evidence id)."""
        assert self._producer is not None
        version = self.versions.get(lead, 0) + 1
        self.versions[lead] = version
        envelope = make_envelope(
            Published(event, aggregate_type="Lead"),
            aggregate_id=lead,
            aggregate_version=version,
            meta={"actor_id": actor, "actor_role": "system", "at": at},
            recorded_at=at,
        )
        await self._producer.send_and_wait(self.topic, value=envelope.to_bytes(), key=lead.encode())
        self.sent += 1
        return str(envelope.event_id)

    async def registered(self, lead: str, region: str, where: tuple[float, float], at: datetime) -> str:
        event = leads.LeadRegistered(
            lead_id=lead,
            company_name=f"Company {lead[:8]}",
            company_key=lead,
            region=region,
            address_line="1 West Lake Road",
            city=region,
            customer_lat=where[0],
            customer_lon=where[1],
            score=0.7,
            source="trade-fair",
            registered_at=at,
        )
        return await self.publish(event, lead, at)

    async def assigned(self, lead: str, rep: str, region: str, at: datetime) -> str:
        event = leads.LeadAssigned(
            lead_id=lead,
            rep_id=rep,
            region=region,
            assigned_at=at,
            follow_up_deadline=at + timedelta(hours=48),
        )
        return await self.publish(event, lead, at)

    async def reclaimed(self, lead: str, rep: str, region: str, at: datetime) -> str:
        event = leads.LeadReclaimed(
            lead_id=lead, rep_id=rep, region=region, reason="follow_up_overdue", reclaimed_at=at
        )
        return await self.publish(event, lead, at)


async def consumed(app: VisitsApplication, group: str, writer: LeadsTopicWriter, partitions: int = 3) -> None:
    """Wait until the visits consumer has applied everything the writer put on the leads topic."""

    def applied() -> int:
        total = 0
        for p in range(partitions):
            offset = app.processed_offset(group, writer.topic, p)
            total += 0 if offset is None else offset + 1
        return total

    await eventually(lambda: applied() >= writer.sent, what="leads events consumed")
