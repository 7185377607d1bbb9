"""The Manager aggregate: a regional manager, their postings, deferrals and declined rotations."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.rotation.domain.values import (
    GeoPoint,
    require_aware,
    require_planner,
    require_self_or_planner,
    require_text,
)
from shared.domain import Conflict, Meta, RuleViolated, direct_events, stable_id


@dataclass(frozen=True)
class Posting:
    """One stay in one region; the current posting has no end."""

    region: str
    start: datetime
    end: datetime | None = None
    how: str = "appointed"  # appointed | rotated | recorded (before this service knew them)


@dataclass(frozen=True)
class Deferral:
    reason: str
    until: datetime
    requested_at: datetime
    status: str = "requested"  # requested | approved | rejected
    decided_by: str = ""


@dataclass(frozen=True)
class Decline:
    plan_id: UUID
    region: str
    offered_region: str
    reason: str
    at: datetime


@direct_events
class Manager(Aggregate):
    @staticmethod
    def create_id(manager_id: str) -> UUID:
        return stable_id("manager", manager_id)

    @event("Registered")
    def __init__(
        self, manager_id: str, name: str, level: str, home_base: GeoPoint, dependants: int, meta: Meta
    ) -> None:
        require_planner(meta, "register a manager")
        self.manager_id = require_text(manager_id, "manager_id")
        self.name = require_text(name, "name")
        self.level = require_text(level, "level")
        if dependants < 0:
            raise RuleViolated("dependants cannot be negative", field="dependants")
        self.home_base = home_base
        self.dependants = dependants
        self.postings: list[Posting] = []
        self.deferral: Deferral | None = None
        self.declines: list[Decline] = []

    # --- where they are ---------------------------------------------------------------

    @property
    def current(self) -> Posting | None:
        if self.postings and self.postings[-1].end is None:
            return self.postings[-1]
        return None

    @property
    def region(self) -> str | None:
        current = self.current
        return current.region if current else None

    @property
    def since(self) -> datetime | None:
        current = self.current
        return current.start if current else None

    def recent_regions(self, postings: int) -> tuple[str, ...]:
        """Regions of the last `postings` postings, the current one included, oldest first."""
        return tuple(p.region for p in self.postings[-postings:]) if postings else ()

    def deferred_at(self, moment: datetime) -> bool:
        d = self.deferral
        return d is not None and d.status == "approved" and d.until > moment

    @event("PastPostingRecorded")
    def record_past_posting(self, region: str, start: datetime, end: datetime, meta: Meta) -> None:
        """History from before this service: it counts for the no-return rule."""
        require_planner(meta, "record a past posting")
        require_aware(start, "start")
        require_aware(end, "end")
        if not start < end <= meta.at:
            raise RuleViolated("a past posting must end after it starts and not in the future", field="end")
        for posting in self.postings:
            other_end = posting.end or datetime.max.replace(tzinfo=start.tzinfo)
            if start < other_end and posting.start < end:
                raise Conflict(
                    f"{self.manager_id} was in {posting.region} from {posting.start:%Y-%m-%d}: "
                    "postings cannot overlap",
                    field="start",
                )
        self.postings.append(Posting(require_text(region, "region"), start, end, "recorded"))
        self.postings.sort(key=lambda p: p.start)

    @event("Appointed")
    def appoint(self, manager_id: str, region: str, since: datetime, meta: Meta) -> None:
        """Put a manager without a posting into a region (a move between regions is a rotation)."""
        require_planner(meta, "appoint a manager")
        require_aware(since, "since")
        if manager_id != self.manager_id:
            raise RuleViolated("appointment names another manager", field="manager_id")
        if self.current is not None:
            raise Conflict(
                f"{self.manager_id} already manages {self.region}: move them by a rotation plan",
                field="manager_id",
            )
        if since > meta.at:
            raise RuleViolated("an appointment cannot start in the future", field="since")
        if self.postings and self.postings[-1].end is not None and since < self.postings[-1].end:
            raise Conflict("the appointment would overlap an earlier posting", field="since")
        self.postings.append(Posting(require_text(region, "region"), since))

    @event("Rotated")
    def rotate(
        self,
        manager_id: str,
        from_region: str,
        to_region: str,
        effective_at: datetime,
        plan_id: UUID,
        meta: Meta,
    ) -> None:
        current = self.current
        if manager_id != self.manager_id:
            raise RuleViolated("the move names another manager", field="manager_id")
        if current is None or current.region != from_region:
            raise Conflict(f"{self.manager_id} is no longer in {from_region}")
        if to_region == from_region:
            raise RuleViolated(f"{self.manager_id} cannot rotate into the region they hold")
        if effective_at < current.start or meta.at < effective_at:
            raise RuleViolated("a move takes effect after the posting began and not before its date")
        self.postings[-1] = replace(current, end=effective_at)
        self.postings.append(Posting(to_region, effective_at, how="rotated"))

    # --- hardship and declines ---------------------------------------------------------

    @event("DeferralRequested")
    def request_deferral(self, reason: str, until: datetime, max_days: int, meta: Meta) -> None:
        require_self_or_planner(
            meta.actor_id, meta.actor_role, self.manager_id, "ask for this manager's deferral"
        )
        require_aware(until, "until")
        if self.current is None:
            raise RuleViolated(f"{self.manager_id} has no posting to defer a rotation from")
        if self.deferral is not None and self.deferral.status == "requested":
            raise Conflict(f"a deferral of {self.manager_id} already waits for a decision")
        if until <= meta.at:
            raise RuleViolated("a deferral must end in the future", field="until")
        if until > meta.at + timedelta(days=max_days):
            raise RuleViolated(f"a deferral may last at most {max_days} days", field="until")
        self.deferral = Deferral(require_text(reason, "reason"), until, meta.at)

    def approve_deferral(self, meta: Meta) -> None:
        deferral = self.deferral
        if deferral is None or deferral.status != "requested":
            raise Conflict(f"no deferral request of {self.manager_id} waits for a decision")
        self._deferral_approved(self.manager_id, self.region or "", deferral.until, meta)

    @event("DeferralApproved")
    def _deferral_approved(self, manager_id: str, region: str, until: datetime, meta: Meta) -> None:
        require_planner(meta, "approve a deferral")
        deferral = self.deferral
        if deferral is None or deferral.status != "requested" or deferral.until != until:
            raise Conflict(f"no deferral request of {manager_id} until {until:%Y-%m-%d} is waiting")
        if until <= meta.at:
            raise RuleViolated("the deferral asked for has already ended", field="until")
        self.deferral = replace(deferral, status="approved", decided_by=meta.actor_id)

    @event("DeferralRejected")
    def reject_deferral(self, reason: str, meta: Meta) -> None:
        require_planner(meta, "reject a deferral")
        deferral = self.deferral
        if deferral is None or deferral.status != "requested":
            raise Conflict(f"no deferral request of {self.manager_id} waits for a decision")
        require_text(reason, "reason")
        self.deferral = replace(deferral, status="rejected", decided_by=meta.actor_id)

    def decline_rotation(self, plan_id: UUID, offered_region: str, reason: str, meta: Meta) -> None:
        self._rotation_declined(self.manager_id, plan_id, self.region or "", offered_region, reason, meta)

    @event("RotationDeclined")
    def _rotation_declined(
        self, manager_id: str, plan_id: UUID, region: str, offered_region: str, reason: str, meta: Meta
    ) -> None:
        require_self_or_planner(meta.actor_id, meta.actor_role, manager_id, "decline this manager's rotation")
        if self.current is None or self.current.region != region:
            raise Conflict(f"{manager_id} is not posted in {region or 'any region'}")
        if any(d.plan_id == plan_id for d in self.declines):
            raise Conflict(f"{manager_id} has already declined plan {plan_id}")
        reason = require_text(reason, "reason")
        self.declines.append(Decline(plan_id, region, offered_region, reason, meta.at))
