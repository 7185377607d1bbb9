"""Public events of the leads service (topic `<prefix>.leads`).

Key = the aggregate id: a lead's events (aggregate_type "Lead") stay in order, as do a rep's
("Rep"). Every lead event names its region; those about an owner name the rep. `lead_id` is the
lead's aggregate id as a string.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from shared.events.base import IntegrationEvent


class LeadsEvent(IntegrationEvent):
    service: ClassVar[str] = "leads"


class LeadRegistered(LeadsEvent):
    """A lead joined the pool. The customer's coordinates let visits measure a visit's distance."""

    event_type: ClassVar[str] = "LeadRegistered"
    lead_id: str
    company_name: str
    company_key: str
    region: str
    address_line: str
    city: str
    customer_lat: float
    customer_lon: float
    score: float
    source: str
    registered_at: datetime


class LeadAssigned(LeadsEvent):
    event_type: ClassVar[str] = "LeadAssigned"
    lead_id: str
    rep_id: str
    region: str
    assigned_at: datetime
    follow_up_deadline: datetime
    distribution_id: str | None = None


class FollowUpDue(LeadsEvent):
    """A warning: the deadline is near (assigned: follow-up; private: no-progress limit)."""

    event_type: ClassVar[str] = "FollowUpDue"
    lead_id: str
    rep_id: str
    region: str
    pool: Literal["assigned", "private"]
    deadline: datetime
    warned_at: datetime


class LeadFollowedUp(LeadsEvent):
    """The owner worked the lead: recorded here, or a logged visit (channel "visit", visit_id)."""

    event_type: ClassVar[str] = "LeadFollowedUp"
    lead_id: str
    rep_id: str
    region: str
    channel: str
    followed_up_at: datetime
    next_deadline: datetime
    visit_id: str | None = None


class LeadReclaimed(LeadsEvent):
    event_type: ClassVar[str] = "LeadReclaimed"
    lead_id: str
    rep_id: str
    region: str
    reason: str  # follow_up_overdue, private_no_progress, rep_deactivated
    reclaimed_at: datetime


class LeadKeptPrivate(LeadsEvent):
    """The rep moved the lead into their private pool (returning another when at the cap)."""

    event_type: ClassVar[str] = "LeadKeptPrivate"
    lead_id: str
    rep_id: str
    region: str
    kept_at: datetime
    no_progress_deadline: datetime
    returned_lead_id: str | None = None


class LeadReleased(LeadsEvent):
    """The rep gave the lead back to the pool (reason "swapped_for_private" in a swap at the cap)."""

    event_type: ClassVar[str] = "LeadReleased"
    lead_id: str
    rep_id: str
    region: str
    from_pool: Literal["assigned", "private"]
    reason: str
    released_at: datetime
    swapped_for_lead_id: str | None = None


class LeadConverted(LeadsEvent):
    event_type: ClassVar[str] = "LeadConverted"
    lead_id: str
    rep_id: str
    region: str
    converted_at: datetime
    note: str = ""


class LeadClosed(LeadsEvent):
    event_type: ClassVar[str] = "LeadClosed"
    lead_id: str
    rep_id: str | None  # the owner when closed; None for a lead closed in the pool
    region: str
    reason: str
    closed_at: datetime


class RepRegistered(LeadsEvent):
    event_type: ClassVar[str] = "RepRegistered"
    rep_id: str
    name: str
    region: str
    role: str
    joined_on: date
    active: bool
    daily_quota: int
    private_pool_cap: int
    registered_at: datetime


class RepDeactivated(LeadsEvent):
    """The rep gets no more leads; what they held went back to the pool (LeadReclaimed each)."""

    event_type: ClassVar[str] = "RepDeactivated"
    rep_id: str
    reason: str
    deactivated_at: datetime


class RepReactivated(LeadsEvent):
    event_type: ClassVar[str] = "RepReactivated"
    rep_id: str
    reactivated_at: datetime


class LeadsDistributed(LeadsEvent):
    """A daily distribution run: how many leads it gave out, and how evenly."""

    event_type: ClassVar[str] = "LeadsDistributed"
    distribution_id: str
    day: date
    region: str | None
    reps: int
    leads_available: int
    quota_asked: int
    assigned: int
    spread_min: int
    spread_max: int
    newcomer_mean: float
    veteran_mean: float
    completed_at: datetime


EVENTS: tuple[type[LeadsEvent], ...] = (
    LeadRegistered,
    LeadAssigned,
    FollowUpDue,
    LeadFollowedUp,
    LeadReclaimed,
    LeadKeptPrivate,
    LeadReleased,
    LeadConverted,
    LeadClosed,
    RepRegistered,
    RepDeactivated,
    RepReactivated,
    LeadsDistributed,
)
