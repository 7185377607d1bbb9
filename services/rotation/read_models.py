"""In-memory views of the rotation service, built from its own stored events: the roster and the plans."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.rotation.domain.due import ManagerRecord
from services.rotation.domain.manager import Decline, Deferral, Posting
from services.rotation.domain.plan import OPEN, RotationPlan
from services.rotation.domain.solver import Move, Stay
from services.rotation.domain.values import GeoPoint
from services.rotation.policy import RotationPolicy
from shared.application import ReadModel


@dataclass(frozen=True)
class RegionView:
    code: str
    name: str
    location: GeoPoint
    opened_at: datetime
    manager_id: str | None
    since: datetime | None


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a manager's history, oldest first."""

    at: datetime
    kind: str  # posting_recorded | appointed | rotated | deferral_requested | deferral_approved | ...
    region: str
    detail: str


@dataclass(frozen=True)
class ManagerView:
    manager_id: str
    name: str
    level: str
    home_base: GeoPoint
    dependants: int
    region: str | None
    since: datetime | None
    postings: tuple[Posting, ...]
    deferral: Deferral | None
    declines: tuple[Decline, ...]
    history: tuple[HistoryEntry, ...]


@dataclass(frozen=True)
class PlanView:
    plan_id: UUID
    status: str
    as_of: datetime
    effective_at: datetime
    moves: tuple[Move, ...]
    staying: tuple[Stay, ...]
    total_cost: float
    planned_by: str
    approved_by: str
    withdrawn_because: str


@dataclass
class _Manager:
    manager_id: str
    name: str
    level: str
    home_base: GeoPoint
    dependants: int
    postings: list[Posting] = field(default_factory=list)
    deferral: Deferral | None = None
    declines: list[Decline] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)

    @property
    def current(self) -> Posting | None:
        return self.postings[-1] if self.postings and self.postings[-1].end is None else None

    def view(self) -> ManagerView:
        current = self.current
        return ManagerView(
            manager_id=self.manager_id,
            name=self.name,
            level=self.level,
            home_base=self.home_base,
            dependants=self.dependants,
            region=current.region if current else None,
            since=current.start if current else None,
            postings=tuple(self.postings),
            deferral=self.deferral,
            declines=tuple(self.declines),
            history=tuple(self.history),
        )

    def record(self, policy: RotationPolicy) -> ManagerRecord:
        """The manager as the planner sees them; a deferral or a recent decline holds them."""
        current = self.current
        holds: list[tuple[datetime, str]] = []
        if self.deferral is not None and self.deferral.status == "approved":
            holds.append((self.deferral.until, "deferred (hardship)"))
        if self.declines:
            last = self.declines[-1]
            hold_end = last.at + timedelta(days=policy.decline_hold_days)
            holds.append((hold_end, f"declined the move to {last.offered_region} on {last.at:%Y-%m-%d}"))
        held_until, held_because = max(holds) if holds else (None, "")
        return ManagerRecord(
            manager_id=self.manager_id,
            region=current.region if current else None,
            since=current.start if current else None,
            home_base=self.home_base,
            dependants=self.dependants,
            held_until=held_until,
            held_because=held_because,
        )


