"""The rotation routes: thin, each checks who may call it and calls one application method.

hr and admin run rotation (regions, managers, plans, deferral decisions); a manager sees only
their own record and history, asks for their own deferral and declines their own move.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from services.rotation.api.dependencies import Rotation
from services.rotation.api.schemas import (
    AppointmentCreate,
    DeclineCreate,
    DeferralCreate,
    DeferralDecisionPublic,
    DeferralRejection,
    DueListPublic,
    HistoryEntryPublic,
    ManagerCreate,
    ManagerCreatedPublic,
    ManagerIdPath,
    ManagerPublic,
    Moment,
    PastPostingCreate,
    PlanCreate,
    PlanCreatedPublic,
    PlanPreviewPublic,
    PlanPublic,
    PlanWithdrawal,
    RegionCodePath,
    RegionCreate,
    RegionCreatedPublic,
    RegionPublic,
)
from services.rotation.application import RotationApplication
from services.rotation.domain.values import PLANNERS, require_self_or_planner
from shared.auth import Principal
from shared.web import CommandMeta, Context, CurrentPrincipal, ErrorPublic

regions = APIRouter(prefix="/regions", tags=["regions"])
managers = APIRouter(prefix="/managers", tags=["managers"])
plans = APIRouter(prefix="/plans", tags=["plans"])
planning = APIRouter(tags=["planning"])

AsOf = Annotated[Moment | None, Query(description="Default: the service's clock now")]
INFEASIBLE: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorPublic,
        "description": "Invalid input, or no feasible plan: `details.reasons` says why",
    }
}


def _as_of(moment: datetime | None, context: Context) -> datetime:
    return moment if moment is not None else context.clock.now()


def _manager(rotation: RotationApplication, manager_id: str) -> ManagerPublic:
    return ManagerPublic.of(rotation.manager(manager_id), rotation.offers_to(manager_id))


def _require_self_or_planner(principal: Principal, manager_id: str, doing: str) -> None:
    require_self_or_planner(principal.actor_id, principal.role, manager_id, doing)


# --- regions ------------------------------------------------------------------------------


@regions.post("", status_code=201, response_model=RegionCreatedPublic)
def open_region(
    body: RegionCreate, rotation: Rotation, principal: CurrentPrincipal, meta: CommandMeta
) -> RegionCreatedPublic:
    """Open a sales region (hr/admin)."""
    principal.require(*PLANNERS)
    region_id = rotation.open_region(body.code, body.name, body.location.lat, body.location.lon, meta)
    return RegionCreatedPublic(id=region_id, code=body.code)


@regions.get("", response_model=list[RegionPublic])
def list_regions(rotation: Rotation, _: CurrentPrincipal) -> list[RegionPublic]:
    """Every region and who manages it now (any signed-in user)."""
    return [RegionPublic.model_validate(r) for r in rotation.regions()]


@regions.get("/{code}", response_model=RegionPublic)
def get_region(code: RegionCodePath, rotation: Rotation, _: CurrentPrincipal) -> RegionPublic:
    return RegionPublic.model_validate(rotation.region(code))


# --- managers -----------------------------------------------------------------------------


@managers.post("", status_code=201, response_model=ManagerCreatedPublic)
def register_manager(
    body: ManagerCreate, rotation: Rotation, principal: CurrentPrincipal, meta: CommandMeta
) -> ManagerCreatedPublic:
    """Register a manager with their home base and household (hr/admin)."""
    principal.require(*PLANNERS)
    manager_id = rotation.register_manager(
        body.manager_id,
        body.name,
        body.level,
        body.home_base.lat,
        body.home_base.lon,
        meta,
        dependants=body.dependants,
    )
    return ManagerCreatedPublic(id=manager_id, manager_id=body.manager_id)


@managers.get("", response_model=list[ManagerPublic])
def list_managers(rotation: Rotation, principal: CurrentPrincipal) -> list[ManagerPublic]:
    """Every manager (hr/admin)."""
    principal.require(*PLANNERS)
    return [ManagerPublic.of(m) for m in rotation.managers()]


@managers.get("/{manager_id}", response_model=ManagerPublic)
def get_manager(manager_id: ManagerIdPath, rotation: Rotation, principal: CurrentPrincipal) -> ManagerPublic:
    """A manager's posting, deferral, declines and open offers (themself, hr/admin)."""
    _require_self_or_planner(principal, manager_id, "see this manager")
    return _manager(rotation, manager_id)


@managers.get("/{manager_id}/history", response_model=list[HistoryEntryPublic])
def manager_history(
    manager_id: ManagerIdPath, rotation: Rotation, principal: CurrentPrincipal
) -> list[HistoryEntryPublic]:
    """Postings, moves, deferrals and declines, oldest first (themself, hr/admin)."""
    history = rotation.history(manager_id, viewer_id=principal.actor_id, viewer_role=principal.role)
    return [HistoryEntryPublic.model_validate(entry) for entry in history]


