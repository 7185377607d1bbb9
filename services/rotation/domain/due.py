"""Who is due for rotation as of a date: tenure against the policy, how overdue, and regions at risk."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.rotation.domain.values import GeoPoint, add_months
from services.rotation.policy import RotationPolicy


@dataclass(frozen=True)
class ManagerRecord:
    """A manager as planning sees them: plain data, no aggregate."""

    manager_id: str
    region: str | None
    since: datetime | None
    home_base: GeoPoint
    dependants: int = 0
    # When set and later than the planning date, the manager stays put (a deferral, a decline).
    held_until: datetime | None = None
    held_because: str = ""

    def held_at(self, moment: datetime) -> bool:
        return self.held_until is not None and self.held_until > moment


@dataclass(frozen=True)
class DueManager:
    manager_id: str
    region: str
    since: datetime
    due_at: datetime
    overdue: timedelta  # zero on the day they fall due
    past_max: bool
    held_until: datetime | None = None
    held_because: str = ""

    @property
    def overdue_days(self) -> int:
        return self.overdue.days


@dataclass(frozen=True)
class RegionAtRisk:
    """A region whose manager has stayed past the maximum tenure."""

    region: str
    manager_id: str
    since: datetime
    max_at: datetime
    past_max_by: timedelta


@dataclass(frozen=True)
class DueList:
    as_of: datetime
    due: tuple[DueManager, ...]
    at_risk: tuple[RegionAtRisk, ...]

    @property
    def manager_ids(self) -> tuple[str, ...]:
        return tuple(d.manager_id for d in self.due)


def due_at(since: datetime, policy: RotationPolicy) -> datetime:
    return add_months(since, policy.due_after_months)


def eligible_at(since: datetime, policy: RotationPolicy) -> datetime:
    return add_months(since, policy.min_tenure_months)


def max_at(since: datetime, policy: RotationPolicy) -> datetime:
    return add_months(since, policy.max_tenure_months)


def due_list(managers: Iterable[ManagerRecord], as_of: datetime, policy: RotationPolicy) -> DueList:
    """Everyone whose tenure has reached the policy on `as_of`, most overdue first.

    Due from the very moment the tenure is reached; a risk only once strictly past the maximum.
    A held (deferred) manager is still listed as due, with the hold, so nobody is forgotten.
    """
    due: list[DueManager] = []
    at_risk: list[RegionAtRisk] = []
    for m in managers:
        if m.region is None or m.since is None:
            continue
        falls_due = due_at(m.since, policy)
        if as_of < falls_due:
            continue
        limit = max_at(m.since, policy)
        past_max = as_of > limit
        held = m.held_at(as_of)
        due.append(
            DueManager(
                manager_id=m.manager_id,
                region=m.region,
                since=m.since,
                due_at=falls_due,
                overdue=as_of - falls_due,
                past_max=past_max,
                held_until=m.held_until if held else None,
                held_because=m.held_because if held else "",
            )
        )
        if past_max:
            at_risk.append(RegionAtRisk(m.region, m.manager_id, m.since, limit, as_of - limit))
    due.sort(key=lambda d: (-d.overdue, d.manager_id))
    at_risk.sort(key=lambda r: (-r.past_max_by, r.region))
    return DueList(as_of, tuple(due), tuple(at_risk))