class Roster(ReadModel):
    """Regions, who manages each, managers with their postings and history, and every plan."""

    def __init__(self) -> None:
        self.regions: dict[str, RegionView] = {}
        self.region_manager: dict[str, str] = {}
        self.managers: dict[str, _Manager] = {}
        self._by_aggregate: dict[UUID, _Manager] = {}
        self.plans: dict[UUID, PlanView] = {}

    def apply(self, domain_event: Any) -> None:
        e = domain_event
        kind = type(e).__qualname__
        if kind == "Region.Opened":
            self.regions[e.code] = RegionView(e.code, e.name, e.location, e.meta.at, None, None)
        elif kind.startswith("Manager."):
            self._apply_manager(kind, e)
        elif kind.startswith(f"{RotationPlan.__name__}."):
            self._apply_plan(kind, e)

    def _apply_manager(self, kind: str, e: Any) -> None:
        if kind == "Manager.Registered":
            row = _Manager(e.manager_id, e.name, e.level, e.home_base, e.dependants)
            self.managers[row.manager_id] = row
            self._by_aggregate[e.originator_id] = row
            return
        m = self._by_aggregate[e.originator_id]
        at: datetime = e.meta.at
        if kind == "Manager.PastPostingRecorded":
            m.postings.append(Posting(e.region, e.start, e.end, "recorded"))
            m.postings.sort(key=lambda p: p.start)
            m.history.append(
                HistoryEntry(at, "posting_recorded", e.region, f"{e.start:%Y-%m-%d} to {e.end:%Y-%m-%d}")
            )
        elif kind == "Manager.Appointed":
            m.postings.append(Posting(e.region, e.since))
            self._take(e.region, m.manager_id, e.since)
            m.history.append(HistoryEntry(e.since, "appointed", e.region, f"appointed by {e.meta.actor_id}"))
        elif kind == "Manager.Rotated":
            m.postings[-1] = replace(m.postings[-1], end=e.effective_at)
            m.postings.append(Posting(e.to_region, e.effective_at, how="rotated"))
            self._leave(e.from_region, m.manager_id)
            self._take(e.to_region, m.manager_id, e.effective_at)
            m.history.append(
                HistoryEntry(
                    e.effective_at, "rotated", e.to_region, f"from {e.from_region}, plan {e.plan_id}"
                )
            )
        elif kind == "Manager.DeferralRequested":
            m.deferral = Deferral(e.reason, e.until, at)
            m.history.append(
                HistoryEntry(
                    at, "deferral_requested", self._region_of(m), f"until {e.until:%Y-%m-%d}: {e.reason}"
                )
            )
        elif kind == "Manager.DeferralApproved":
            assert m.deferral is not None
            m.deferral = replace(m.deferral, status="approved", decided_by=e.meta.actor_id)
            m.history.append(
                HistoryEntry(
                    at, "deferral_approved", e.region, f"until {e.until:%Y-%m-%d} by {e.meta.actor_id}"
                )
            )
        elif kind == "Manager.DeferralRejected":
            assert m.deferral is not None
            m.deferral = replace(m.deferral, status="rejected", decided_by=e.meta.actor_id)
            m.history.append(HistoryEntry(at, "deferral_rejected", self._region_of(m), e.reason))
        elif kind == "Manager.RotationDeclined":
            m.declines.append(Decline(e.plan_id, e.region, e.offered_region, e.reason, at))
            m.history.append(
                HistoryEntry(at, "rotation_declined", e.region, f"declined {e.offered_region}: {e.reason}")
            )

    def _apply_plan(self, kind: str, e: Any) -> None:
        plan_id: UUID = e.originator_id
        if kind == "RotationPlan.Planned":
            self.plans[plan_id] = PlanView(
                plan_id=plan_id,
                status="proposed",
                as_of=e.as_of,
                effective_at=e.effective_at,
                moves=tuple(e.moves),
                staying=tuple(e.staying),
                total_cost=e.total_cost,
                planned_by=e.meta.actor_id,
                approved_by="",
                withdrawn_because="",
            )
            return
        plan = self.plans[plan_id]
        if kind == "RotationPlan.Approved":
            self.plans[plan_id] = replace(plan, status="approved", approved_by=e.meta.actor_id)
        elif kind == "RotationPlan.Withdrawn":
            self.plans[plan_id] = replace(plan, status="withdrawn", withdrawn_because=e.reason)
        elif kind == "RotationPlan.CarriedOut":
            self.plans[plan_id] = replace(plan, status="carried_out")

    def _take(self, region: str, manager_id: str, since: datetime) -> None:
        self.region_manager[region] = manager_id
        if region in self.regions:
            self.regions[region] = replace(self.regions[region], manager_id=manager_id, since=since)

    def _leave(self, region: str, manager_id: str) -> None:
        # In a cycle of moves the next holder may already have arrived: only clear our own seat.
        if self.region_manager.get(region) == manager_id:
            del self.region_manager[region]
            if region in self.regions:
                self.regions[region] = replace(self.regions[region], manager_id=None, since=None)

    @staticmethod
    def _region_of(m: _Manager) -> str:
        current = m.current
        return current.region if current else ""

    # --- what the application asks ------------------------------------------------------

    def open_plans(self) -> list[PlanView]:
        return [p for p in self.plans.values() if p.status in OPEN]

    def planning_data(
        self, policy: RotationPolicy
    ) -> tuple[list[ManagerRecord], dict[str, GeoPoint], dict[str, list[str]]]:
        records = [m.record(policy) for m in self.managers.values()]
        locations = {code: r.location for code, r in self.regions.items()}
        history = {m.manager_id: [p.region for p in m.postings] for m in self.managers.values()}
        return records, locations, history
