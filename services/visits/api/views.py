"""The visits routes: thin, each works out what the caller may see and calls one application method.

A rep logs, corrects and reads only their own visits, and never sees a flag about themselves; a
manager reads their region (the token's region claim); qc, ops and admin read everything; only qc
decides flags; qc and admin ask for look-backs; ops and admin run the weekly summary by hand.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from services.visits.api.dependencies import Visits
from services.visits.api.schemas import (
    ID,
    RULE_PATTERN,
    AuditEntryPublic,
    FlagConfirmation,
    FlagDecisionPublic,
    FlagDismissal,
    FlagIdPath,
    FlagPublic,
    GeoPointCreate,
    IdPath,
    LookBackCreate,
    LookBackCreatedPublic,
    LookBackPublic,
    MinorBreachPublic,
    Moment,
    OwnershipPeriodPublic,
    OwnershipPublic,
    SummarisedPublic,
    SummaryBreachPublic,
    SummaryCreate,
    VisitCorrectionCreate,
    VisitCreate,
    VisitCreatedPublic,
    VisitIdPath,
    VisitPublic,
    WeeklySummaryPublic,
)
from services.visits.domain.access import (
    DECIDERS,
    LOOK_BACK_REQUESTERS,
    SUMMARY_RUNNERS,
    Scope,
    desk_scope,
    require_role,
    visit_scope,
)
from services.visits.domain.values import GeoPoint
from services.visits.read_models import VisitView
from shared.auth import Principal
from shared.domain import Forbidden
from shared.web import CommandMeta, CurrentPrincipal

visits = APIRouter(prefix="/visits", tags=["visits"])
flags = APIRouter(prefix="/flags", tags=["quality-control desk"])
look_backs = APIRouter(tags=["look-backs"])
minor_breaches = APIRouter(prefix="/minor-breaches", tags=["minor breaches"])
leads = APIRouter(prefix="/leads", tags=["lead ownership"])
audit = APIRouter(prefix="/audit", tags=["audit"])

RepFilter = Annotated[str | None, Query(pattern=ID, description="Only this rep's")]
LeadFilter = Annotated[str | None, Query(pattern=ID, description="Only this lead's")]
RegionFilter = Annotated[str | None, Query(pattern=ID, description="Only this region's")]
WeekFilter = Annotated[date | None, Query(description="Only the week starting on this Monday")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _visit_scope(principal: Principal) -> Scope:
    return visit_scope(principal.actor_id, principal.role, principal.region)


def _desk_scope(principal: Principal) -> Scope:
    return desk_scope(principal.actor_id, principal.role, principal.region)


def _point(point: GeoPointCreate | None) -> GeoPoint | None:
    return None if point is None else GeoPoint(point.lat, point.lon, point.accuracy_m)


def _visit_public(view: VisitView, scope: Scope) -> VisitPublic:
    shown = view if scope.flags_shown_for(view.rep_id) else view.without_flags()
    return VisitPublic.model_validate(shown)


# --- visits -------------------------------------------------------------------------------


@visits.post("", status_code=201, response_model=VisitCreatedPublic)
async def log_visit(
    body: VisitCreate, app: Visits, principal: CurrentPrincipal, meta: CommandMeta
) -> VisitCreatedPublic:
    """Log a visit of the calling rep (rep only). The recorded time is the service's; the visit is
    judged by every detection rule at once (a rep never sees the result)."""
    # The busiest route: only the application's call goes to a worker thread. (A plain `def`
    # route runs there whole, and FastAPI then checks its answer in the thread pool again: a
    # second hop per request, ~7 % of a logged visit's CPU under load.)
    principal.require("rep")
    checkin = body.checkin
    logged = await run_in_threadpool(
        app.record_visit,
        lead_id=body.lead_id,
        visited_at=body.visited_at,
        left_at=body.left_at,
        position=_point(body.position),
        checkin_position=_point(checkin.position) if checkin else None,
        photo_hash=checkin.photo_hash if checkin else None,
        notes=body.notes,
        client_ref=body.client_ref,
        meta=meta,
    )
    return VisitCreatedPublic(id=logged.visit_id, recorded_at=logged.recorded_at)


@visits.get("", response_model=list[VisitPublic])
def list_visits(
    app: Visits,
    principal: CurrentPrincipal,
    rep_id: RepFilter = None,
    lead_id: LeadFilter = None,
    region: RegionFilter = None,
    since: Annotated[Moment | None, Query(description="Claimed at or after")] = None,
    until: Annotated[Moment | None, Query(description="Claimed before")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[VisitPublic]:
    """Visits by claimed time: a rep's own, a manager's region, or all (qc/ops/admin)."""
    scope = _visit_scope(principal)
    rep_id, region = scope.narrow(rep_id=rep_id, region=region)
    views = app.list_visits(
        rep_id=rep_id, lead_id=lead_id, region=region, since=since, until=until, limit=limit, offset=offset
    )
    return [_visit_public(view, scope) for view in views]


@visits.get("/{visit_id}", response_model=VisitPublic)
def get_visit(visit_id: VisitIdPath, app: Visits, principal: CurrentPrincipal) -> VisitPublic:
    """One visit, with its corrections (and its flags, unless the caller is its rep)."""
    scope = _visit_scope(principal)
    view = app.get_visit(visit_id)
    if not scope.allows(rep_id=view.rep_id, region=view.region):
        raise Forbidden("this visit is not yours to see", field="visit_id")
    return _visit_public(view, scope)


@visits.post("/{visit_id}/corrections", status_code=201, response_model=VisitPublic)
def correct_visit(
    visit_id: VisitIdPath,
    body: VisitCorrectionCreate,
    app: Visits,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> VisitPublic:
    """Correct your own visit (rep only): a new event; the visit as first logged stays on record.
    The corrected visit is judged again."""
    principal.require("rep")
    # Another rep's visit is refused as reading it is (403), not passed off as unknown.
    if app.get_visit(visit_id).rep_id != principal.actor_id:
        raise Forbidden("only the rep who logged a visit corrects it", field="visit_id")
    app.correct_visit(
        visit_id,
        reason=body.reason,
        visited_at=body.visited_at,
        left_at=body.left_at,
        position=_point(body.position),
        notes=body.notes,
        meta=meta,
    )
    return _visit_public(app.get_visit(visit_id), _visit_scope(principal))


# --- the quality-control desk --------------------------------------------------------------


@flags.get("", response_model=list[FlagPublic])
def list_flags(
    app: Visits,
    principal: CurrentPrincipal,
    region: RegionFilter = None,
    rep_id: RepFilter = None,
    rule: Annotated[str | None, Query(pattern=RULE_PATTERN)] = None,
    status: Literal["open", "confirmed", "dismissed"] | None = None,
    severity: Literal["moderate", "serious"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FlagPublic]:
    """The desk's list (managers: their region; qc/ops/admin: all), oldest first; never a flag
    about the caller."""
    scope = _desk_scope(principal)
    rep_id, region = scope.narrow(rep_id=rep_id, region=region)
    found = app.list_flags(
        region=region,
        rep_id=rep_id,
        rule=rule,
        status=status,
        severity=severity,
        not_about=principal.actor_id,
        limit=limit,
        offset=offset,
    )
    return [FlagPublic.model_validate(flag) for flag in found]


@flags.get("/{flag_id}", response_model=FlagPublic)
def get_flag(flag_id: FlagIdPath, app: Visits, principal: CurrentPrincipal) -> FlagPublic:
    """One flag with its evidence and decision."""
    scope = _desk_scope(principal)
    flag = app.get_flag(flag_id)
    if not scope.allows(region=flag.region) or not scope.flags_shown_for(flag.rep_id):
        raise Forbidden("this flag is not yours to see", field="flag_id")
    return FlagPublic.model_validate(flag)


@flags.post("/{flag_id}/confirmation", response_model=FlagDecisionPublic)
def confirm_flag(
    flag_id: FlagIdPath,
    body: FlagConfirmation,
    app: Visits,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> FlagDecisionPublic:
    """Confirm a suspicion (qc). As a fabrication: FabricationConfirmed goes to the reviews service
    (a red-line case) and the rep's whole history is looked back over."""
    require_role(principal.role, DECIDERS, "decide flags")
    look_back_id = app.confirm_flag(flag_id, reason=body.reason, fabrication=body.fabrication, meta=meta)
    return FlagDecisionPublic(
        flag=FlagPublic.model_validate(app.get_flag(flag_id)), look_back_id=look_back_id
    )


