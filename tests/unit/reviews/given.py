"""Test helpers for the reviews service: who acts when, events from other services, evidence."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from services.reviews.application import ReviewsApplication
from services.reviews.domain.values import VALUES, ValueEvidence
from shared.application import Delivery
from shared.domain import Meta
from shared.events.base import Envelope
from shared.events.leads import LeadConverted, RepDeactivated, RepReactivated, RepRegistered
from shared.events.visits import FabricationConfirmed, VisitLogged

# Late in 2026Q1: reviews of the quarter can be opened.
Q1 = "2026Q1"
Q2 = "2026Q2"
IN_Q1 = datetime(2026, 3, 20, 9, tzinfo=UTC)
IN_Q2 = datetime(2026, 6, 20, 9, tzinfo=UTC)


def meta(actor_id: str, role: str, at: datetime = IN_Q1) -> Meta:
    return Meta(actor_id=actor_id, actor_role=role, at=at, correlation_id="c-1")


def hr(at: datetime = IN_Q1) -> Meta:
    return meta("hr-1", "hr", at)


def manager(at: datetime = IN_Q1, actor_id: str = "mgr-1") -> Meta:
    return meta(actor_id, "manager", at)


def rep(rep_id: str, at: datetime = IN_Q1) -> Meta:
    return meta(rep_id, "rep", at)


def evidence(*scores: int) -> list[ValueEvidence]:
    """Levels 1..score of each value, in VALUES order, each with a written example."""
    return [
        ValueEvidence(value, level, f"{value} level {level}: visited the customer twice and wrote it up")
        for value, score in zip(VALUES, scores, strict=True)
        for level in range(1, score + 1)
    ]


def rep_registered(rep_id: str, region: str, *, active: bool = True, at: datetime = IN_Q1) -> RepRegistered:
    return RepRegistered(
        rep_id=rep_id,
        name=f"Rep {rep_id}",
        region=region,
        role="rep",
        joined_on=date(2025, 9, 1),
        active=active,
        daily_quota=30,
        private_pool_cap=20,
        registered_at=at,
    )


def rep_deactivated(rep_id: str, at: datetime = IN_Q1) -> RepDeactivated:
    return RepDeactivated(rep_id=rep_id, reason="left the company", deactivated_at=at)


def rep_reactivated(rep_id: str, at: datetime = IN_Q1) -> RepReactivated:
    return RepReactivated(rep_id=rep_id, reactivated_at=at)


def lead_converted(
    lead_id: str, rep_id: str, at: datetime = IN_Q1, region: str = "hangzhou"
) -> LeadConverted:
    return LeadConverted(lead_id=lead_id, rep_id=rep_id, region=region, converted_at=at)


def visit_logged(visit_id: str, rep_id: str, visited_at: datetime = IN_Q1) -> VisitLogged:
    return VisitLogged(
        visit_id=visit_id,
        rep_id=rep_id,
        lead_id=f"lead-of-{visit_id}",
        visited_at=visited_at,
        recorded_at=visited_at + timedelta(minutes=5),
    )


def fabrication_confirmed(
    rep_id: str, visit_id: str, region: str, at: datetime = IN_Q1
) -> FabricationConfirmed:
    return FabricationConfirmed(
        rep_id=rep_id,
        visit_id=visit_id,
        lead_id=f"lead-of-{visit_id}",
        region=region,
        visited_at=at - timedelta(days=2),
        flag_ids=["flag-1"],
        evidence_event_ids=["evt-owner-1", "evt-visit-1"],
        decided_by="qc-1",
        reason="the customer says nobody came that day",
        confirmed_at=at,
        look_back_id="look-back-1",
    )


@dataclass
class Topics:
    """Delivers other services' events to the application as the Kafka consumer would."""

    app: ReviewsApplication
    offsets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    versions: dict[str, int] = field(default_factory=dict)
    sent: list[tuple[Delivery, Any, Envelope]] = field(default_factory=list)

    def deliver(
        self,
        handler: Callable[[Delivery, Any, Envelope], bool],
        event: Any,
        *,
        source: str,
        at: datetime = IN_Q1,
        actor: tuple[str, str] = ("system", "system"),
    ) -> bool:
        version = self.versions.get(source, 0) + 1
        self.versions[source] = version
        envelope = Envelope(
            event_id=uuid4(),
            event_type=type(event).__name__,
            schema_version=1,
            aggregate_type="Source",
            aggregate_id=source,
            aggregate_version=version,
            occurred_at=at,
            recorded_at=at + timedelta(seconds=1),
            actor_id=actor[0],
            actor_role=actor[1],
            payload={},
        )
        delivery = Delivery("reviews", "t.source", 0, next(self.offsets), source, version)
        self.sent.append((delivery, event, envelope))
        return handler(delivery, event, envelope)

    def redeliver_last(self, handler: Callable[[Delivery, Any, Envelope], bool]) -> bool:
        delivery, event, envelope = self.sent[-1]
        return handler(delivery, event, envelope)

    def reps(self, region: str, *rep_ids: str) -> None:
        for rep_id in rep_ids:
            self.deliver(self.app.on_rep_registered, rep_registered(rep_id, region), source=f"rep-{rep_id}")


def ids(values: list[UUID]) -> set[str]:
    return {str(v) for v in values}
