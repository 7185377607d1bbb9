"""What the leads API accepts (`XCreate`) and answers (`XPublic`): bad input is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal, get_args
from uuid import UUID

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from services.leads.domain.values import FOLLOW_UP_CHANNELS, SALES_ROLES, Address, NewLead

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
REGION_CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # the rotation service's region codes
USER_ID = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$"  # a user id, as in the token's subject


def _plausible_moment(moment: datetime) -> datetime:
    # Far-off dates would overflow the deadline arithmetic (a moment plus a window).
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return moment


def _plausible_day(day: date) -> date:
    if not EARLIEST.date() <= day < LATEST.date():
        raise ValueError(f"must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return day


Moment = Annotated[AwareDatetime, AfterValidator(_plausible_moment)]
Day = Annotated[date, AfterValidator(_plausible_day)]
RegionCode = Annotated[str, Field(pattern=REGION_CODE, examples=["hangzhou"])]
RepId = Annotated[str, Field(pattern=USER_ID, examples=["rep-li"])]
Text = Annotated[str, Field(min_length=1, max_length=500)]
RegionCodePath = Annotated[str, Path(pattern=REGION_CODE, description="Region code")]
RepIdPath = Annotated[str, Path(pattern=USER_ID, description="The rep's user id")]
LeadIdPath = Annotated[UUID, Path(description="The lead's id")]
SalesRole = Literal["rep", "senior_rep", "team_lead"]
Channel = Literal["call", "visit", "meeting", "message"]
assert set(SALES_ROLES) == set(get_args(SalesRole))  # the domain's list, spelt for the schema
assert set(FOLLOW_UP_CHANNELS) == set(get_args(Channel))


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- reps ---------------------------------------------------------------------------------


class RepCreate(_Create):
    rep_id: RepId = Field(description="The rep's user id, as in their token")
    name: Annotated[str, Field(min_length=1, max_length=120)]
    region: RegionCode
    joined_on: Day
    role: SalesRole = "rep"
    daily_quota: int | None = Field(default=None, ge=0, le=1000, description="Default: the policy's")
    private_pool_cap: int | None = Field(default=None, ge=0, le=10_000, description="Default: the policy's")


class RepCreatedPublic(BaseModel):
    id: UUID
    rep_id: str


class QuotaUpdate(_Create):
    daily_quota: int = Field(ge=0, le=1000, description="Within the policy's band (default 30–50)")


class PrivatePoolCapUpdate(_Create):
    private_pool_cap: int = Field(ge=0, le=10_000)


class DeactivationCreate(_Create):
    reason: Text


class RepPublic(_Public):
    rep_id: str
    name: str
    region: str
    role: str
    joined_on: date
    active: bool
    daily_quota: int
    private_pool_cap: int
    private_leads: int


class DeactivatedPublic(BaseModel):
    rep: RepPublic
    reclaimed_lead_ids: list[str] = Field(description="The leads they held, now back in the pool")


class LeadCardPublic(_Public):
    lead_id: str
    company_name: str
    region: str
    score: float
    status: str
    owner_since: datetime | None
    deadline: datetime | None = Field(description="Follow-up (assigned) or no-progress (private) deadline")
    warned: bool
    follow_ups: int


class WorkbenchPublic(_Public):
    rep_id: str
    region: str
    active: bool
    day: date
    daily_quota: int
    assigned_today: int
    quota_left_today: int
    assigned: list[LeadCardPublic] = Field(description="Soonest deadline first")
    private_pool: list[LeadCardPublic]
    private_pool_cap: int


# --- leads --------------------------------------------------------------------------------


class AddressCreate(_Create):
    line: Annotated[str, Field(min_length=1, max_length=300)]
    city: Annotated[str, Field(min_length=1, max_length=120)]
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class LeadCreate(_Create):
    company_name: Annotated[str, Field(min_length=1, max_length=300)]
    company_code: str | None = Field(
        default=None, max_length=64, description="e.g. the unified social credit code: the surest identity"
    )
    region: RegionCode
    address: AddressCreate
    score: float = Field(ge=0, le=100, allow_inf_nan=False, description="Higher is distributed first")
    source: Annotated[str, Field(min_length=1, max_length=120, examples=["trade-fair"])]

    def to_new_lead(self) -> NewLead:
        a = self.address
        return NewLead(
            company_name=self.company_name,
            region=self.region,
            address=Address(a.line, a.city, a.lat, a.lon),
            score=self.score,
            source=self.source,
            company_code=self.company_code,
        )


class LeadImportCreate(_Create):
    leads: list[LeadCreate] = Field(min_length=1, max_length=5000)


class LeadCreatedPublic(BaseModel):
    id: UUID


class DuplicatePublic(_Public):
    index: int = Field(description="Position in the import")
    company_name: str
    existing_lead_id: str


class RefusalPublic(_Public):
    index: int
    field: str | None
    message: str


class LeadImportPublic(_Public):
    registered: list[str] = Field(description="Ids of the leads registered")
    duplicates: list[DuplicatePublic]
    refused: list[RefusalPublic]


class OwnershipPublic(_Public):
    rep_id: str
    since: datetime
    kept_private_at: datetime | None
    until: datetime | None
    ended_by: str | None = Field(description="reclaimed, released, converted or closed")
    reason: str | None


class LeadPublic(_Public):
    lead_id: str
    company_name: str
    company_key: str
    region: str
    address_line: str
    city: str
    lat: float
    lon: float
    score: float
    source: str
    status: str
    owner_id: str | None
    deadline: datetime | None
    registered_at: datetime
    follow_ups: int
    last_follow_up_at: datetime | None
    outcome_reason: str | None
    owners: list[OwnershipPublic] = Field(description="The full owner history, oldest first")


class AssignmentCreate(_Create):
    rep_id: RepId


class FollowUpCreate(_Create):
    channel: Channel = "call"
    note: str = Field(default="", max_length=2000)
    followed_up_at: Moment | None = Field(default=None, description="Default: now (the service's clock)")


class KeepPrivateCreate(_Create):
    return_lead_id: UUID | None = Field(
        default=None, description="At the cap: the private lead given back to the pool in exchange"
    )


class ReleaseCreate(_Create):
    reason: Text


class ConversionCreate(_Create):
    note: str = Field(default="", max_length=2000)


class ClosureCreate(_Create):
    reason: Text


# --- distribution, the clock and views ----------------------------------------------------


class DistributionCreate(_Create):
    day: Day | None = Field(default=None, description="Default: today, in the business timezone")
    region: RegionCode | None = Field(default=None, description="Default: every region (admin only)")


class SpreadPublic(_Public):
    reps: int
    min: int
    max: int
    mean: float
    newcomers: int
    newcomer_min: int
    newcomer_mean: float
    veterans: int
    veteran_max: int
    veteran_mean: float
    fair: bool = Field(description="Newcomers got, on average, no fewer leads than veterans")


class DistributionPublic(_Public):
    distribution_id: str
    day: date
    region: str | None
    reps: int
    leads_available: int
    quota_asked: int
    assigned: int
    per_rep: dict[str, int]
    spread: SpreadPublic


class ReclaimedPublic(BaseModel):
    reclaimed_lead_ids: list[str]


class RegionPoolPublic(_Public):
    region: str
    counts: dict[str, int] = Field(description="Leads per status: pool, assigned, private, converted, closed")


class RepLoadPublic(_Public):
    rep_id: str
    name: str
    active: bool
    daily_quota: int
    assigned_today: int
    assigned: int
    private: int
    private_pool_cap: int
    overdue: int


class RunSummaryPublic(_Public):
    distribution_id: str
    day: date
    region: str | None
    reps: int
    leads_available: int
    assigned: int
    spread: dict[str, float]
    completed_at: datetime


class RegionViewPublic(_Public):
    region: str
    manager_id: str | None = Field(description="Who manages it now, as the rotation service said")
    day: date
    counts: dict[str, int]
    reps: list[RepLoadPublic]
    top_pool_leads: list[LeadCardPublic]
    last_distribution: RunSummaryPublic | None