@flags.post("/{flag_id}/dismissal", response_model=FlagPublic)
def dismiss_flag(
    flag_id: FlagIdPath, body: FlagDismissal, app: Visits, principal: CurrentPrincipal, meta: CommandMeta
) -> FlagPublic:
    """Dismiss a suspicion that did not hold, with the reason (qc)."""
    require_role(principal.role, DECIDERS, "decide flags")
    app.dismiss_flag(flag_id, reason=body.reason, meta=meta)
    return FlagPublic.model_validate(app.get_flag(flag_id))


# --- look-backs (蟑螂理论) -----------------------------------------------------------------


@look_backs.post("/reps/{rep_id}/look-backs", status_code=201, response_model=LookBackCreatedPublic)
def request_look_back(
    rep_id: IdPath, body: LookBackCreate, app: Visits, principal: CurrentPrincipal, meta: CommandMeta
) -> LookBackCreatedPublic:
    """Judge a rep's whole visit history again by today's rules (qc/admin)."""
    require_role(principal.role, LOOK_BACK_REQUESTERS, "ask for a look-back")
    if rep_id == principal.actor_id:
        raise Forbidden("no one looks back over their own record", field="rep_id")
    return LookBackCreatedPublic(id=app.look_back(rep_id, reason=body.reason, meta=meta))