@managers.post("/{manager_id}/appointment", response_model=ManagerPublic)
def appoint_manager(
    manager_id: ManagerIdPath,
    body: AppointmentCreate,
    rotation: Rotation,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ManagerPublic:
    """Put a manager without a posting into a vacant region (hr/admin)."""
    principal.require(*PLANNERS)
    rotation.appoint_manager(manager_id, body.region, meta, since=body.since)
    return _manager(rotation, manager_id)


@managers.post("/{manager_id}/past-postings", response_model=ManagerPublic)
def record_past_posting(
    manager_id: ManagerIdPath,
    body: PastPostingCreate,
    rotation: Rotation,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ManagerPublic:
    """Record a posting from before this service, so the no-return rule knows it (hr/admin)."""
    principal.require(*PLANNERS)
    rotation.record_past_posting(manager_id, body.region, body.start, body.end, meta)
    return _manager(rotation, manager_id)


@managers.post("/{manager_id}/deferral", response_model=ManagerPublic)
def request_deferral(
    manager_id: ManagerIdPath,
    body: DeferralCreate,
    rotation: Rotation,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ManagerPublic:
    """Ask to defer rotation for a hardship, until a date (the manager themself, or hr/admin)."""
    _require_self_or_planner(principal, manager_id, "ask for this manager's deferral")
    rotation.request_deferral(manager_id, body.reason, body.until, meta)
    return _manager(rotation, manager_id)


@managers.post("/{manager_id}/deferral/approval", response_model=DeferralDecisionPublic)
def approve_deferral(
    manager_id: ManagerIdPath, rotation: Rotation, principal: CurrentPrincipal, meta: CommandMeta
) -> DeferralDecisionPublic:
    """Grant the waiting deferral; open plans that would move the manager are withdrawn (hr/admin)."""
    principal.require(*PLANNERS)
    withdrawn = rotation.approve_deferral(manager_id, meta)
    return DeferralDecisionPublic(manager=_manager(rotation, manager_id), withdrawn_plan_ids=list(withdrawn))


@managers.post("/{manager_id}/deferral/rejection", response_model=ManagerPublic)
def reject_deferral(
    manager_id: ManagerIdPath,
    body: DeferralRejection,
    rotation: Rotation,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ManagerPublic:
    """Refuse the waiting deferral, with a reason (hr/admin)."""
    principal.require(*PLANNERS)
    rotation.reject_deferral(manager_id, body.reason, meta)
    return _manager(rotation, manager_id)


@managers.post("/{manager_id}/declines", response_model=ManagerPublic)
def decline_rotation(
    manager_id: ManagerIdPath,
    body: DeclineCreate,
    rotation: Rotation,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ManagerPublic:
    """Decline the move a plan has for me: recorded in my history, the plan is withdrawn
    (the manager themself, or hr/admin on their word)."""
    _require_self_or_planner(principal, manager_id, "decline this manager's rotation")
    rotation.decline_rotation(manager_id, body.plan_id, body.reason, meta)
    return _manager(rotation, manager_id)


@planning.get("/deferral-requests", response_model=list[ManagerPublic])
def deferral_requests(rotation: Rotation, principal: CurrentPrincipal) -> list[ManagerPublic]:
    """Managers whose deferral request waits for a decision (hr/admin)."""
    principal.require(*PLANNERS)
    return [ManagerPublic.of(m) for m in rotation.deferral_requests()]


@planning.get("/due", response_model=DueListPublic)
def due(
    rotation: Rotation,
    principal: CurrentPrincipal,
    context: Context,
    as_of: AsOf = None,
) -> DueListPublic:
    """Every manager past the due tenure, how overdue, and regions at risk (hr/admin)."""
    principal.require(*PLANNERS)
    return DueListPublic.of(rotation.due_list(_as_of(as_of, context)))


# --- plans --------------------------------------------------------------------------------


@plans.get("/preview", response_model=PlanPreviewPublic, responses=INFEASIBLE)
def preview_plan(
    rotation: Rotation,
    principal: CurrentPrincipal,
    context: Context,
    as_of: AsOf = None,
) -> PlanPreviewPublic:
    """Solve a plan for everyone due without storing it: each move with its cost and why (hr/admin)."""
    principal.require(*PLANNERS)
    return PlanPreviewPublic.of(rotation.solve(_as_of(as_of, context)))


@plans.post("", status_code=201, response_model=PlanCreatedPublic, responses=INFEASIBLE)
def propose_plan(
    body: PlanCreate, rotation: Rotation, principal: CurrentPrincipal, meta: CommandMeta
) -> PlanCreatedPublic:
    """Solve and store a plan; a plan still waiting for approval is superseded (hr/admin)."""
    principal.require(*PLANNERS)
    return PlanCreatedPublic(id=rotation.propose_plan(meta, as_of=body.as_of, effective_at=body.effective_at))


@plans.get("", response_model=list[PlanPublic])
def list_plans(
    rotation: Rotation,
    principal: CurrentPrincipal,
    status: Literal["proposed", "approved", "carried_out", "withdrawn"] | None = None,
) -> list[PlanPublic]:
    principal.require(*PLANNERS)
    return [PlanPublic.model_validate(p) for p in rotation.plans(status)]


@plans.get("/{plan_id}", response_model=PlanPublic)
def get_plan(plan_id: UUID, rotation: Rotation, principal: CurrentPrincipal) -> PlanPublic:
    principal.require(*PLANNERS)
    return PlanPublic.model_validate(rotation.plan(plan_id))


@plans.post("/{plan_id}/approval", response_model=PlanPublic)
def approve_plan(
    plan_id: UUID, rotation: Rotation, principal: CurrentPrincipal, meta: CommandMeta
) -> PlanPublic:
    """Approve a proposed plan: its moves happen on its effective date (hr/admin)."""
    principal.require(*PLANNERS)
    rotation.approve_plan(plan_id, meta)
    return PlanPublic.model_validate(rotation.plan(plan_id))


@plans.post("/{plan_id}/withdrawal", response_model=PlanPublic)
def withdraw_plan(
    plan_id: UUID, body: PlanWithdrawal, rotation: Rotation, principal: CurrentPrincipal, meta: CommandMeta
) -> PlanPublic:
    principal.require(*PLANNERS)
    rotation.withdraw_plan(plan_id, body.reason, meta)
    return PlanPublic.model_validate(rotation.plan(plan_id))


ROUTERS = (regions, managers, plans, planning)
