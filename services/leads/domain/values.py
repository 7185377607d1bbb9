"""Value objects and pure rules of the leads domain: addresses, company identity, states, reasons."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.domain import RuleViolated

# Where a lead is in its life.
POOL = "pool"  # unowned, waiting in the lead pool (公海)
ASSIGNED = "assigned"  # handed to one rep, with a follow-up deadline
PRIVATE = "private"  # kept in its rep's private pool (私池)
CONVERTED = "converted"  # a won customer
CLOSED = "closed"  # given up, with a reason
LEAD_STATUSES = (POOL, ASSIGNED, PRIVATE, CONVERTED, CLOSED)
OWNED = (ASSIGNED, PRIVATE)
ENDED = (CONVERTED, CLOSED)

# Why a lead went back to the pool without its rep asking.
FOLLOW_UP_OVERDUE = "follow_up_overdue"
NO_PROGRESS = "private_no_progress"
REP_DEACTIVATED = "rep_deactivated"
RECLAIM_REASONS = (FOLLOW_UP_OVERDUE, NO_PROGRESS, REP_DEACTIVATED)

# Why a rep let a lead go when keeping another in a full private pool.
SWAPPED = "swapped_for_private"

SALES_ROLES = ("rep", "senior_rep", "team_lead")
FOLLOW_UP_CHANNELS = ("call", "visit", "meeting", "message")

SCORE_MIN = 0.0
SCORE_MAX = 100.0


@dataclass(frozen=True)
class Address:
    """Where the customer is: the visits service measures a visit's distance from here."""

    line: str
    city: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not self.line.strip():
            raise RuleViolated("the address needs a street line", field="address.line")
        if not -90.0 <= self.lat <= 90.0:
            raise RuleViolated(f"latitude {self.lat} is not between -90 and 90", field="address.lat")
        if not -180.0 <= self.lon <= 180.0:
            raise RuleViolated(f"longitude {self.lon} is not between -180 and 180", field="address.lon")


@dataclass(frozen=True)
class NewLead:
    """What registering a lead needs (one of a bulk import, or one by hand)."""

    company_name: str
    region: str
    address: Address
    score: float
    source: str
    company_code: str | None = None  # e.g. the unified social credit code, when known


_PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)


def company_key(company_name: str, company_code: str | None = None) -> str:
    """The company's identity, so the same company is registered once however it was typed.

    The registration code wins when given; otherwise the name, width-folded (NFKC), case-folded
    and stripped of spaces and punctuation ("Acme Trading Co., Ltd." == "ACME TRADING CO LTD").
    """
    if company_code is not None and company_code.strip():
        code = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", company_code)).upper()
        if code:
            return f"code:{code}"
    name = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", company_name).casefold())
    if not name:
        raise RuleViolated("a lead needs a company name", field="company_name")
    return f"name:{name}"


def require_aware(at: datetime, field: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise RuleViolated(f"{field} must carry a timezone", field=field)
    return at


def day_of(at: datetime, zone: ZoneInfo) -> date:
    """The business day a moment falls on (a day's quota is counted in the company's timezone)."""
    return at.astimezone(zone).date()


def check_quota(quota: int, quota_min: int, quota_max: int) -> None:
    if not quota_min <= quota <= quota_max:
        raise RuleViolated(
            f"a daily quota of {quota} is outside the band {quota_min}–{quota_max}", field="daily_quota"
        )


def check_score(score: float) -> None:
    if not SCORE_MIN <= score <= SCORE_MAX:
        raise RuleViolated(f"score {score} is not between {SCORE_MIN:g} and {SCORE_MAX:g}", field="score")


def require_text(value: str, field: str, what: str) -> str:
    if not value.strip():
        raise RuleViolated(f"{what} cannot be empty", field=field)
    return value.strip()


def former_owner_locked(lost_at: datetime | None, at: datetime, lock: timedelta) -> bool:
    """A rep who lost a lead at `lost_at` may not get it back before `lost_at + lock`."""
    return lost_at is not None and at < lost_at + lock


def is_newcomer(joined_on: date, day: date, newcomer_days: int) -> bool:
    return (day - joined_on).days < newcomer_days
