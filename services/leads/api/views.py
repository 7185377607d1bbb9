"""The leads routes: thin, each checks who may call it and calls one application method.

Who may do what is the domain's rule (`domain/access.py`): a rep acts only as themself and on
their own leads (the rep id comes from the token, never the body); a manager acts in the regions
the rotation service says they manage now; hr keeps the roster; qc, hr and ops read; admin
everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query

from services.leads.api.dependencies import Leads
from services.leads.api.schemas import (
    AssignmentCreate,
    ClosureCreate,
    ConversionCreate,
    DeactivatedPublic,
    DeactivationCreate,
    DistributionCreate,
    DistributionPublic,
    FollowUpCreate,
    KeepPrivateCreate,
    LeadCardPublic,
    LeadCreate,
    LeadCreatedPublic,
    LeadIdPath,
    LeadImportCreate,
    LeadImportPublic,
    LeadPublic,
    PrivatePoolCapUpdate,
    QuotaUpdate,
    ReclaimedPublic,
    RegionCodePath,
    RegionPoolPublic,
    RegionViewPublic,
    ReleaseCreate,
    RepCreate,
    RepCreatedPublic,
    RepIdPath,
    RepPublic,
    WorkbenchPublic,
)
from services.leads.application import LeadsApplication
from services.leads.domain import access
from services.leads.domain.values import day_of
from services.leads.read_models import LeadDetail
from shared.domain import Forbidden, Meta
from shared.web import CommandMeta

reps = APIRouter(prefix="/reps", tags=["reps"])
leads = APIRouter(prefix="/leads", tags=["leads"])
distribution = APIRouter(tags=["distribution"])
views = APIRouter(tags=["views"])


def _require(app: LeadsApplication, meta: Meta, action: str, region: str | None, owner: str | None) -> None:
    if not app.may(meta, action, region, owner):
        where = f" in {region}" if region else ""
        raise Forbidden(f"{meta.actor_role} {meta.actor_id} may not {action.replace('_', ' ')}{where}")


def _as_seen_by(detail: LeadDetail, meta: Meta) -> LeadPublic:
    """A rep sees their own stretches of a lead's history, never who else had it or why they lost it."""
    if meta.actor_role == "rep":
        detail = replace(detail, owners=tuple(o for o in detail.owners if o.rep_id == meta.actor_id))
    return LeadPublic.model_validate(detail)


def _acting_rep(app: LeadsApplication, lead_id: str, meta: Meta) -> str:
    """The rep a lead command is for: the caller when a rep; otherwise the lead's owner."""
    if meta.actor_role == "rep":
        return meta.actor_id
    return app.lead(lead_id).owner_id or meta.actor_id


# --- reps ---------------------------------------------------------------------------------


@reps.post("", status_code=201, response_model=RepCreatedPublic)
def register_rep(body: RepCreate, app: Leads, meta: CommandMeta) -> RepCreatedPublic:
    """Register a rep in a region (hr/admin, or the region's manager)."""
    rep_id = app.register_rep(
        body.rep_id,
        body.name,
        body.region,
        body.joined_on,
        meta,
        role=body.role,
        daily_quota=body.daily_quota,
        private_pool_cap=body.private_pool_cap,
    )
    return RepCreatedPublic(id=rep_id, rep_id=body.rep_id)


@reps.get("/{rep_id}", response_model=RepPublic)
def get_rep(rep_id: RepIdPath, app: Leads, meta: CommandMeta) -> RepPublic:
    """A rep's record (the rep themself, their region's manager, qc/hr/ops, admin)."""
    rep = app.rep(rep_id)
    _require(app, meta, access.VIEW_REP, rep.region, rep_id)
    return RepPublic.model_validate(rep)


@reps.put("/{rep_id}/quota", response_model=RepPublic)
def set_daily_quota(rep_id: RepIdPath, body: QuotaUpdate, app: Leads, meta: CommandMeta) -> RepPublic:
    """Set the rep's daily quota, within the policy's band (hr/admin, or the region's manager)."""
    app.set_daily_quota(rep_id, body.daily_quota, meta)
    return RepPublic.model_validate(app.rep(rep_id))


