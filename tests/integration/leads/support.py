"""What the leads integration tests share: settings with a small policy, business-day times, waiting
for the clock's jobs and the relay, and reading exactly what is on a topic."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.leads.bootstrap import spec
from services.leads.config import LeadsSettings
from services.leads.policy import LeadsPolicy
from shared.clock import Clock
from shared.events.base import Envelope
from shared.events.catalog import decode
from tests.support.kafka_helpers import eventually, read_topic
from tests.support.services import RunningService, running_service, service_settings

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 2).date()

# Small numbers keep the tests quick; the rules are the same as with the real band.
SMALL = LeadsPolicy(
    quota_min=1,
    default_daily_quota=3,
    quota_max=5,
    default_private_pool_cap=2,
    follow_up_hours=36,
    warn_before_hours=6,
    former_owner_lock_days=7,
    daily_distribution_hour=8,
)


def local(day_offset: int, hour: int, minute: int = 0) -> datetime:
    """A moment of the simulated week, in business time (Asia/Shanghai), from Monday."""
    return datetime.combine(MONDAY + timedelta(days=day_offset), time(hour, minute), ZONE)


def leads_settings(
    kafka: str, topic_prefix: str, data_dir: Path, policy: LeadsPolicy = SMALL, **overrides: Any
) -> LeadsSettings:
    settings = service_settings(
        LeadsSettings, kafka=kafka, topic_prefix=topic_prefix, data_dir=data_dir, policy=policy, **overrides
    )
    assert isinstance(settings, LeadsSettings)
    return settings


@asynccontextmanager
async def running_leads(settings: LeadsSettings, clock: Clock) -> AsyncIterator[RunningService]:
    async with running_service(spec(), settings, clock) as svc:
        yield svc


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def company(i: int, region: str = "hangzhou", score: float | None = None) -> dict[str, Any]:
    return {
        "company_name": f"Company {region} {i:03d}",
        "region": region,
        "address": {"line": f"{i} Wensan Road", "city": region.title(), "lat": 30.27, "lon": 120.15},
        "score": 90 - i * 0.5 if score is None else score,
        "source": "trade-fair",
    }


async def stock(svc: RunningService, n: int, region: str = "hangzhou") -> list[str]:
    body = {"leads": [company(i, region) for i in range(n)]}
    imported = ok(await svc.client.post("/leads/imports", json=body, headers=admin(svc)), 201)
    assert len(imported["registered"]) == n
    return list(imported["registered"])


async def hire(svc: RunningService, rep_id: str, region: str = "hangzhou", **extra: Any) -> None:
    body = {"rep_id": rep_id, "name": rep_id.title(), "region": region, "joined_on": "2025-01-06", **extra}
    ok(await svc.client.post("/reps", json=body, headers=admin(svc)), 201)


def admin(svc: RunningService) -> dict[str, str]:
    return svc.token("admin-1", "admin")


async def tick_with_the_clock(svc: RunningService) -> None:
    """Wait until the scheduler has run one whole tick that began after the clock was last moved."""
    scheduler = svc.context.scheduler
    seen = scheduler.ticks
    await eventually(lambda: scheduler.ticks >= seen + 2, what="two scheduler ticks")


async def relayed(svc: RunningService) -> None:
    """Wait until the relay has published everything the service has stored."""
    relay, recorder = svc.context.relay, svc.context.application.recorder
    await eventually(
        lambda: relay.published_position() == (recorder.max_notification_id() or 0), what="relay caught up"
    )


async def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    """How many messages the topic holds (an idempotent, non-transactional producer: end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def everything_on(svc: RunningService, service: str = "leads") -> list[ConsumerRecord]:
    """Every message on a service's topic, once its relay has published all it stored."""
    await relayed(svc)
    bootstrap = svc.context.settings.kafka_bootstrap_servers
    topic = svc.context.settings.topic(service)
    size = await topic_size(bootstrap, topic, svc.context.settings.topic_partitions)
    records = await read_topic(bootstrap, topic, until=lambda rs: len(rs) >= size)
    assert len(records) == size
    return records


def events(records: Iterable[ConsumerRecord]) -> list[tuple[Envelope, Any]]:
    return [decode(record.value) for record in records]


def of_type(records: Iterable[ConsumerRecord], event_type: str) -> list[tuple[Envelope, Any]]:
    return [(envelope, event) for envelope, event in events(records) if envelope.event_type == event_type]
