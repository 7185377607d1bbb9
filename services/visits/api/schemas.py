"""What the visits API accepts (`XCreate`) and answers (`XPublic`): bad input is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from services.visits.domain.values import RULES

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
ID = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}$"
PHOTO_HASH = r"^[A-Za-z0-9:+/=_-]{8,128}$"


def _plausible(moment: datetime) -> datetime:
    # Far outside any working life, times would overflow the rules' arithmetic.
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return moment


def _monday(day: date) -> date:
    if day.weekday() != 0:
        raise ValueError("must be a Monday (weeks run Monday 00:00 UTC to Monday)")
    return day


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
Monday = Annotated[date, AfterValidator(_monday)]
Id = Annotated[str, Field(pattern=ID, examples=["lead-42"])]
Reason = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"\S")]
RULE_PATTERN = "^(" + "|".join(RULES) + ")$"
IdPath = Annotated[str, Path(pattern=ID)]
VisitIdPath = Annotated[str, Path(pattern=ID, description="A visit id")]
FlagIdPath = Annotated[str, Path(pattern=ID, description="A flag id")]


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Create(BaseModel):
    # An unknown field is an error, so a rep id in the body is refused, never silently used.
    model_config = ConfigDict(extra="forbid")


class GeoPointCreate(_Create):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(
        default=None, ge=0, le=100_000, allow_inf_nan=False, description="The fix's accuracy radius"
    )


class GeoPointPublic(_Public):
    lat: float
    lon: float
    accuracy_m: float | None = None


class CheckInCreate(_Create):
    """Evidence taken on site by the app at check-in."""

    position: GeoPointCreate | None = Field(default=None, description="The device's fix at check-in")
    photo_hash: str | None = Field(default=None, pattern=PHOTO_HASH, description="Hash of the photo taken")


# --- visits ---------------------------------------------------------------------------------


class VisitCreate(_Create):
    """A visit of the calling rep (the rep comes from the token, never from the body)."""

    lead_id: Id
    visited_at: Moment = Field(description="When the visit began (timezone-aware); not in the future")
    left_at: Moment | None = Field(default=None, description="When the rep left, if known")
    position: GeoPointCreate | None = Field(default=None, description="Where the rep says it was")
    checkin: CheckInCreate | None = None
    notes: str = Field(default="", max_length=4000)
    client_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The app's own id for this visit: sending it again logs nothing new",
    )


class VisitCreatedPublic(BaseModel):
    id: str = Field(description="The visit id")
    recorded_at: datetime = Field(description="When the service recorded it (its clock)")


class VisitCorrectionCreate(_Create):
    """Only what changes; the visit as first logged stays in the record."""

    reason: Reason
    visited_at: Moment | None = None
    left_at: Moment | None = None
    position: GeoPointCreate | None = None
    notes: str | None = Field(default=None, max_length=4000)


class CorrectionPublic(_Public):
    corrected_at: datetime
    corrected_by: str
    reason: str
    changed: list[str]
    event_id: str


class VisitPublic(_Public):
    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    visited_at: datetime
    left_at: datetime | None
    recorded_at: datetime
    position: GeoPointPublic | None
    checkin_position: GeoPointPublic | None
    photo_hash: str | None
    notes: str
    event_id: str = Field(description="The VisitLogged event's id on the visits topic")
    corrections: list[CorrectionPublic]
    flag_ids: list[str] | None = Field(description="Flags about it; null when hidden from the caller")
    fabrication_confirmed: bool | None = Field(description="null when hidden from the caller")


# --- the quality-control desk ---------------------------------------------------------------


class FlagPublic(_Public):
    flag_id: str
    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    rule: str
    severity: str
    reason: str
    evidence: list[str] = Field(description="Ids of the events that prove it (visit ids, event ids)")
    origin: str
    look_back_id: str | None
    flagged_at: datetime
    event_id: str
    status: str
    fabrication: bool
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


class FlagConfirmation(_Create):
    reason: Reason
    fabrication: bool = Field(
        description="True: the visit was fabricated (a red line: the reviews service opens a case, "
        "and the rep's whole history is looked back over). False: a breach of procedure only."
    )


class FlagDismissal(_Create):
    reason: Reason


class FlagDecisionPublic(BaseModel):
    flag: FlagPublic
    look_back_id: str | None = Field(description="The look-back a confirmed fabrication started")


class LookBackCreate(_Create):
    reason: Reason


class LookBackCreatedPublic(BaseModel):
    id: str


class LookBackFindingPublic(_Public):
    finding_id: str
    visit_id: str
    rule: str
    severity: str
    new: bool


class LookBackPublic(_Public):
    look_back_id: str
    rep_id: str
    trigger_visit_id: str | None
    trigger_flag_ids: list[str]
    visits_examined: int
    findings: list[LookBackFindingPublic]
    reason: str
    completed_at: datetime
    completed_by: str
    event_id: str


# --- minor breaches (破窗理论) ---------------------------------------------------------------


class MinorBreachPublic(_Public):
    breach_id: str
    rep_id: str
    visit_id: str
    lead_id: str
    region: str
    rule: str
    reason: str
    evidence: list[str]
    visited_at: datetime
    recorded_at: datetime
    week_start: date
    summarised: bool


class SummaryBreachPublic(_Public):
    breach_id: str
    visit_id: str
    lead_id: str
    region: str
    rule: str
    reason: str
    visited_at: datetime
    recorded_at: datetime


class WeeklySummaryPublic(_Public):
    rep_id: str
    regions: list[str]
    week_start: date
    breaches: list[SummaryBreachPublic]
    issued_at: datetime
    event_id: str


class SummaryCreate(_Create):
    week_start: Monday = Field(description="The Monday of a finished week")


class SummarisedPublic(BaseModel):
    week_start: date
    rep_ids: list[str] = Field(description="Reps whose week was summarised now")


# --- ownership and audit -------------------------------------------------------------------


class OwnershipPublic(_Public):
    lead_id: str
    rep_id: str
    at: datetime
    owned: bool
    owner_rep_id: str | None
    explanation: str
    evidence: list[str] = Field(description="Ids of the leads events that prove the answer")


class OwnershipPeriodPublic(_Public):
    rep_id: str
    began_at: datetime
    began_by: str
    ended_at: datetime | None
    ended_by: str | None
    ended_how: str | None


class AuditEntryPublic(_Public):
    at: datetime
    source: str
    event_type: str
    event_id: str
    rep_id: str | None
    lead_id: str | None
    visit_id: str | None
    region: str | None
    summary: str
    evidence: list[str]