@reps.put("/{rep_id}/private-pool-cap", response_model=RepPublic)
def set_private_pool_cap(
    rep_id: RepIdPath, body: PrivatePoolCapUpdate, app: Leads, meta: CommandMeta
) -> RepPublic:
    """Set how many leads the rep may keep private (hr/admin, or the region's manager)."""
    app.set_private_pool_cap(rep_id, body.private_pool_cap, meta)
    return RepPublic.model_validate(app.rep(rep_id))


@reps.post("/{rep_id}/deactivation", response_model=DeactivatedPublic)
def deactivate_rep(
    rep_id: RepIdPath, body: DeactivationCreate, app: Leads, meta: CommandMeta
) -> DeactivatedPublic:
    """The rep gets no more leads; every lead they hold goes back to the pool at once."""
    reclaimed = app.deactivate_rep(rep_id, body.reason, meta)
    return DeactivatedPublic(rep=RepPublic.model_validate(app.rep(rep_id)), reclaimed_lead_ids=reclaimed)


@reps.post("/{rep_id}/reactivation", response_model=RepPublic)
def reactivate_rep(rep_id: RepIdPath, app: Leads, meta: CommandMeta) -> RepPublic:
    """The rep gets leads again from the next distribution."""
    app.reactivate_rep(rep_id, meta)
    return RepPublic.model_validate(app.rep(rep_id))


@reps.get("/{rep_id}/workbench", response_model=WorkbenchPublic)
def workbench(rep_id: RepIdPath, app: Leads, meta: CommandMeta) -> WorkbenchPublic:
    """The rep's day: assigned leads with deadlines, the private pool, today's quota left
    (the rep themself, their region's manager, qc/hr/ops, admin)."""
    rep = app.rep(rep_id)
    _require(app, meta, access.VIEW_REP, rep.region, rep_id)
    return WorkbenchPublic.model_validate(app.workbench(rep_id, meta.at))


# --- leads --------------------------------------------------------------------------------


@leads.post("", status_code=201, response_model=LeadCreatedPublic)
def register_lead(body: LeadCreate, app: Leads, meta: CommandMeta) -> LeadCreatedPublic:
    """A lead joins the pool (the region's manager, admin). The same company twice is a 409
    whose `details.existing_lead_id` names the lead it already is."""
    return LeadCreatedPublic(id=app.register_lead(body.to_new_lead(), meta))


@leads.post("/imports", status_code=201, response_model=LeadImportPublic)
def import_leads(body: LeadImportCreate, app: Leads, meta: CommandMeta) -> LeadImportPublic:
    """A bulk import (managers of every region named, admin): new leads are registered in batches;
    duplicates and refusals are reported by their position and do not stop the rest."""
    result = app.register_leads([lead.to_new_lead() for lead in body.leads], meta)
    return LeadImportPublic.model_validate(result)


@leads.get("/{lead_id}", response_model=LeadPublic)
def get_lead(lead_id: LeadIdPath, app: Leads, meta: CommandMeta) -> LeadPublic:
    """A lead with its owner history (its owner rep, who sees only their own stretches; the
    region's manager; qc/hr/ops; admin)."""
    detail = app.lead(str(lead_id))
    _require(app, meta, access.VIEW_LEAD, detail.region, detail.owner_id)
    return _as_seen_by(detail, meta)


@leads.post("/{lead_id}/assignment", response_model=LeadPublic)
def assign_lead(lead_id: LeadIdPath, body: AssignmentCreate, app: Leads, meta: CommandMeta) -> LeadPublic:
    """Hand a pool lead to a rep of its region; it counts against their quota today (the region's
    manager, admin)."""
    app.assign_lead(str(lead_id), body.rep_id, meta)
    return _as_seen_by(app.lead(str(lead_id)), meta)


@leads.post("/{lead_id}/follow-ups", status_code=201, response_model=LeadPublic)
def record_follow_up(lead_id: LeadIdPath, body: FollowUpCreate, app: Leads, meta: CommandMeta) -> LeadPublic:
    """The owner rep worked the lead: its deadline starts again from then."""
    app.record_follow_up(
        str(lead_id),
        _acting_rep(app, str(lead_id), meta),
        meta,
        channel=body.channel,
        note=body.note,
        followed_up_at=body.followed_up_at,
    )
    return _as_seen_by(app.lead(str(lead_id)), meta)


