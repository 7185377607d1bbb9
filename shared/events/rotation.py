"""Public events of the rotation service (topic `<prefix>.rotation`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.events.base import IntegrationEvent


class RotationEvent(IntegrationEvent):
    service: ClassVar[str] = "rotation"


class RegionOpened(RotationEvent):
    event_type: ClassVar[str] = "RegionOpened"
    region: str
    name: str
    lat: float
    lon: float
    opened_at: datetime


class ManagerAppointed(RotationEvent):
    """A manager now manages a region (first posting or a vacancy filled): who has its rights."""

    event_type: ClassVar[str] = "ManagerAppointed"
    manager_id: str
    region: str
    appointed_at: datetime


class PlannedMove(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    manager_id: str
    from_region: str
    to_region: str
    cost: float


class RotationPlanned(RotationEvent):
    event_type: ClassVar[str] = "RotationPlanned"
    plan_id: str
    as_of: datetime
    effective_at: datetime
    moves: list[PlannedMove]
    staying_manager_ids: list[str]
    total_cost: float
    planned_by: str


class RotationApproved(RotationEvent):
    event_type: ClassVar[str] = "RotationApproved"
    plan_id: str
    approved_by: str
    approved_at: datetime
    effective_at: datetime


class ManagerRotated(RotationEvent):
    event_type: ClassVar[str] = "ManagerRotated"
    manager_id: str
    from_region: str | None
    to_region: str
    effective_at: datetime
    plan_id: str | None = None


class RotationDeferred(RotationEvent):
    """A hardship deferral was approved. The reason stays private to the rotation service."""

    event_type: ClassVar[str] = "RotationDeferred"
    manager_id: str
    region: str
    until: datetime
    approved_by: str
    approved_at: datetime


class RotationDeclined(RotationEvent):
    """A manager declined a planned move; the plan is withdrawn. The reason stays private."""

    event_type: ClassVar[str] = "RotationDeclined"
    manager_id: str
    plan_id: str
    region: str
    offered_region: str
    declined_at: datetime


EVENTS: tuple[type[RotationEvent], ...] = (
    RegionOpened,
    ManagerAppointed,
    RotationPlanned,
    RotationApproved,
    ManagerRotated,
    RotationDeferred,
    RotationDeclined,
)
