"""Which stored domain events of the leads service go on its topic, and as what public event."""

from __future__ import annotations

from typing import Any

from services.leads.domain.distribution_run import DistributionRun
from services.leads.domain.lead import Lead
from services.leads.domain.rep import Rep
from shared.events import leads as public
from shared.events.catalog import Published


def to_integration(domain_event: Any) -> Published | None:
    """The public event for a stored domain event; None for what stays inside the service
    (private-pool bookkeeping on the rep, quota and cap changes, region managers)."""
    if isinstance(domain_event, Lead.Event):
        event = _lead_event(domain_event)
        return Published(event=event, aggregate_type="Lead") if event is not None else None
    if isinstance(domain_event, Rep.Event):
        event = _rep_event(domain_event)
        return Published(event=event, aggregate_type="Rep") if event is not None else None
    if isinstance(domain_event, DistributionRun.Event):
        e: Any = domain_event
        return Published(
            event=public.LeadsDistributed(
                distribution_id=str(e.originator_id),
                day=e.day,
                region=e.region,
                reps=e.reps,
                leads_available=e.leads_available,
                quota_asked=e.quota_asked,
                assigned=e.assigned,
                spread_min=int(e.spread["min"]),
                spread_max=int(e.spread["max"]),
                newcomer_mean=float(e.spread["newcomer_mean"]),
                veteran_mean=float(e.spread["veteran_mean"]),
                completed_at=e.meta.at,
            ),
            aggregate_type="DistributionRun",
        )
    return None


def _kind(domain_event: Any) -> str:
    return type(domain_event).__qualname__


def _lead_event(e: Any) -> public.LeadsEvent | None:
    kind = _kind(e)
    lead_id = str(e.originator_id)
    at = e.meta.at
    if kind == "Lead.Registered":
        return public.LeadRegistered(
            lead_id=lead_id,
            company_name=e.company_name,
            company_key=e.company_key,
            region=e.region,
            address_line=e.address.line,
            city=e.address.city,
            customer_lat=e.address.lat,
            customer_lon=e.address.lon,
            score=e.score,
            source=e.source,
            registered_at=at,
        )
    if kind == "Lead.Assigned":
        return public.LeadAssigned(
            lead_id=lead_id,
            rep_id=e.rep_id,
            region=e.region,
            assigned_at=at,
            follow_up_deadline=e.follow_up_deadline,
            distribution_id=e.distribution_id,
        )
    if kind == "Lead.FollowUpWarned":
        return public.FollowUpDue(
            lead_id=lead_id, rep_id=e.rep_id, region=e.region, pool=e.pool, deadline=e.deadline, warned_at=at
        )
    if kind == "Lead.FollowedUp":
        return public.LeadFollowedUp(
            lead_id=lead_id,
            rep_id=e.rep_id,
            region=e.region,
            channel=e.channel,
            followed_up_at=e.followed_up_at,
            next_deadline=e.next_deadline,
            visit_id=e.visit_id,
        )
    if kind == "Lead.Reclaimed":
        return public.LeadReclaimed(
            lead_id=lead_id, rep_id=e.rep_id, region=e.region, reason=e.reason, reclaimed_at=at
        )
    if kind == "Lead.KeptPrivate":
        return public.LeadKeptPrivate(
            lead_id=lead_id,
            rep_id=e.rep_id,
            region=e.region,
            kept_at=at,
            no_progress_deadline=e.no_progress_deadline,
            returned_lead_id=e.returning_lead_id,
        )
    if kind == "Lead.Released":
        return public.LeadReleased(
            lead_id=lead_id,
            rep_id=e.rep_id,
            region=e.region,
            from_pool=e.from_pool,
            reason=e.reason,
            released_at=at,
            swapped_for_lead_id=e.swapped_for_lead_id,
        )
    if kind == "Lead.Converted":
        return public.LeadConverted(
            lead_id=lead_id, rep_id=e.rep_id, region=e.region, converted_at=at, note=e.note
        )
    if kind == "Lead.Closed":
        return public.LeadClosed(
            lead_id=lead_id, rep_id=e.rep_id, region=e.region, reason=e.reason, closed_at=at
        )
    return None


def _rep_event(e: Any) -> public.LeadsEvent | None:
    kind = _kind(e)
    at = e.meta.at
    if kind == "Rep.Registered":
        return public.RepRegistered(
            rep_id=e.rep_id,
            name=e.name,
            region=e.region,
            role=e.role,
            joined_on=e.joined_on,
            active=True,
            daily_quota=e.daily_quota,
            private_pool_cap=e.private_pool_cap,
            registered_at=at,
        )
    if kind == "Rep.Deactivated":
        return public.RepDeactivated(rep_id=e.rep_id, reason=e.reason, deactivated_at=at)
    if kind == "Rep.Reactivated":
        return public.RepReactivated(rep_id=e.rep_id, reactivated_at=at)
    return None