@look_backs.get("/look-backs", response_model=list[LookBackPublic])
def list_look_backs(
    app: Visits, principal: CurrentPrincipal, rep_id: RepFilter = None
) -> list[LookBackPublic]:
    """Look-backs and what they found (qc/ops/admin)."""
    require_role(principal.role, DECIDERS | {"ops", "admin"}, "read look-backs")
    return [
        LookBackPublic.model_validate(view)
        for view in app.look_backs(rep_id=rep_id)
        if view.rep_id != principal.actor_id
    ]


@look_backs.get("/look-backs/{look_back_id}", response_model=LookBackPublic)
def get_look_back(look_back_id: IdPath, app: Visits, principal: CurrentPrincipal) -> LookBackPublic:
    require_role(principal.role, DECIDERS | {"ops", "admin"}, "read look-backs")
    view = app.get_look_back(look_back_id)
    if view.rep_id == principal.actor_id:
        raise Forbidden("this look-back is about you", field="look_back_id")
    return LookBackPublic.model_validate(view)


# --- minor breaches (破窗理论) --------------------------------------------------------------


@minor_breaches.get("", response_model=list[MinorBreachPublic])
def list_minor_breaches(
    app: Visits,
    principal: CurrentPrincipal,
    week_start: WeekFilter = None,
    rep_id: RepFilter = None,
    region: RegionFilter = None,
) -> list[MinorBreachPublic]:
    """Minor breaches (late entries) by the week they were recorded in: a manager's region."""
    scope = _desk_scope(principal)
    rep_id, region = scope.narrow(rep_id=rep_id, region=region)
    found = app.minor_breaches(week_start=week_start, rep_id=rep_id, region=region)
    return [MinorBreachPublic.model_validate(b) for b in found if b.rep_id != principal.actor_id]