@leads.post("/{lead_id}/private", response_model=LeadPublic)
def keep_private(lead_id: LeadIdPath, body: KeepPrivateCreate, app: Leads, meta: CommandMeta) -> LeadPublic:
    """The owner rep keeps an assigned lead in their private pool; at the cap, `return_lead_id`
    names the private lead given back in exchange (both or neither)."""
    returning = str(body.return_lead_id) if body.return_lead_id is not None else None
    app.keep_private(str(lead_id), _acting_rep(app, str(lead_id), meta), meta, returning)
    return _as_seen_by(app.lead(str(lead_id)), meta)


@leads.post("/{lead_id}/release", response_model=LeadPublic)
def release_lead(lead_id: LeadIdPath, body: ReleaseCreate, app: Leads, meta: CommandMeta) -> LeadPublic:
    """The lead goes back to the pool with the reason (its owner rep, the region's manager, admin)."""
    app.release_lead(str(lead_id), _acting_rep(app, str(lead_id), meta), body.reason, meta)
    return _as_seen_by(app.lead(str(lead_id)), meta)


@leads.post("/{lead_id}/conversion", response_model=LeadPublic)
def convert_lead(lead_id: LeadIdPath, body: ConversionCreate, app: Leads, meta: CommandMeta) -> LeadPublic:
    """A won customer (its owner rep, the region's manager, admin)."""
    app.convert_lead(str(lead_id), meta, body.note)
    return _as_seen_by(app.lead(str(lead_id)), meta)


@leads.post("/{lead_id}/closure", response_model=LeadPublic)
def close_lead(lead_id: LeadIdPath, body: ClosureCreate, app: Leads, meta: CommandMeta) -> LeadPublic:
    """The lead is given up for good, with the reason (its owner rep, the region's manager, admin)."""
    app.close_lead(str(lead_id), body.reason, meta)
    return _as_seen_by(app.lead(str(lead_id)), meta)


# --- distribution and the clock's work ----------------------------------------------------


@distribution.post("/distributions", status_code=201, response_model=DistributionPublic)
def distribute(body: DistributionCreate, app: Leads, meta: CommandMeta) -> DistributionPublic:
    """Run a daily distribution for a day and region (the region's manager as the rotation service
    says, or admin; every region at once: admin)."""
    day = body.day or day_of(meta.at, app.policy.zone)
    return DistributionPublic.model_validate(app.distribute(day, meta, region=body.region))


@distribution.post("/reclaims", response_model=ReclaimedPublic)
def reclaim_overdue(app: Leads, meta: CommandMeta) -> ReclaimedPublic:
    """Reclaim every overdue lead now, as the scheduler does on the clock (admin)."""
    return ReclaimedPublic(reclaimed_lead_ids=app.reclaim_overdue(meta.at, meta))


# --- views --------------------------------------------------------------------------------


@views.get("/pool", response_model=list[RegionPoolPublic])
def pool_by_region(
    app: Leads,
    meta: CommandMeta,
    region: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = None,
) -> list[RegionPoolPublic]:
    """Leads per region and status (counts only: any signed-in user)."""
    return [RegionPoolPublic.model_validate(pool) for pool in app.pool_by_region(region)]


@views.get("/pool/{region}/leads", response_model=list[LeadCardPublic])
def pool_leads(
    region: RegionCodePath,
    app: Leads,
    meta: CommandMeta,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[LeadCardPublic]:
    """The best leads waiting in a region's pool (its manager, qc/hr/ops, admin)."""
    _require(app, meta, access.VIEW_REGION, region, None)
    return [LeadCardPublic.model_validate(card) for card in app.pool_leads(region, limit)]


@views.get("/regions/{region}", response_model=RegionViewPublic)
def region_view(region: RegionCodePath, app: Leads, meta: CommandMeta) -> RegionViewPublic:
    """A manager's view of their region: counts, each rep's load today, the best pool leads, the
    last distribution (its manager, qc/hr/ops, admin)."""
    _require(app, meta, access.VIEW_REGION, region, None)
    return RegionViewPublic.model_validate(app.region_view(region, meta.at))


ROUTERS = [reps, leads, distribution, views]
