"""Public events of the visits service (topic `<prefix>.visits`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.events.base import IntegrationEvent


class VisitsEvent(IntegrationEvent):
    service: ClassVar[str] = "visits"


class GeoPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    lat: float
    lon: float
    accuracy_m: float | None = None


class VisitLogged(VisitsEvent):
    event_type: ClassVar[str] = "VisitLogged"
    visit_id: str
    rep_id: str
    lead_id: str
    visited_at: datetime
    recorded_at: datetime
    position: GeoPoint | None = None
    checkin_position: GeoPoint | None = None
    photo_hash: str | None = None


EVENTS: tuple[type[VisitsEvent], ...] = (VisitLogged,)
