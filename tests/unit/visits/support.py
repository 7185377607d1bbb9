"""Small fakes for the visits tests: a leads topic that delivers the real leads events, and actors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from services.visits.application import VisitsApplication
from services.visits.domain.values import GeoPoint
from shared.application import Delivery
from shared.domain import Meta, stable_id
from shared.events.base import Envelope
from shared.events.catalog import event_id_for
from shared.events.leads import (
    LeadAssigned,
    LeadClosed,
    LeadConverted,
    LeadKeptPrivate,
    LeadReclaimed,
    LeadRegistered,
    LeadReleased,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning
HANGZHOU = GeoPoint(30.2741, 120.1551, 10.0)
HANGZHOU_OFFICE = GeoPoint(30.2800, 120.1600, 10.0)  # ~800 m from HANGZHOU
SHANGHAI = GeoPoint(31.2304, 121.4737, 10.0)  # ~165 km from HANGZHOU
PHOTO = "sha256:" + "ab" * 32


def at(hours: float = 0, *, days: int = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def rep(rep_id: str, when: datetime) -> Meta:
    return Meta(actor_id=rep_id, actor_role="rep", at=when, correlation_id="c", causation_id="r")


def qc(when: datetime, who: str = "qc-1") -> Meta:
    return Meta(actor_id=who, actor_role="qc", at=when)


@dataclass
class LeadsTopic:
    """The leads topic as the visits consumer sees it: envelopes in order, one offset each."""

    app: VisitsApplication
    consumer: str = "ironarmy.visits"
    offset: int = -1
    versions: dict[str, int] = field(default_factory=dict)
    last_event_id: str = ""
    last: tuple[Delivery, Any, Envelope] | None = None

    def _deliver(self, event_type: str, lead_id: str, payload: Any, when: datetime, actor: str) -> str:
        self.offset += 1
        version = self.versions.get(lead_id, 0) + 1
        self.versions[lead_id] = version
        aggregate_id = str(stable_id("lead", lead_id))
        event_id: UUID = event_id_for(aggregate_id, version)
        envelope = Envelope(
            event_id=event_id,
            event_type=event_type,
            schema_version=1,
            aggregate_type="Lead",
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=when,
            recorded_at=when,
            actor_id=actor,
            actor_role="system" if actor == "leads" else "manager",
            payload={},
        )
        delivery = Delivery(self.consumer, "ironarmy.leads", 0, self.offset, aggregate_id, version)
        handler = self.app.handlers()[event_type]
        assert handler(delivery, payload, envelope)
        self.last_event_id = str(event_id)
        self.last = (delivery, payload, envelope)
        return str(event_id)

    def republish_last(self) -> bool:
        """The last event again under a new offset, as a relay resends after a crash."""
        assert self.last is not None
        delivery, payload, envelope = self.last
        self.offset += 1
        again = Delivery(
            delivery.consumer,
            delivery.topic,
            delivery.partition,
            self.offset,
            delivery.source_aggregate_id,
            delivery.source_version,
        )
        return self.app.handlers()[envelope.event_type](again, payload, envelope)

    def registered(
        self, lead_id: str, when: datetime, region: str = "hangzhou", customer: GeoPoint | None = HANGZHOU
    ) -> str:
        payload = LeadRegistered(
            lead_id=lead_id,
            company_name=f"Company {lead_id}",
            company_key=lead_id,
            region=region,
            address_line="1 West Lake Road",
            city=region,
            # The leads service always sends coordinates; out of range stands for "cannot be placed".
            customer_lat=customer.lat if customer else 91.0,
            customer_lon=customer.lon if customer else 0.0,
            score=0.5,
            source="trade-fair",
            registered_at=when,
        )
        return self._deliver("LeadRegistered", lead_id, payload, when, "leads")

    def assigned(self, lead_id: str, rep_id: str, when: datetime, region: str = "hangzhou") -> str:
        payload = LeadAssigned(
            lead_id=lead_id,
            rep_id=rep_id,
            region=region,
            assigned_at=when,
            follow_up_deadline=when + timedelta(days=2),
        )
        return self._deliver("LeadAssigned", lead_id, payload, when, "leads")

    def reclaimed(self, lead_id: str, rep_id: str, when: datetime, region: str = "hangzhou") -> str:
        payload = LeadReclaimed(
            lead_id=lead_id, rep_id=rep_id, region=region, reason="no follow-up in 48 h", reclaimed_at=when
        )
        return self._deliver("LeadReclaimed", lead_id, payload, when, "leads")

    def kept_private(self, lead_id: str, rep_id: str, when: datetime) -> str:
        payload = LeadKeptPrivate(
            lead_id=lead_id,
            rep_id=rep_id,
            region="hangzhou",
            kept_at=when,
            no_progress_deadline=when + timedelta(days=30),
        )
        return self._deliver("LeadKeptPrivate", lead_id, payload, when, rep_id)

    def released(self, lead_id: str, rep_id: str, when: datetime) -> str:
        payload = LeadReleased(
            lead_id=lead_id,
            rep_id=rep_id,
            region="hangzhou",
            from_pool="private",
            reason="not interested",
            released_at=when,
        )
        return self._deliver("LeadReleased", lead_id, payload, when, rep_id)

    def converted(self, lead_id: str, rep_id: str, when: datetime) -> str:
        payload = LeadConverted(lead_id=lead_id, rep_id=rep_id, region="hangzhou", converted_at=when)
        return self._deliver("LeadConverted", lead_id, payload, when, rep_id)

    def closed(self, lead_id: str, rep_id: str | None, when: datetime) -> str:
        payload = LeadClosed(
            lead_id=lead_id, rep_id=rep_id, region="hangzhou", reason="company dissolved", closed_at=when
        )
        return self._deliver("LeadClosed", lead_id, payload, when, "leads")

    def owned_lead(
        self, lead_id: str, rep_id: str, since: datetime, customer: GeoPoint | None = HANGZHOU
    ) -> str:
        """A lead registered and assigned to a rep; returns the assignment's event id."""
        self.registered(lead_id, since - timedelta(hours=1), customer=customer)
        return self.assigned(lead_id, rep_id, since)
