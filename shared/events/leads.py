"""Public events of the leads service (topic `<prefix>.leads`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.events.base import IntegrationEvent


class LeadsEvent(IntegrationEvent):
    service: ClassVar[str] = "leads"


class LeadAssigned(LeadsEvent):
    event_type: ClassVar[str] = "LeadAssigned"
    lead_id: str
    rep_id: str
    region: str
    assigned_at: datetime
    follow_up_deadline: datetime
    distribution_id: str | None = None


class LeadReclaimed(LeadsEvent):
    event_type: ClassVar[str] = "LeadReclaimed"
    lead_id: str
    rep_id: str
    region: str
    reason: str
    reclaimed_at: datetime


EVENTS: tuple[type[LeadsEvent], ...] = (LeadAssigned, LeadReclaimed)
