"""Helpers for the reviews service's integration tests: settings, other services' real envelopes
on their topics (as their relays publish them: key = aggregate id), and request bodies."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from services.reviews.config import ReviewsSettings
from services.reviews.domain.values import VALUES
from services.reviews.policy import OutcomePolicy, ReviewsPolicy
from shared.events.base import Envelope, IntegrationEvent
from shared.events.catalog import Published, make_envelope
from shared.events.leads import LeadConverted, RepRegistered
from shared.events.visits import FabricationConfirmed, VisitLogged
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings
from tests.support.kafka_helpers import eventually
from tests.support.services import RunningService, service_settings

# Small targets, so that a handful of events make full results.
POLICY = ReviewsPolicy(outcome=OutcomePolicy(conversions_target=1, visits_target=2))


def reviews_settings(
    *, kafka: str, topic_prefix: str, data_dir: Path, store: str = "sqlite", **overrides: Any
) -> ServiceSettings:
    return service_settings(
        ReviewsSettings,
        kafka=kafka,
        topic_prefix=topic_prefix,
        data_dir=data_dir,
        store=store,
        policy=POLICY,
        **overrides,
    )


# --- other services' events, as they travel ---------------------------------------------


@dataclass
class Source:
    """One aggregate of another service (e.g. a rep's visit log): its events' versions in order."""

    service: str
    aggregate_type: str
    aggregate_id: str
    versions: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def envelope(
        self, event: IntegrationEvent, at: datetime, actor: tuple[str, str] = ("system", "system")
    ) -> Envelope:
        return make_envelope(
            Published(event, self.aggregate_type),
            aggregate_id=self.aggregate_id,
            aggregate_version=next(self.versions),
            meta={"actor_id": actor[0], "actor_role": actor[1], "at": at, "correlation_id": "it"},
            recorded_at=at,
        )


def visit_log(rep_id: str) -> Source:
    """The visits service keys a rep's visits, flags and decisions by the rep's visit log id."""
    return Source("visits", "VisitLog", f"visit-log-{rep_id}")


async def publish(bootstrap: str, topic: str, *envelopes: Envelope) -> list[tuple[int, int]]:
    """Produce envelopes as their service's relay does (key = aggregate id); returns where each
    landed, as (partition, offset)."""
    await ensure_topics(bootstrap, [topic], 3)  # as the service would create it, not auto-created
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        landed = []
        for envelope in envelopes:
            sent = await producer.send_and_wait(
                topic, value=envelope.to_bytes(), key=envelope.aggregate_id.encode()
            )
            landed.append((sent.partition, sent.offset))
        return landed
    finally:
        await producer.stop()


def consumed(svc: RunningService, topic: str, partition: int, offset: int) -> Callable[[], bool]:
    """Whether the service's consumer has applied (or passed over) the message at this offset."""
    group = f"{svc.context.settings.topic_prefix}.{svc.context.spec.name}"

    def check() -> bool:
        applied = svc.application.processed_offset(group, topic, partition)
        return applied is not None and applied >= offset

    return check


def visit_logged(visit_id: str, rep_id: str, visited_at: datetime, region: str) -> VisitLogged:
    return VisitLogged(
        visit_id=visit_id,
        rep_id=rep_id,
        lead_id=f"lead-of-{visit_id}",
        visited_at=visited_at,
        recorded_at=visited_at + timedelta(minutes=10),
        region=region,
    )


def fabrication_confirmed(
    visit_id: str, rep_id: str, region: str, visited_at: datetime, confirmed_at: datetime
) -> FabricationConfirmed:
    return FabricationConfirmed(
        rep_id=rep_id,
        visit_id=visit_id,
        lead_id=f"lead-of-{visit_id}",
        region=region,
        visited_at=visited_at,
        flag_ids=[f"flag-{visit_id}"],
        evidence_event_ids=[str(uuid4())],
        decided_by="qc-1",
        reason="the customer says nobody came that day",
        confirmed_at=confirmed_at,
        look_back_id=f"look-back-{visit_id}",
    )


# --- the leads service's reps and conversions, as its real envelopes ----------------------


def rep_registered(rep_id: str, region: str, at: datetime) -> RepRegistered:
    return RepRegistered(
        rep_id=rep_id,
        name=f"Rep {rep_id}",
        region=region,
        role="rep",
        joined_on=date(2025, 9, 1),
        active=True,
        daily_quota=30,
        private_pool_cap=20,
        registered_at=at,
    )


async def from_leads(svc: RunningService, *envelopes: Envelope) -> None:
    """Publish on the leads topic and wait until the reviews consumer has applied them."""
    settings = svc.context.settings
    topic = settings.topic("leads")
    landed = await publish(settings.kafka_bootstrap_servers, topic, *envelopes)
    for partition, offset in landed:
        await eventually(consumed(svc, topic, partition, offset), what=f"{topic}[{partition}]@{offset}")


async def given_reps(svc: RunningService, region: str, *rep_ids: str, at: datetime) -> None:
    await from_leads(
        svc,
        *(Source("leads", "Rep", f"rep-{r}").envelope(rep_registered(r, region, at), at) for r in rep_ids),
    )


async def given_conversion(svc: RunningService, lead_id: str, rep_id: str, region: str, at: datetime) -> None:
    converted = LeadConverted(lead_id=lead_id, rep_id=rep_id, region=region, converted_at=at)
    await from_leads(svc, Source("leads", "Lead", lead_id).envelope(converted, at, actor=(rep_id, "rep")))


# --- request bodies -------------------------------------------------------------------------


def evidence(*scores: int) -> list[dict[str, Any]]:
    """Levels 1..score of each of the six values, each with a written example."""
    return [
        {"value": value, "level": level, "example": f"{value} level {level}: went back to the customer twice"}
        for value, score in zip(VALUES, scores, strict=True)
        for level in range(1, score + 1)
    ]


async def walk_to_calibrated(svc: RunningService, review_id: str, region: str = "hangzhou") -> None:
    """Full marks from the region's manager and a calibration by hr: a star, unless a red line
    says otherwise."""
    manager = svc.token("mgr-hz", "manager", region=region)
    steps: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("manager-assessment", {"evidence": evidence(5, 5, 5, 5, 5, 5)}, manager),
        ("performance-rating", {"rating": 5, "comment": "best quarter in the region"}, manager),
        ("calibration", {"reason": "consistent with the region"}, svc.token("hr-1", "hr")),
    ]
    for step, body, headers in steps:
        response = await svc.client.post(f"/reviews/{review_id}/{step}", json=body, headers=headers)
        assert response.status_code == 200, (step, response.text)
