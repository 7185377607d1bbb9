"""Public events of the visits service (topic `<prefix>.visits`).

Key = the rep's visit log id (one stream per rep), so a rep's visits, flags and decisions stay
in order. Evidence ids are envelope event ids: consumed leads events, or visits' own events
(a visit is also named by its visit_id).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from shared.events.base import IntegrationEvent


class VisitsEvent(IntegrationEvent):
    service: ClassVar[str] = "visits"


class GeoPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    lat: float
    lon: float
    accuracy_m: float | None = None


class VisitLogged(VisitsEvent):
    """A rep logged a customer visit: claimed time, recorded time (the service's), where, evidence."""

    event_type: ClassVar[str] = "VisitLogged"
    visit_id: str
    rep_id: str
    lead_id: str
    visited_at: datetime
    recorded_at: datetime
    position: GeoPoint | None = None
    checkin_position: GeoPoint | None = None
    photo_hash: str | None = None
    # Added compatibly (optional): the lead's region at logging, the claimed leaving time, notes.
    region: str | None = None
    left_at: datetime | None = None
    notes: str | None = None


class VisitCorrected(VisitsEvent):
    """The rep corrected a visit: the visit as corrected; the logged one stays on the topic."""

    event_type: ClassVar[str] = "VisitCorrected"
    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    visited_at: datetime
    left_at: datetime | None = None
    position: GeoPoint | None = None
    notes: str
    changed: list[str]
    reason: str
    corrected_at: datetime


class VisitFlagged(VisitsEvent):
    """A detection rule suspects a visit: a suspicion with its evidence, never a verdict."""

    event_type: ClassVar[str] = "VisitFlagged"
    flag_id: str
    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    rule: str
    severity: Literal["moderate", "serious"]
    reason: str
    evidence_event_ids: list[str]
    origin: Literal["logging", "correction", "look_back"]
    look_back_id: str | None = None
    flagged_at: datetime


class FlagConfirmed(VisitsEvent):
    """Quality control confirmed a flag (as a fabrication, or as a breach of procedure only)."""

    event_type: ClassVar[str] = "FlagConfirmed"
    flag_id: str
    visit_id: str
    rep_id: str
    region: str
    rule: str
    fabrication: bool
    decided_by: str
    reason: str
    decided_at: datetime


class FlagDismissed(VisitsEvent):
    """Quality control dismissed a flag: the suspicion did not hold."""

    event_type: ClassVar[str] = "FlagDismissed"
    flag_id: str
    visit_id: str
    rep_id: str
    region: str
    rule: str
    decided_by: str
    reason: str
    decided_at: datetime


class FabricationConfirmed(VisitsEvent):
    """A fabricated visit (虚假拜访), confirmed by a person: a red line. The reviews service opens a
    red-line case from it; a look-back over the rep's whole history follows (LookBackCompleted)."""

    event_type: ClassVar[str] = "FabricationConfirmed"
    rep_id: str
    visit_id: str
    lead_id: str
    region: str
    visited_at: datetime
    flag_ids: list[str]
    evidence_event_ids: list[str]
    decided_by: str
    reason: str
    confirmed_at: datetime
    look_back_id: str


class LookBackFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    finding_id: str  # a flag id (or a minor breach id, for severity "minor")
    visit_id: str
    rule: str
    severity: Literal["minor", "moderate", "serious"]
    new: bool  # raised by this look-back, not known before


class LookBackCompleted(VisitsEvent):
    """A look-back judged a rep's whole visit history by the rules (蟑螂理论): what else it found."""

    event_type: ClassVar[str] = "LookBackCompleted"
    look_back_id: str
    rep_id: str
    trigger_visit_id: str | None = None
    trigger_flag_ids: list[str]
    visits_examined: int
    findings: list[LookBackFinding]
    new_flag_ids: list[str]
    reason: str
    requested_by: str
    completed_at: datetime


class MinorBreach(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    breach_id: str
    visit_id: str
    lead_id: str
    region: str
    rule: str
    reason: str
    visited_at: datetime
    recorded_at: datetime


class WeeklyMinorBreachSummary(VisitsEvent):
    """A rep's minor breaches (e.g. late entries) of one week, for their manager (破窗理论)."""

    event_type: ClassVar[str] = "WeeklyMinorBreachSummary"
    rep_id: str
    regions: list[str]
    week_start: date  # Monday, 00:00 UTC
    week_end: date  # the next Monday
    breach_count: int
    breaches: list[MinorBreach]


EVENTS: tuple[type[VisitsEvent], ...] = (
    VisitLogged,
    VisitCorrected,
    VisitFlagged,
    FlagConfirmed,
    FlagDismissed,
    FabricationConfirmed,
    LookBackCompleted,
    WeeklyMinorBreachSummary,
)