@minor_breaches.get("/summaries", response_model=list[WeeklySummaryPublic])
def list_weekly_summaries(
    app: Visits,
    principal: CurrentPrincipal,
    week_start: WeekFilter = None,
    rep_id: RepFilter = None,
    region: RegionFilter = None,
) -> list[WeeklySummaryPublic]:
    """Each rep's weekly summary of minor breaches, for their manager (only their region's part)."""
    scope = _desk_scope(principal)
    rep_id, region = scope.narrow(rep_id=rep_id, region=region)
    answers: list[WeeklySummaryPublic] = []
    for summary in app.weekly_summaries(week_start=week_start, rep_id=rep_id, region=region):
        if summary.rep_id == principal.actor_id:
            continue
        breaches = [b for b in summary.breaches if region is None or b.region == region]
        answers.append(
            WeeklySummaryPublic(
                rep_id=summary.rep_id,
                regions=[region] if region is not None else list(summary.regions),
                week_start=summary.week_start,
                breaches=[SummaryBreachPublic.model_validate(b) for b in breaches],
                issued_at=summary.issued_at,
                event_id=summary.event_id,
            )
        )
    return answers


@minor_breaches.post("/summaries", response_model=SummarisedPublic)
def summarise_week(
    body: SummaryCreate, app: Visits, principal: CurrentPrincipal, meta: CommandMeta
) -> SummarisedPublic:
    """Summarise a finished week now (ops/admin; the scheduler does it weekly). Idempotent."""
    require_role(principal.role, SUMMARY_RUNNERS, "run the weekly summary")
    return SummarisedPublic(
        week_start=body.week_start, rep_ids=app.summarise_minor_breaches(body.week_start, meta=meta)
    )


# --- lead ownership ------------------------------------------------------------------------


def _lead_in_scope(app: Visits, lead_id: str, scope: Scope) -> None:
    if not scope.allows(region=app.lead(lead_id).region):
        raise Forbidden("this lead is not in your region", field="lead_id")


@leads.get("/{lead_id}/ownership", response_model=OwnershipPublic)
def ownership(
    lead_id: IdPath,
    app: Visits,
    principal: CurrentPrincipal,
    rep_id: Annotated[str, Query(pattern=ID)],
    at: Annotated[Moment, Query(description="Any past moment")],
) -> OwnershipPublic:
    """Did this rep own this lead at that moment? With the leads events that prove the answer."""
    scope = _desk_scope(principal)
    _lead_in_scope(app, lead_id, scope)
    return OwnershipPublic.model_validate(app.owned_at(lead_id, rep_id, at))


@leads.get("/{lead_id}/owners", response_model=list[OwnershipPeriodPublic])
def ownership_history(
    lead_id: IdPath, app: Visits, principal: CurrentPrincipal
) -> list[OwnershipPeriodPublic]:
    """Who owned the lead when, from the leads topic, with the events that began and ended it."""
    scope = _desk_scope(principal)
    _lead_in_scope(app, lead_id, scope)
    return [OwnershipPeriodPublic.model_validate(p) for p in app.ownership_history(lead_id)]


# --- the audit trail -----------------------------------------------------------------------


def _trail(
    app: Visits, principal: Principal, *, rep_id: str | None, lead_id: str | None
) -> list[AuditEntryPublic]:
    scope = _desk_scope(principal)
    entries = app.audit_trail(rep_id=rep_id, lead_id=lead_id, region=scope.region)
    return [
        AuditEntryPublic.model_validate(e)
        for e in entries
        if not (e.about_flags and e.rep_id == principal.actor_id)
    ]


@audit.get("/reps/{rep_id}", response_model=list[AuditEntryPublic])
def rep_audit_trail(
    rep_id: IdPath, app: Visits, principal: CurrentPrincipal, lead_id: LeadFilter = None
) -> list[AuditEntryPublic]:
    """Every event that touched a rep across leads and visits, in order, with flags and evidence
    (ops/qc/admin; a manager sees their region's part)."""
    return _trail(app, principal, rep_id=rep_id, lead_id=lead_id)


@audit.get("/leads/{lead_id}", response_model=list[AuditEntryPublic])
def lead_audit_trail(lead_id: IdPath, app: Visits, principal: CurrentPrincipal) -> list[AuditEntryPublic]:
    """Every event that touched a lead, in order (ops/qc/admin; a manager, their region's leads)."""
    return _trail(app, principal, rep_id=None, lead_id=lead_id)


ROUTERS = (visits, flags, look_backs, minor_breaches, leads, audit)
