"""Builders the leads tests share: who acts, when, leads and reps, and a topic that delivers
other services' events to the application as the platform's consumer will."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.leads.application import LeadsApplication
from services.leads.domain.values import Address, NewLead
from services.leads.policy import LeadsPolicy
from shared.application import Delivery
from shared.domain import Meta, stable_id
from shared.events.base import Envelope
from shared.events.catalog import event_id_for
from shared.events.rotation import ManagerAppointed, ManagerRotated
from shared.events.visits import VisitLogged

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Hangzhou
DAY = date(2026, 3, 2)
POLICY = LeadsPolicy()
HANGZHOU = Address("1 Wensan Road", "Hangzhou", 30.2741, 120.1551)
NINGBO = Address("8 Zhongshan Road", "Ningbo", 29.8683, 121.5440)


def at(hours: float = 0, *, days: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, seconds=seconds)


def admin(when: datetime = T0, correlation_id: str = "") -> Meta:
    return Meta("admin-1", "admin", when, correlation_id=correlation_id)


def system(when: datetime = T0, correlation_id: str = "") -> Meta:
    return Meta("leads-scheduler", "system", when, correlation_id=correlation_id)


def manager(manager_id: str, when: datetime = T0) -> Meta:
    return Meta(manager_id, "manager", when)


def rep(rep_id: str, when: datetime = T0) -> Meta:
    return Meta(rep_id, "rep", when)


def new_lead(
    company: str,
    score: float = 50,
    region: str = "hangzhou",
    code: str | None = None,
    address: Address = HANGZHOU,
) -> NewLead:
    return NewLead(company, region, address, score, "trade-fair", company_code=code)


def app(policy: LeadsPolicy = POLICY, env: dict[str, str] | None = None) -> LeadsApplication:
    return LeadsApplication(env=env if env is not None else {}, policy=policy)


def hire(
    leads: LeadsApplication,
    rep_id: str,
    region: str = "hangzhou",
    joined_on: date = date(2024, 1, 1),
    quota: int = 30,
    cap: int = 20,
) -> None:
    leads.register_rep(
        rep_id, rep_id.title(), region, joined_on, admin(), daily_quota=quota, private_pool_cap=cap
    )


def stock(
    leads: LeadsApplication, n: int, region: str = "hangzhou", prefix: str = "Co", score: float = 50
) -> list[str]:
    """n pool leads in a region, scores descending from `score` so the order is known."""
    result = leads.register_leads(
        [new_lead(f"{prefix} {region} {i}", score - i * 0.01, region) for i in range(n)], admin()
    )
    assert not result.duplicates and not result.refused
    return list(result.registered)


def assign(leads: LeadsApplication, company: str, rep_id: str, when: datetime = T0, score: float = 50) -> str:
    lead_id = str(leads.register_lead(new_lead(company, score), admin(when)))
    leads.assign_lead(lead_id, rep_id, admin(when))
    return lead_id


def stored(leads: LeadsApplication, aggregate_id: Any) -> list[str]:
    """The names of an aggregate's stored events, oldest first."""
    return [type(e).__name__ for e in leads.events.get(aggregate_id)]


@dataclass
class Topic:
    """Another service's topic as the leads consumer sees it: envelopes in order, one offset each."""

    leads: LeadsApplication
    name: str
    consumer: str = "ironarmy.leads"
    offset: int = -1
    versions: dict[str, int] = field(default_factory=dict)
    last: tuple[Delivery, Any, Envelope] | None = None

    def deliver(self, payload: Any, aggregate: str, actor: tuple[str, str], when: datetime) -> bool:
        self.offset += 1
        version = self.versions.get(aggregate, 0) + 1
        self.versions[aggregate] = version
        aggregate_id = str(stable_id(self.name, aggregate))
        envelope = Envelope(
            event_id=event_id_for(aggregate_id, version),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            aggregate_type=self.name,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=when,
            recorded_at=when,
            actor_id=actor[0],
            actor_role=actor[1],
            payload=payload.model_dump(mode="json"),
        )
        delivery = Delivery(self.consumer, f"ironarmy.{self.name}", 0, self.offset, aggregate_id, version)
        self.last = (delivery, payload, envelope)
        return self.leads.handlers()[payload.event_type](delivery, payload, envelope)

    def redeliver_last(self) -> bool:
        """The last event again under a new offset, as a relay resends after a crash."""
        assert self.last is not None
        delivery, payload, envelope = self.last
        self.offset += 1
        again = Delivery(
            delivery.consumer,
            delivery.topic,
            0,
            self.offset,
            delivery.source_aggregate_id,
            delivery.source_version,
        )
        return self.leads.handlers()[envelope.event_type](again, payload, envelope)


def visit(
    topic: Topic, lead_id: str, rep_id: str, visited_at: datetime, logged_at: datetime | None = None
) -> bool:
    logged_at = logged_at or visited_at
    payload = VisitLogged(
        visit_id=f"v-{lead_id[:8]}-{visited_at:%d%H%M%S}",
        rep_id=rep_id,
        lead_id=lead_id,
        visited_at=visited_at,
        recorded_at=logged_at,
    )
    return topic.deliver(payload, f"log-{rep_id}", (rep_id, "rep"), logged_at)


def appoint(topic: Topic, manager_id: str, region: str, when: datetime = T0) -> bool:
    payload = ManagerAppointed(manager_id=manager_id, region=region, appointed_at=when)
    return topic.deliver(payload, manager_id, ("hr-1", "hr"), when)


def rotate(topic: Topic, manager_id: str, from_region: str | None, to_region: str, when: datetime) -> bool:
    payload = ManagerRotated(
        manager_id=manager_id, from_region=from_region, to_region=to_region, effective_at=when
    )
    return topic.deliver(payload, manager_id, ("rotation", "system"), when)
