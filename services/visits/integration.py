"""What the visits service tells the others: each stored domain event's public form, or None."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.visits.domain.values import GeoPoint, week_bounds
from services.visits.domain.visit_log import VisitLog
from shared.events import visits as public
from shared.events.catalog import Published

AGGREGATE_TYPE = "VisitLog"


def _point(point: GeoPoint | None) -> public.GeoPoint | None:
    if point is None:
        return None
    return public.GeoPoint(lat=point.lat, lon=point.lon, accuracy_m=point.accuracy_m)


def _published(event: public.VisitsEvent) -> Published:
    return Published(event=event, aggregate_type=AGGREGATE_TYPE)


def to_integration(domain_event: Any) -> Published | None:
    """Visits, corrections, flags, decisions, look-backs and weekly summaries are public; the
    lead ownership timeline, log openings and single minor breaches are not."""
    e: Any = domain_event
    if isinstance(e, VisitLog.VisitLogged):
        v = e.visit
        return _published(
            public.VisitLogged(
                visit_id=v.visit_id,
                rep_id=v.rep_id,
                lead_id=v.lead_id,
                visited_at=v.visited_at,
                recorded_at=v.recorded_at,
                position=_point(v.position),
                checkin_position=_point(v.checkin_position),
                photo_hash=v.photo_hash,
                region=v.region,
                left_at=v.left_at,
                notes=e.notes,
            )
        )
    if isinstance(e, VisitLog.VisitCorrected):
        v = e.visit
        return _published(
            public.VisitCorrected(
                visit_id=v.visit_id,
                rep_id=v.rep_id,
                lead_id=v.lead_id,
                region=v.region,
                visited_at=v.visited_at,
                left_at=v.left_at,
                position=_point(v.position),
                notes=e.notes,
                changed=list(e.changed),
                reason=e.reason,
                corrected_at=e.meta.at,
            )
        )
    if isinstance(e, VisitLog.VisitFlagged):
        return _published(
            public.VisitFlagged(
                flag_id=e.flag_id,
                visit_id=e.visit_id,
                rep_id=e.rep_id,
                lead_id=e.lead_id,
                region=e.region,
                rule=e.rule,
                severity=e.severity,
                reason=e.reason,
                evidence_event_ids=list(e.evidence),
                origin=e.origin,
                look_back_id=e.look_back_id,
                flagged_at=e.meta.at,
            )
        )
    if isinstance(e, VisitLog.FlagConfirmed):
        return _published(
            public.FlagConfirmed(
                flag_id=e.flag_id,
                visit_id=e.visit_id,
                rep_id=e.rep_id,
                region=e.region,
                rule=e.rule,
                fabrication=e.fabrication,
                decided_by=e.meta.actor_id,
                reason=e.reason,
                decided_at=e.meta.at,
            )
        )
    if isinstance(e, VisitLog.FlagDismissed):
        return _published(
            public.FlagDismissed(
                flag_id=e.flag_id,
                visit_id=e.visit_id,
                rep_id=e.rep_id,
                region=e.region,
                rule=e.rule,
                decided_by=e.meta.actor_id,
                reason=e.reason,
                decided_at=e.meta.at,
            )
        )
    if isinstance(e, VisitLog.FabricationConfirmed):
        return _published(
            public.FabricationConfirmed(
                rep_id=e.rep_id,
                visit_id=e.visit_id,
                lead_id=e.lead_id,
                region=e.region,
                visited_at=e.visited_at,
                flag_ids=list(e.flag_ids),
                evidence_event_ids=list(e.evidence),
                decided_by=e.meta.actor_id,
                reason=e.reason,
                confirmed_at=e.meta.at,
                look_back_id=e.look_back_id,
            )
        )
    if isinstance(e, VisitLog.LookBackCompleted):
        return _published(
            public.LookBackCompleted(
                look_back_id=e.look_back_id,
                rep_id=e.rep_id,
                trigger_visit_id=e.trigger_visit_id,
                trigger_flag_ids=list(e.trigger_flag_ids),
                visits_examined=e.visits_examined,
                findings=[
                    public.LookBackFinding(
                        finding_id=f.finding_id,
                        visit_id=f.visit_id,
                        rule=f.rule,
                        severity=f.severity,
                        new=f.new,
                    )
                    for f in e.findings
                ],
                new_flag_ids=[f.finding_id for f in e.findings if f.new and f.severity != "minor"],
                reason=e.reason,
                requested_by=e.meta.actor_id,
                completed_at=e.meta.at,
            )
        )
    if isinstance(e, VisitLog.MinorBreachesSummarised):
        start, _ = week_bounds(e.week_start)
        return _published(
            public.WeeklyMinorBreachSummary(
                rep_id=e.rep_id,
                regions=sorted({b.region for b in e.breaches}),
                week_start=e.week_start,
                week_end=(start + timedelta(days=7)).date(),
                breach_count=len(e.breaches),
                breaches=[
                    public.MinorBreach(
                        breach_id=b.breach_id,
                        visit_id=b.visit_id,
                        lead_id=b.lead_id,
                        region=b.region,
                        rule=b.rule,
                        reason=b.reason,
                        visited_at=b.visited_at,
                        recorded_at=b.recorded_at,
                    )
                    for b in e.breaches
                ],
            )
        )
    return None
