"""Value objects of the visit log: positions, a visit's facts, findings, and their validation."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from shared.domain import RuleViolated

# The detection rules, in the order they run (the order makes flags deterministic).
NOT_THE_OWNER = "not_the_owner"
LATE_ENTRY = "late_entry"
BULK_ENTRY = "bulk_entry"
IMPOSSIBLE_TRAVEL = "impossible_travel"
OVERLAPPING_VISITS = "overlapping_visits"
FAR_FROM_CUSTOMER = "far_from_customer"
MISSING_CHECKIN_EVIDENCE = "missing_checkin_evidence"
DUPLICATE_VISIT = "duplicate_visit"
RULES: tuple[str, ...] = (
    NOT_THE_OWNER,
    LATE_ENTRY,
    BULK_ENTRY,
    IMPOSSIBLE_TRAVEL,
    OVERLAPPING_VISITS,
    FAR_FROM_CUSTOMER,
    MISSING_CHECKIN_EVIDENCE,
    DUPLICATE_VISIT,
)

Severity = Literal["minor", "moderate", "serious"]
# A minor finding is a breach for the manager's weekly summary, never a fabrication flag.
MINOR: Severity = "minor"
MODERATE: Severity = "moderate"
SERIOUS: Severity = "serious"

FlagStatus = Literal["open", "confirmed", "dismissed"]
FlagOrigin = Literal["logging", "correction", "look_back"]

_PHOTO_HASH = re.compile(r"^[A-Za-z0-9:+/=_-]{8,128}$")
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class GeoPoint:
    """A position (WGS84 degrees) with the device's accuracy radius in metres, when it gave one."""

    lat: float
    lon: float
    accuracy_m: float | None = None

    def distance_m(self, other: GeoPoint) -> float:
        return haversine_m(self.lat, self.lon, other.lat, other.lon)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class VisitFacts:
    """A visit as the rules see it: who, which lead, when claimed and recorded, where, what evidence."""

    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    visited_at: datetime  # claimed by the rep
    left_at: datetime | None  # claimed by the rep, if given
    recorded_at: datetime  # the service's clock when it was logged: never the rep's say
    position: GeoPoint | None  # where the rep says the visit was
    checkin_position: GeoPoint | None  # evidence: the fix taken on site at check-in
    photo_hash: str | None  # evidence: the hash of the photo taken on site

    def ends_at(self, assumed_duration: timedelta) -> datetime:
        return self.left_at if self.left_at is not None else self.visited_at + assumed_duration

    @property
    def where(self) -> GeoPoint | None:
        """The best position we have: the on-site fix, else the claimed one."""
        return self.checkin_position or self.position


@dataclass(frozen=True)
class Finding:
    """What one rule found about one visit: a suspicion with its evidence, never a verdict."""

    visit_id: str
    rule: str
    severity: Severity
    reason: str
    evidence: tuple[str, ...]  # ids of the events that prove it: visit ids, leads event ids
    related_visit_ids: tuple[str, ...] = ()  # other visits of the rep the finding involves


# --- validation (pure: the caller gives the clock's time) -----------------------------------


def as_utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise RuleViolated(f"{field} must include a timezone (e.g. 2026-05-01T09:30:00+08:00)", field=field)
    return value.astimezone(UTC)


def check_position(point: GeoPoint | None, field: str) -> GeoPoint | None:
    if point is None:
        return None
    if not (math.isfinite(point.lat) and -90.0 <= point.lat <= 90.0):
        raise RuleViolated(f"latitude {point.lat} is out of range (-90 to 90)", field=f"{field}.lat")
    if not (math.isfinite(point.lon) and -180.0 <= point.lon <= 180.0):
        raise RuleViolated(f"longitude {point.lon} is out of range (-180 to 180)", field=f"{field}.lon")
    if point.accuracy_m is not None and not (math.isfinite(point.accuracy_m) and point.accuracy_m >= 0):
        raise RuleViolated("accuracy must be a distance in metres, 0 or more", field=f"{field}.accuracy_m")
    return GeoPoint(float(point.lat), float(point.lon), point.accuracy_m)


def check_photo_hash(photo_hash: str | None) -> str | None:
    if photo_hash is None or photo_hash == "":
        return None
    if not _PHOTO_HASH.match(photo_hash):
        raise RuleViolated(
            "photo_hash must be the photo's hash (8–128 letters, digits or :+/=_-), not the photo",
            field="photo_hash",
        )
    return photo_hash


def check_visit_times(
    visited_at: datetime,
    left_at: datetime | None,
    *,
    now: datetime,
    future_tolerance: timedelta,
    max_backdating: timedelta,
) -> tuple[datetime, datetime | None]:
    """The claimed times, in UTC, or RuleViolated naming the field that is wrong."""
    visited_at = as_utc(visited_at, "visited_at")
    if visited_at > now + future_tolerance:
        raise RuleViolated(
            f"visited_at {fmt(visited_at)} is in the future (it is now {fmt(now)})", field="visited_at"
        )
    if visited_at < now - max_backdating:
        raise RuleViolated(
            f"visited_at {fmt(visited_at)} is more than {human(max_backdating)} ago; "
            "such an old visit cannot be logged",
            field="visited_at",
        )
    if left_at is None:
        return visited_at, None
    left_at = as_utc(left_at, "left_at")
    if left_at < visited_at:
        raise RuleViolated("left_at must not be before visited_at", field="left_at")
    if left_at > now + future_tolerance:
        raise RuleViolated(f"left_at {fmt(left_at)} is in the future (it is now {fmt(now)})", field="left_at")
    return visited_at, left_at


# --- words for people -------------------------------------------------------------------------


def fmt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def human(delta: timedelta) -> str:
    """A duration as a person says it: '3 h 05 min', '2 d 4 h', '45 s'."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def week_bounds(week_start: date) -> tuple[datetime, datetime]:
    """A week runs Monday 00:00 UTC to the next Monday 00:00 UTC."""
    if week_start.weekday() != 0:
        raise RuleViolated(f"week_start {week_start} is not a Monday", field="week_start")
    start = datetime(week_start.year, week_start.month, week_start.day, tzinfo=UTC)
    return start, start + timedelta(days=7)


def week_of(at: datetime) -> date:
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def previous_week_start(now: datetime) -> date:
    """The Monday of the last full week before `now`."""
    return week_of(now) - timedelta(days=7)
