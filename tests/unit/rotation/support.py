"""Small builders the rotation tests share: places on the map, who acts, and a staffed country."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from services.rotation.application import RotationApplication
from services.rotation.domain.due import ManagerRecord
from services.rotation.domain.values import GeoPoint
from shared.domain import Meta

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

CITIES: dict[str, tuple[float, float]] = {
    "hangzhou": (30.27, 120.15),
    "shanghai": (31.23, 121.47),
    "suzhou": (31.30, 120.58),
    "nanjing": (32.06, 118.80),
    "wuhan": (30.59, 114.31),
    "beijing": (39.90, 116.40),
    "guangzhou": (23.13, 113.26),
    "chengdu": (30.57, 104.07),
}


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def point(city: str) -> GeoPoint:
    lat, lon = CITIES[city]
    return GeoPoint(lat, lon)


def hr(when: datetime) -> Meta:
    return Meta("hr-1", "hr", when, correlation_id="c-hr")


def as_manager(manager_id: str, when: datetime) -> Meta:
    return Meta(manager_id, "manager", when)


def record(
    manager_id: str, region: str, since: datetime, home: str | None = None, **kw: object
) -> ManagerRecord:
    return ManagerRecord(manager_id, region, since, point(home or region), **kw)  # type: ignore[arg-type]


def staff(app: RotationApplication, postings: dict[str, tuple[str, datetime]], *, when: datetime) -> None:
    """Open every city, register one manager per posting (home = their region), appoint them."""
    for city, (lat, lon) in CITIES.items():
        app.open_region(city, city.title(), lat, lon, hr(when))
    for manager_id, (region, since) in postings.items():
        lat, lon = CITIES[region]
        app.register_manager(manager_id, manager_id.title(), "regional", lat, lon, hr(when))
        app.appoint_manager(manager_id, region, hr(when), since=since)


def move_pairs(app: RotationApplication, plan_id: UUID) -> dict[str, str]:
    return {m.manager_id: m.to_region for m in app.plan(plan_id).moves}
