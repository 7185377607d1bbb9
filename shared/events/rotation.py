"""Public events of the rotation service (topic `<prefix>.rotation`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.events.base import IntegrationEvent


class RotationEvent(IntegrationEvent):
    service: ClassVar[str] = "rotation"


class ManagerRotated(RotationEvent):
    event_type: ClassVar[str] = "ManagerRotated"
    manager_id: str
    from_region: str | None
    to_region: str
    effective_at: datetime
    plan_id: str | None = None


EVENTS: tuple[type[RotationEvent], ...] = (ManagerRotated,)
