"""In-memory views of the visits store: the visit log and QC desk, and the investigator's audit trail."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.visits.domain.lead_timeline import LeadTimeline
from services.visits.domain.values import GeoPoint, fmt, week_of
from services.visits.domain.visit_log import LookBackFinding, MinorBreach, VisitLog
from shared.application import ReadModel
from shared.events.catalog import event_id_text


def _event_id(domain_event: Any) -> str:
    """The id the relay gives this stored event on Kafka, so evidence can be found there too."""
    return event_id_text(domain_event.originator_id, domain_event.originator_version)


@dataclass(frozen=True)
class CorrectionView:
    corrected_at: datetime
    corrected_by: str
    reason: str
    changed: tuple[str, ...]
    event_id: str


@dataclass(frozen=True)
class VisitView:
    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    visited_at: datetime
    left_at: datetime | None
    recorded_at: datetime
    position: GeoPoint | None
    checkin_position: GeoPoint | None
    photo_hash: str | None
    notes: str
    client_ref: str | None
    event_id: str  # of the VisitLogged event
    corrections: tuple[CorrectionView, ...] = ()
    # None when hidden from the viewer: a rep never sees flags about themselves.
    flag_ids: tuple[str, ...] | None = ()
    fabrication_confirmed: bool | None = False

    def without_flags(self) -> VisitView:
        return dataclasses.replace(self, flag_ids=None, fabrication_confirmed=None)


@dataclass(frozen=True)
class FlagView:
    flag_id: str
    visit_id: str
    rep_id: str
    lead_id: str
    region: str
    rule: str
    severity: str
    reason: str
    evidence: tuple[str, ...]
    origin: str
    look_back_id: str | None
    flagged_at: datetime
    event_id: str
    status: str = "open"
    fabrication: bool = False
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None


@dataclass(frozen=True)
class MinorBreachView:
    breach_id: str
    rep_id: str
    visit_id: str
    lead_id: str
    region: str
    rule: str
    reason: str
    evidence: tuple[str, ...]
    visited_at: datetime
    recorded_at: datetime
    week_start: date  # the week it belongs to: the week it was recorded in
    summarised: bool = False


@dataclass(frozen=True)
class WeeklySummaryView:
    rep_id: str
    regions: tuple[str, ...]
    week_start: date
    breaches: tuple[MinorBreach, ...]
    issued_at: datetime
    event_id: str


@dataclass(frozen=True)
class LookBackView:
    look_back_id: str
    rep_id: str
    trigger_visit_id: str | None
    trigger_flag_ids: tuple[str, ...]
    visits_examined: int
    findings: tuple[LookBackFinding, ...]
    reason: str
    completed_at: datetime
    completed_by: str
    event_id: str

    @property
    def new_findings(self) -> tuple[LookBackFinding, ...]:
        return tuple(f for f in self.findings if f.new)


class VisitDesk(ReadModel):
    """Visits, flags, minor breaches, summaries and look-backs, with the indexes queries need."""

    def __init__(self) -> None:
        self.visits: dict[str, VisitView] = {}
        self.visits_by_rep: dict[str, list[str]] = {}
        self.visits_by_lead: dict[str, list[str]] = {}
        self.flags: dict[str, FlagView] = {}
        self.breaches: dict[str, MinorBreachView] = {}
        self.summaries: list[WeeklySummaryView] = []
        self.look_backs: dict[str, LookBackView] = {}

    def apply(self, domain_event: Any) -> None:
        e: Any = domain_event
        if isinstance(domain_event, VisitLog.VisitLogged):
            v = domain_event.visit
            self.visits[v.visit_id] = VisitView(
                visit_id=v.visit_id,
                rep_id=v.rep_id,
                lead_id=v.lead_id,
                region=v.region,
                visited_at=v.visited_at,
                left_at=v.left_at,
                recorded_at=v.recorded_at,
                position=v.position,
                checkin_position=v.checkin_position,
                photo_hash=v.photo_hash,
                notes=domain_event.notes,
                client_ref=domain_event.client_ref,
                event_id=_event_id(domain_event),
            )
            self.visits_by_rep.setdefault(v.rep_id, []).append(v.visit_id)
            self.visits_by_lead.setdefault(v.lead_id, []).append(v.visit_id)
        elif isinstance(domain_event, VisitLog.VisitCorrected):
            v, meta = domain_event.visit, domain_event.meta
            view = self.visits[v.visit_id]
            correction = CorrectionView(
                meta.at,
                meta.actor_id,
                domain_event.reason,
                tuple(domain_event.changed),
                _event_id(domain_event),
            )
            self.visits[v.visit_id] = dataclasses.replace(
                view,
                visited_at=v.visited_at,
                left_at=v.left_at,
                position=v.position,
                notes=domain_event.notes,
                corrections=(*view.corrections, correction),
            )
        elif isinstance(domain_event, VisitLog.VisitFlagged):
            self.flags[e.flag_id] = FlagView(
                flag_id=e.flag_id,
                visit_id=e.visit_id,
                rep_id=e.rep_id,
                lead_id=e.lead_id,
                region=e.region,
                rule=e.rule,
                severity=e.severity,
                reason=e.reason,
                evidence=tuple(e.evidence),
                origin=e.origin,
                look_back_id=e.look_back_id,
                flagged_at=e.meta.at,
                event_id=_event_id(e),
            )
            view = self.visits[e.visit_id]
            self.visits[e.visit_id] = dataclasses.replace(view, flag_ids=(*(view.flag_ids or ()), e.flag_id))
        elif isinstance(domain_event, VisitLog.MinorBreachNoted):
            b = domain_event.breach
            rep_id = self.visits[b.visit_id].rep_id
            self.breaches[b.breach_id] = MinorBreachView(
                breach_id=b.breach_id,
                rep_id=rep_id,
                visit_id=b.visit_id,
                lead_id=b.lead_id,
                region=b.region,
                rule=b.rule,
                reason=b.reason,
                evidence=tuple(b.evidence),
                visited_at=b.visited_at,
                recorded_at=b.recorded_at,
                week_start=week_of(b.recorded_at),
            )
        elif isinstance(domain_event, VisitLog.FlagConfirmed | VisitLog.FlagDismissed):
            confirmed = isinstance(e, VisitLog.FlagConfirmed)
            self.flags[e.flag_id] = dataclasses.replace(
                self.flags[e.flag_id],
                status="confirmed" if confirmed else "dismissed",
                fabrication=confirmed and bool(getattr(e, "fabrication", False)),
                decided_by=e.meta.actor_id,
                decided_at=e.meta.at,
                decision_reason=e.reason,
            )
        elif isinstance(domain_event, VisitLog.FabricationConfirmed):
            view = self.visits[domain_event.visit_id]
            self.visits[view.visit_id] = dataclasses.replace(view, fabrication_confirmed=True)
        elif isinstance(domain_event, VisitLog.LookBackCompleted):
            self.look_backs[e.look_back_id] = LookBackView(
                look_back_id=e.look_back_id,
                rep_id=e.rep_id,
                trigger_visit_id=e.trigger_visit_id,
                trigger_flag_ids=tuple(e.trigger_flag_ids),
                visits_examined=e.visits_examined,
                findings=tuple(e.findings),
                reason=e.reason,
                completed_at=e.meta.at,
                completed_by=e.meta.actor_id,
                event_id=_event_id(e),
            )
        elif isinstance(domain_event, VisitLog.MinorBreachesSummarised):
            breaches = tuple(e.breaches)
            self.summaries.append(
                WeeklySummaryView(
                    rep_id=e.rep_id,
                    regions=tuple(sorted({b.region for b in breaches})),
                    week_start=e.week_start,
                    breaches=breaches,
                    issued_at=e.meta.at,
                    event_id=_event_id(e),
                )
            )
            for b in breaches:
                self.breaches[b.breach_id] = dataclasses.replace(self.breaches[b.breach_id], summarised=True)

    # --- queries (the application holds the read lock) ---------------------------------------

    def list_visits(
        self,
        *,
        rep_id: str | None,
        lead_id: str | None,
        region: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[VisitView]:
        if rep_id is not None:
            ids: Iterable[str] = self.visits_by_rep.get(rep_id, [])
        elif lead_id is not None:
            ids = self.visits_by_lead.get(lead_id, [])
        else:
            ids = self.visits
        found = [
            view
            for view in (self.visits[i] for i in ids)
            if (lead_id is None or view.lead_id == lead_id)
            and (region is None or view.region == region)
            and (since is None or view.visited_at >= since)
            and (until is None or view.visited_at < until)
        ]
        return sorted(found, key=lambda v: (v.visited_at, v.visit_id))

    def list_flags(
        self,
        *,
        region: str | None,
        rep_id: str | None,
        rule: str | None,
        status: str | None,
        severity: str | None,
        not_about: str | None,
    ) -> list[FlagView]:
        found = [
            f
            for f in self.flags.values()
            if (region is None or f.region == region)
            and (rep_id is None or f.rep_id == rep_id)
            and (rule is None or f.rule == rule)
            and (status is None or f.status == status)
            and (severity is None or f.severity == severity)
            and (not_about is None or f.rep_id != not_about)
        ]
        return sorted(found, key=lambda f: (f.flagged_at, f.flag_id))

    def reps_with_breaches_in(self, week_start: date) -> list[str]:
        return sorted(
            {b.rep_id for b in self.breaches.values() if b.week_start == week_start and not b.summarised}
        )


@dataclass(frozen=True)
class AuditEntry:
    """One event that touched a rep or a lead, from either service, with its evidence."""

    at: datetime  # when it happened (a leads event's own time; a visits event's recorded time)
    source: str  # "leads" (consumed) or "visits"
    event_type: str
    event_id: str  # the envelope id on Kafka
    rep_id: str | None
    lead_id: str | None
    visit_id: str | None
    summary: str
    evidence: tuple[str, ...] = ()
    about_flags: bool = False  # flags, breaches, decisions: hidden from the rep concerned
    region: str | None = None  # the lead's region, so a manager sees only their region's part
    seq: int = 0  # arrival order, to keep ties in the order they were stored


_VISIT_LOG_EVENTS = (
    VisitLog.VisitLogged,
    VisitLog.VisitCorrected,
    VisitLog.VisitFlagged,
    VisitLog.MinorBreachNoted,
    VisitLog.FlagConfirmed,
    VisitLog.FlagDismissed,
    VisitLog.FabricationConfirmed,
    VisitLog.LookBackCompleted,
    VisitLog.MinorBreachesSummarised,
)


class AuditTrail(ReadModel):
    """Every event per rep and per lead, across the consumed leads events and the visit log."""

    def __init__(self) -> None:
        self.by_rep: dict[str, list[AuditEntry]] = {}
        self.by_lead: dict[str, list[AuditEntry]] = {}
        self._flag_leads: dict[str, str] = {}
        self._visit_reps: dict[str, str] = {}
        self._lead_regions: dict[str, str] = {}
        self._seq = 0

    def _add(self, entry: AuditEntry) -> None:
        self._seq += 1
        region = entry.region or (self._lead_regions.get(entry.lead_id) if entry.lead_id else None)
        entry = dataclasses.replace(entry, seq=self._seq, region=region)
        for key, index in ((entry.rep_id, self.by_rep), (entry.lead_id, self.by_lead)):
            if key:
                bisect.insort(index.setdefault(key, []), entry, key=lambda e: (e.at, e.seq))

    def apply(self, domain_event: Any) -> None:
        if isinstance(domain_event, LeadTimeline.FactRecorded):
            fact = domain_event.fact
            if fact.region:
                self._lead_regions[fact.lead_id] = fact.region
            who = f" (rep {fact.rep_id})" if fact.rep_id else ""
            detail = f": {fact.detail}" if fact.detail else ""
            self._add(
                AuditEntry(
                    at=fact.at,
                    source="leads",
                    event_type=fact.event_type,
                    event_id=fact.event_id,
                    rep_id=fact.rep_id,
                    lead_id=fact.lead_id,
                    visit_id=None,
                    summary=f"lead {fact.lead_id} {fact.kind.replace('_', ' ')}{who}{detail}",
                )
            )
            return
        if not isinstance(domain_event, _VISIT_LOG_EVENTS):
            return
        meta = domain_event.meta
        common: dict[str, Any] = {
            "at": meta.at,
            "source": "visits",
            "event_type": type(domain_event).__name__,
            "event_id": _event_id(domain_event),
        }
        e: Any = domain_event
        if isinstance(e, VisitLog.VisitLogged):
            v = e.visit
            self._visit_reps[v.visit_id] = v.rep_id
            self._add(
                AuditEntry(
                    **common,
                    rep_id=v.rep_id,
                    lead_id=v.lead_id,
                    visit_id=v.visit_id,
                    summary=f"visit {v.visit_id} to lead {v.lead_id} logged, claimed at {fmt(v.visited_at)}",
                    region=v.region,
                )
            )
        elif isinstance(e, VisitLog.VisitCorrected):
            v = e.visit
            self._add(
                AuditEntry(
                    **common,
                    rep_id=v.rep_id,
                    lead_id=v.lead_id,
                    visit_id=v.visit_id,
                    summary=f"visit {v.visit_id} corrected ({', '.join(e.changed)}): {e.reason}",
                    region=v.region,
                )
            )
        elif isinstance(e, VisitLog.VisitFlagged):
            self._flag_leads[e.flag_id] = e.lead_id
            self._add(
                AuditEntry(
                    **common,
                    rep_id=e.rep_id,
                    lead_id=e.lead_id,
                    visit_id=e.visit_id,
                    summary=f"flag {e.flag_id} raised ({e.rule}, {e.severity}): {e.reason}",
                    evidence=tuple(e.evidence),
                    about_flags=True,
                    region=e.region,
                )
            )
        elif isinstance(e, VisitLog.MinorBreachNoted):
            b = e.breach
            self._add(
                AuditEntry(
                    **common,
                    rep_id=self._visit_reps.get(b.visit_id),
                    lead_id=b.lead_id,
                    visit_id=b.visit_id,
                    summary=f"minor breach noted ({b.rule}): {b.reason}",
                    evidence=tuple(b.evidence),
                    about_flags=True,
                    region=b.region,
                )
            )
        elif isinstance(e, VisitLog.FlagConfirmed | VisitLog.FlagDismissed):
            verdict = "confirmed" if isinstance(e, VisitLog.FlagConfirmed) else "dismissed"
            if isinstance(e, VisitLog.FlagConfirmed) and e.fabrication:
                verdict += " as fabrication"
            self._add(
                AuditEntry(
                    **common,
                    rep_id=e.rep_id,
                    lead_id=self._flag_leads.get(e.flag_id),
                    visit_id=e.visit_id,
                    summary=f"flag {e.flag_id} ({e.rule}) {verdict} by {meta.actor_id}: {e.reason}",
                    evidence=(e.flag_id,),
                    about_flags=True,
                    region=e.region,
                )
            )
        elif isinstance(e, VisitLog.FabricationConfirmed):
            self._add(
                AuditEntry(
                    **common,
                    rep_id=e.rep_id,
                    lead_id=e.lead_id,
                    visit_id=e.visit_id,
                    summary=f"fabricated visit confirmed by {meta.actor_id}: {e.reason}",
                    evidence=(*e.flag_ids, *e.evidence),
                    about_flags=True,
                    region=e.region,
                )
            )
        elif isinstance(e, VisitLog.LookBackCompleted):
            new = [f for f in e.findings if f.new]
            self._add(
                AuditEntry(
                    **common,
                    rep_id=e.rep_id,
                    lead_id=None,
                    visit_id=e.trigger_visit_id,
                    summary=f"look-back over {e.visits_examined} visits found {len(e.findings)} "
                    f"suspicions ({len(new)} new): {e.reason}",
                    evidence=tuple(f.finding_id for f in e.findings),
                    about_flags=True,
                )
            )
        elif isinstance(e, VisitLog.MinorBreachesSummarised):
            self._add(
                AuditEntry(
                    **common,
                    rep_id=e.rep_id,
                    lead_id=None,
                    visit_id=None,
                    summary=f"{len(e.breaches)} minor breaches summarised for the week of {e.week_start}",
                    evidence=tuple(b.breach_id for b in e.breaches),
                    about_flags=True,
                )
            )

    def trail(
        self, *, rep_id: str | None, lead_id: str | None, include_flags: bool, region: str | None = None
    ) -> list[AuditEntry]:
        """region: only what happened in that region (a manager's view); entries about no one
        region (a look-back, a weekly summary) are left out of it."""
        entries = self.by_rep.get(rep_id, []) if rep_id is not None else self.by_lead.get(lead_id or "", [])
        if rep_id is not None and lead_id is not None:
            entries = [e for e in entries if e.lead_id == lead_id]
        return [
            e
            for e in entries
            if (include_flags or not e.about_flags) and (region is None or e.region == region)
        ]
