"""What the rotation API accepts (`XCreate`) and answers (`XPublic`): bad input is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from services.rotation.domain.due import DueList
from services.rotation.domain.solver import Move, Plan
from services.rotation.read_models import ManagerView, PlanView

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
REGION_CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MANAGER_ID = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$"


def _plausible(moment: datetime) -> datetime:
    # Dates far outside any career would overflow the calendar arithmetic of plans and tenures.
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
RegionCode = Annotated[str, Field(pattern=REGION_CODE, examples=["hangzhou"])]
ManagerId = Annotated[str, Field(pattern=MANAGER_ID, examples=["m-wang"])]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Name = Annotated[str, Field(min_length=1, max_length=120)]
RegionCodePath = Annotated[str, Path(pattern=REGION_CODE, description="Region code")]
ManagerIdPath = Annotated[str, Path(pattern=MANAGER_ID, description="Manager id (their user id)")]


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Place(_Public):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


# --- regions ------------------------------------------------------------------------------


class RegionCreate(BaseModel):
    code: RegionCode
    name: Name
    location: Place


class RegionCreatedPublic(BaseModel):
    id: UUID
    code: str


class RegionPublic(_Public):
    code: str
    name: str
    location: Place
    opened_at: datetime
    manager_id: str | None = Field(description="Who manages it now (None while vacant)")
    since: datetime | None


# --- managers -----------------------------------------------------------------------------


class ManagerCreate(BaseModel):
    manager_id: ManagerId = Field(description="The manager's user id, as in their token")
    name: Name
    level: Annotated[str, Field(min_length=1, max_length=40, examples=["regional"])]
    home_base: Place = Field(description="Where their family lives: moves far from it cost more")
    dependants: int = Field(default=0, ge=0, le=20, description="People who move with them")


class ManagerCreatedPublic(BaseModel):
    id: UUID
    manager_id: str


class AppointmentCreate(BaseModel):
    region: RegionCode
    since: Moment | None = Field(default=None, description="Backdates the posting; default now")


class PastPostingCreate(BaseModel):
    region: RegionCode
    start: Moment
    end: Moment


class PostingPublic(_Public):
    region: str
    start: datetime
    end: datetime | None
    how: str


class DeferralPublic(_Public):
    reason: str
    until: datetime
    requested_at: datetime
    status: str
    decided_by: str


class DeclinePublic(_Public):
    plan_id: UUID
    region: str
    offered_region: str
    reason: str
    at: datetime


class MovePublic(_Public):
    manager_id: str
    from_region: str
    to_region: str
    home_km: float
    move_km: float
    distance_cost: float
    family_cost: float
    early_cost: float
    cost: float
    explanation: str


class OfferPublic(BaseModel):
    """A move an open plan has for this manager."""

    plan_id: UUID
    status: str
    effective_at: datetime
    move: MovePublic


class ManagerPublic(_Public):
    manager_id: str
    name: str
    level: str
    home_base: Place
    dependants: int
    region: str | None
    since: datetime | None
    postings: list[PostingPublic]
    deferral: DeferralPublic | None
    declines: list[DeclinePublic]
    offers: list[OfferPublic] = Field(default_factory=list)

    @classmethod
    def of(cls, view: ManagerView, offers: tuple[tuple[PlanView, Move], ...] = ()) -> ManagerPublic:
        public = cls.model_validate(view)
        public.offers = [
            OfferPublic(
                plan_id=plan.plan_id,
                status=plan.status,
                effective_at=plan.effective_at,
                move=MovePublic.model_validate(move),
            )
            for plan, move in offers
        ]
        return public


class HistoryEntryPublic(_Public):
    at: datetime
    kind: str
    region: str
    detail: str


# --- hardship and declines ----------------------------------------------------------------


class DeferralCreate(BaseModel):
    reason: Text = Field(description="The hardship; seen by hr/admin and the manager only")
    until: Moment


class DeferralRejection(BaseModel):
    reason: Text


class DeferralDecisionPublic(BaseModel):
    manager: ManagerPublic
    withdrawn_plan_ids: list[UUID] = Field(description="Open plans that would have moved them")


class DeclineCreate(BaseModel):
    plan_id: UUID
    reason: Text


# --- due list and plans -------------------------------------------------------------------


class DueManagerPublic(_Public):
    manager_id: str
    region: str
    since: datetime
    due_at: datetime
    overdue_days: int
    past_max: bool
    held_until: datetime | None
    held_because: str


class RegionAtRiskPublic(BaseModel):
    region: str
    manager_id: str
    since: datetime
    max_at: datetime
    past_max_by_days: int


class DueListPublic(BaseModel):
    as_of: datetime
    due: list[DueManagerPublic]
    at_risk: list[RegionAtRiskPublic] = Field(description="Regions whose manager stayed past the maximum")

    @classmethod
    def of(cls, due: DueList) -> DueListPublic:
        return cls(
            as_of=due.as_of,
            due=[DueManagerPublic.model_validate(d) for d in due.due],
            at_risk=[
                RegionAtRiskPublic(
                    region=r.region,
                    manager_id=r.manager_id,
                    since=r.since,
                    max_at=r.max_at,
                    past_max_by_days=r.past_max_by.days,
                )
                for r in due.at_risk
            ],
        )


class StayPublic(_Public):
    manager_id: str
    region: str
    reason: str


class PlanPreviewPublic(BaseModel):
    as_of: datetime
    moves: list[MovePublic]
    staying: list[StayPublic] = Field(description="Due managers left in place, and why")
    total_cost: float
    due: DueListPublic

    @classmethod
    def of(cls, plan: Plan) -> PlanPreviewPublic:
        return cls(
            as_of=plan.as_of,
            moves=[MovePublic.model_validate(m) for m in plan.moves],
            staying=[StayPublic.model_validate(s) for s in plan.staying],
            total_cost=plan.total_cost,
            due=DueListPublic.of(plan.due),
        )


class PlanCreate(BaseModel):
    as_of: Moment | None = Field(default=None, description="Who is due as of when; default now")
    effective_at: Moment | None = Field(
        default=None, description="When the moves take effect; default as_of + the notice period"
    )


class PlanCreatedPublic(BaseModel):
    id: UUID


class PlanWithdrawal(BaseModel):
    reason: Text


class PlanPublic(_Public):
    plan_id: UUID
    status: str = Field(description="proposed | approved | carried_out | withdrawn")
    as_of: datetime
    effective_at: datetime
    moves: list[MovePublic]
    staying: list[StayPublic]
    total_cost: float
    planned_by: str
    approved_by: str
    withdrawn_because: str
