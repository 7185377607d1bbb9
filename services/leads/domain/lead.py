"""A lead: one company's way through the pool, its owners, follow-ups and outcome."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.leads.domain.values import (
    ASSIGNED,
    CLOSED,
    CONVERTED,
    ENDED,
    FOLLOW_UP_CHANNELS,
    FOLLOW_UP_OVERDUE,
    NO_PROGRESS,
    OWNED,
    POOL,
    PRIVATE,
    RECLAIM_REASONS,
    Address,
    check_score,
    former_owner_locked,
    require_text,
)
from shared.domain import Conflict, Forbidden, Meta, RuleViolated, direct_events, stable_id


@dataclass(frozen=True)
class Ownership:
    """One stretch of a rep owning the lead, and how it ended."""

    rep_id: str
    since: datetime
    kept_private_at: datetime | None = None
    until: datetime | None = None
    ended_by: str | None = None  # reclaimed, released, converted, closed
    reason: str | None = None


@direct_events
class Lead(Aggregate):
    """Owned by the pool, by one rep (assigned or private), or ended (converted, closed).

    Every event carries the region, and those about an owner carry the rep, so each one is a
    self-contained fact on the leads topic.
    """

    @staticmethod
    def create_id(company_key: str) -> UUID:
        return stable_id("lead", company_key)

    @event("Registered")
    def __init__(
        self,
        company_key: str,
        company_name: str,
        region: str,
        address: Address,
        score: float,
        source: str,
        meta: Meta,
    ) -> None:
        check_score(score)
        self.company_key = company_key
        self.company_name = require_text(company_name, "company_name", "the company name")
        self.region = require_text(region, "region", "the region")
        self.address = address
        self.score = float(score)
        self.source = require_text(source, "source", "the source")
        self.registered_at = meta.at
        self.status = POOL
        self.owner_id: str | None = None
        self.owner_since: datetime | None = None
        # Assigned: the follow-up deadline. Private: the no-progress deadline.
        self.deadline: datetime | None = None
        self.warned_for: datetime | None = None  # the deadline a FollowUpDue was sent for
        self.follow_ups = 0
        self.last_follow_up_at: datetime | None = None
        self.assigned_day: date | None = None
        # Rep → when they last lost this lead; containers are replaced, never changed in place,
        # so a shallow copy (see `clone`) shares nothing that can change.
        self.lost_by: dict[str, datetime] = {}
        self.owners: tuple[Ownership, ...] = ()
        self.outcome_reason: str | None = None

    def clone(self) -> Lead:
        """A private copy to change and save, taken from a read model's replica."""
        # What copy.copy does, without its protocol lookups: a distribution clones 400,000.
        twin = object.__new__(type(self))
        state = self.__dict__.copy()
        state["_pending_events"] = []
        twin.__dict__ = state
        return twin

    # --- rules ---------------------------------------------------------------------------

    def _require_status(self, allowed: tuple[str, ...], doing: str) -> None:
        if self.status not in allowed:
            raise Conflict(f"cannot {doing}: the lead is {self.status}", field="lead_id", status=self.status)

    def _require_owner(self, rep_id: str, doing: str) -> None:
        if self.owner_id != rep_id:
            raise Forbidden(f"cannot {doing}: the lead is not {rep_id}'s", field="rep_id")

    def _end_ownership(self, at: datetime, ended_by: str, reason: str | None) -> None:
        if self.owners and self.owners[-1].until is None:
            last = replace(self.owners[-1], until=at, ended_by=ended_by, reason=reason)
            self.owners = (*self.owners[:-1], last)

    def _back_to_pool(self, rep_id: str, at: datetime, ended_by: str, reason: str) -> None:
        self._end_ownership(at, ended_by, reason)
        self.lost_by = {**self.lost_by, rep_id: at}
        self.status = POOL
        self.owner_id = None
        self.owner_since = None
        self.deadline = None
        self.warned_for = None

    def is_overdue(self, at: datetime) -> bool:
        """Past its deadline: a follow-up (assigned) or any progress (private) came too late."""
        return self.status in OWNED and self.deadline is not None and at > self.deadline

    def lost_at(self, rep_id: str) -> datetime | None:
        return self.lost_by.get(rep_id)

    # --- assignment ------------------------------------------------------------------------

    def assign(
        self,
        rep_id: str,
        *,
        day: date,
        follow_up_window: timedelta,
        former_owner_lock: timedelta,
        distribution_id: str | None,
        meta: Meta,
    ) -> None:
        self.trigger_event(
            self.Assigned,
            rep_id=rep_id,
            region=self.region,
            day=day,
            follow_up_deadline=meta.at + follow_up_window,
            former_owner_lock=former_owner_lock,
            distribution_id=distribution_id,
            meta=meta,
        )

    class Assigned(Aggregate.Event):
        """Given to a rep, by a manager or by a distribution run (`distribution_id`).

        An event class of its own rather than an `@event` method, unlike the others: a daily
        distribution triggers 400,000 of them and applies each again to the read model, and the
        library decorator's argument matching per call was about half of that work (before
        `shared.domain.direct_events` spared the other methods it). Same topic and fields.
        """

        rep_id: str
        region: str
        day: date
        follow_up_deadline: datetime
        former_owner_lock: timedelta
        distribution_id: str | None
        meta: Meta

        def apply(self, aggregate: Any) -> None:
            aggregate._assigned(
                self.rep_id, self.day, self.follow_up_deadline, self.former_owner_lock, self.meta
            )

    def _assigned(
        self, rep_id: str, day: date, follow_up_deadline: datetime, former_owner_lock: timedelta, meta: Meta
    ) -> None:
        self._require_status((POOL,), "assign it")
        lost_at = self.lost_by.get(rep_id)
        if former_owner_locked(lost_at, meta.at, former_owner_lock):
            assert lost_at is not None
            raise RuleViolated(
                f"{rep_id} lost this lead on {lost_at:%Y-%m-%d %H:%M} and cannot get it back "
                f"before {lost_at + former_owner_lock:%Y-%m-%d %H:%M}",
                field="rep_id",
            )
        self.status = ASSIGNED
        self.owner_id = rep_id
        self.owner_since = meta.at
        self.deadline = follow_up_deadline
        self.warned_for = None
        self.assigned_day = day
        self.owners = (*self.owners, Ownership(rep_id=rep_id, since=meta.at))

    # --- follow-up and the clock -------------------------------------------------------------

    def record_follow_up(
        self,
        rep_id: str,
        *,
        channel: str,
        followed_up_at: datetime,
        follow_up_window: timedelta,
        no_progress_window: timedelta,
        meta: Meta,
        note: str = "",
        visit_id: str | None = None,
    ) -> None:
        window = no_progress_window if self.status == PRIVATE else follow_up_window
        next_deadline = followed_up_at + window
        if self.deadline is not None and self.deadline > next_deadline:
            next_deadline = self.deadline  # a late-arriving, earlier visit never shortens the time
        self._followed_up(
            rep_id=rep_id,
            region=self.region,
            channel=channel,
            followed_up_at=followed_up_at,
            next_deadline=next_deadline,
            note=note,
            visit_id=visit_id,
            meta=meta,
        )

    def counts_as_follow_up(self, rep_id: str, followed_up_at: datetime) -> bool:
        """Would a follow-up by this rep at this moment count (owner, while owned, in time)?"""
        return (
            self.status in OWNED
            and self.owner_id == rep_id
            and self.owner_since is not None
            and followed_up_at >= self.owner_since
            and (self.deadline is None or followed_up_at <= self.deadline)
        )

    @event("FollowedUp")
    def _followed_up(
        self,
        rep_id: str,
        region: str,
        channel: str,
        followed_up_at: datetime,
        next_deadline: datetime,
        note: str,
        visit_id: str | None,
        meta: Meta,
    ) -> None:
        self._require_status(OWNED, "record a follow-up")
        self._require_owner(rep_id, "record a follow-up")
        if channel not in FOLLOW_UP_CHANNELS:
            raise RuleViolated(f"unknown follow-up channel {channel!r}", field="channel")
        if followed_up_at > meta.at:
            raise RuleViolated("a follow-up cannot be in the future", field="followed_up_at")
        assert self.owner_since is not None
        if followed_up_at < self.owner_since:
            raise RuleViolated("the follow-up happened before the rep owned the lead", field="followed_up_at")
        if self.deadline is not None and followed_up_at > self.deadline:
            raise RuleViolated(
                f"the deadline {self.deadline:%Y-%m-%d %H:%M} has passed; the lead goes back to the pool",
                field="followed_up_at",
            )
        self.follow_ups += 1
        self.last_follow_up_at = followed_up_at
        self.deadline = next_deadline
        self.warned_for = None

    def warn_due(self, *, warn_before: timedelta, meta: Meta) -> None:
        assert self.owner_id is not None and self.deadline is not None
        self._follow_up_warned(
            rep_id=self.owner_id,
            region=self.region,
            pool=self.status,
            deadline=self.deadline,
            warn_before=warn_before,
            meta=meta,
        )

    def warning_due(self, at: datetime, warn_before: timedelta) -> bool:
        """Inside the warning window of its deadline, and not yet warned for this deadline."""
        return (
            self.status in OWNED
            and self.deadline is not None
            and self.deadline - warn_before <= at <= self.deadline
            and self.warned_for != self.deadline
        )

    @event("FollowUpWarned")
    def _follow_up_warned(
        self, rep_id: str, region: str, pool: str, deadline: datetime, warn_before: timedelta, meta: Meta
    ) -> None:
        self._require_status(OWNED, "warn of its deadline")
        if deadline != self.deadline or self.warned_for == deadline:
            raise Conflict("this deadline has already been warned of", field="lead_id")
        if not deadline - warn_before <= meta.at <= deadline:
            raise RuleViolated("the deadline is not within the warning window", field="at")
        self.warned_for = deadline

    def reclaim(self, reason: str, meta: Meta) -> None:
        assert self.owner_id is not None or self.status not in OWNED
        self._reclaimed(rep_id=self.owner_id or "", region=self.region, reason=reason, meta=meta)

    @event("Reclaimed")
    def _reclaimed(self, rep_id: str, region: str, reason: str, meta: Meta) -> None:
        self._require_status(OWNED, "reclaim it")
        if reason not in RECLAIM_REASONS:
            raise RuleViolated(f"unknown reclaim reason {reason!r}", field="reason")
        if reason == FOLLOW_UP_OVERDUE and not (self.status == ASSIGNED and self.is_overdue(meta.at)):
            raise RuleViolated("the lead is not overdue for follow-up", field="reason")
        if reason == NO_PROGRESS and not (self.status == PRIVATE and self.is_overdue(meta.at)):
            raise RuleViolated("the private lead is within its no-progress limit", field="reason")
        self._back_to_pool(rep_id, meta.at, "reclaimed", reason)

    # --- the private pool ------------------------------------------------------------------

    def keep_private(
        self, rep_id: str, *, no_progress_window: timedelta, meta: Meta, returning_lead_id: str | None = None
    ) -> None:
        self._kept_private(
            rep_id=rep_id,
            region=self.region,
            no_progress_deadline=meta.at + no_progress_window,
            returning_lead_id=returning_lead_id,
            meta=meta,
        )

    @event("KeptPrivate")
    def _kept_private(
        self,
        rep_id: str,
        region: str,
        no_progress_deadline: datetime,
        returning_lead_id: str | None,
        meta: Meta,
    ) -> None:
        if self.status == PRIVATE and self.owner_id == rep_id:
            raise Conflict("the lead is already in this rep's private pool", field="lead_id")
        self._require_status((ASSIGNED,), "keep it private")
        self._require_owner(rep_id, "keep it private")
        if self.is_overdue(meta.at):
            raise RuleViolated(
                "the follow-up is overdue: an overdue lead cannot be kept private", field="lead_id"
            )
        self.status = PRIVATE
        self.deadline = no_progress_deadline
        self.warned_for = None
        last = self.owners[-1]
        self.owners = (*self.owners[:-1], replace(last, kept_private_at=meta.at))

    def release(self, rep_id: str, reason: str, meta: Meta, swapped_for_lead_id: str | None = None) -> None:
        self._released(
            rep_id=rep_id,
            region=self.region,
            from_pool=self.status,
            reason=reason,
            swapped_for_lead_id=swapped_for_lead_id,
            meta=meta,
        )

    @event("Released")
    def _released(
        self,
        rep_id: str,
        region: str,
        from_pool: str,
        reason: str,
        swapped_for_lead_id: str | None,
        meta: Meta,
    ) -> None:
        self._require_status(OWNED, "release it")
        self._require_owner(rep_id, "release it")
        reason = require_text(reason, "reason", "the reason for releasing a lead")
        self._back_to_pool(rep_id, meta.at, "released", reason)

    # --- outcomes ------------------------------------------------------------------------------

    def convert(self, meta: Meta, note: str = "") -> None:
        self._require_status(OWNED, "convert it")
        assert self.owner_id is not None
        self._converted(rep_id=self.owner_id, region=self.region, from_pool=self.status, note=note, meta=meta)

    @event("Converted")
    def _converted(self, rep_id: str, region: str, from_pool: str, note: str, meta: Meta) -> None:
        self._require_status(OWNED, "convert it")
        self._require_owner(rep_id, "convert it")
        self._end_ownership(meta.at, CONVERTED, note or None)
        self.status = CONVERTED
        self.deadline = None
        self.outcome_reason = note or None

    def close(self, reason: str, meta: Meta) -> None:
        self._closed(
            rep_id=self.owner_id, region=self.region, from_pool=self.status, reason=reason, meta=meta
        )

    @event("Closed")
    def _closed(self, rep_id: str | None, region: str, from_pool: str, reason: str, meta: Meta) -> None:
        if self.status in ENDED:
            raise Conflict(f"the lead is already {self.status}", field="lead_id", status=self.status)
        reason = require_text(reason, "reason", "the reason for closing a lead")
        self._end_ownership(meta.at, CLOSED, reason)
        self.status = CLOSED
        self.deadline = None
        self.outcome_reason = reason
