"""Value objects and pure helpers of the rotation domain: places, distances, calendar months, roles."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime

from shared.domain import Forbidden, Meta, RuleViolated

EARTH_RADIUS_KM = 6371.0088
PLANNERS = ("hr", "admin")  # who plans rotations, approves plans and deferrals


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0:
            raise RuleViolated(f"latitude {self.lat} is not between -90 and 90", field="lat")
        if not -180.0 <= self.lon <= 180.0:
            raise RuleViolated(f"longitude {self.lon} is not between -180 and 180", field="lon")


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance between two points, in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months later (the 31st becomes the month's last day)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def require_aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RuleViolated(f"{field} must carry a timezone", field=field)


def require_planner(meta: Meta, doing: str) -> None:
    if meta.actor_role not in PLANNERS:
        raise Forbidden(f"only hr or admin may {doing} (you are '{meta.actor_role}')")


def require_self_or_planner(actor_id: str, actor_role: str, manager_id: str, doing: str) -> None:
    """A manager acts for themself; hr and admin may act for any manager."""
    if actor_role in PLANNERS:
        return
    if actor_role == "manager" and actor_id == manager_id:
        return
    raise Forbidden(f"only {manager_id} themself, hr or admin may {doing}")


def require_text(value: str, field: str) -> str:
    text = value.strip()
    if not text:
        raise RuleViolated(f"{field} must not be empty", field=field)
    return text
