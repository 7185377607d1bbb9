"""The visits application: log and correct visits, keep the lead ownership timeline from the leads
topic, judge every visit by the detection rules, and serve the QC desk and the audit trail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, Transcoding

from services.visits.domain.lead_timeline import LeadTimeline
from services.visits.domain.ownership import (
    LeadFact,
    LeadFactKind,
    LeadFacts,
    OwnershipAnswer,
    OwnershipPeriod,
    ownership_at,
)
from services.visits.domain.values import GeoPoint, VisitFacts, as_utc, check_position, previous_week_start
from services.visits.domain.visit_log import (
    FlagRecord,
    LookBackFinding,
    MinorBreach,
    VisitLog,
    VisitRecord,
    new_visit,
)
from services.visits.policy import VisitsPolicy
from services.visits.read_models import (
    AuditEntry,
    AuditTrail,
    FlagView,
    LookBackView,
    MinorBreachView,
    VisitDesk,
    VisitView,
    WeeklySummaryView,
)
from shared.application import DataclassAsDict, Delivery, ReadModel, ServiceApplication
from shared.domain import Meta, NotFound, RuleViolated, stable_id
from shared.events import leads
from shared.events import visits as public
from shared.events.base import Envelope

T = TypeVar("T")

SCHEDULER_ACTOR = "scheduler"


@dataclass(frozen=True)
class LoggedVisit:
    visit_id: str
    recorded_at: datetime  # the service's clock when it was first logged


class VisitsApplication(ServiceApplication):
    extra_transcodings: ClassVar[Sequence[Transcoding]] = (
        DataclassAsDict(GeoPoint, "visits.geo_point"),
        DataclassAsDict(VisitFacts, "visits.visit_facts"),
        DataclassAsDict(LeadFact, "visits.lead_fact"),
        DataclassAsDict(MinorBreach, "visits.minor_breach"),
        DataclassAsDict(LookBackFinding, "visits.look_back_finding"),
        # For snapshots of a rep's visit log.
        DataclassAsDict(VisitRecord, "visits.visit_record"),
        DataclassAsDict(FlagRecord, "visits.flag_record"),
    )
    # A busy rep's log grows by a few events a day: a snapshot keeps loading it cheap.
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {VisitLog: 100}

    desk: VisitDesk
    audit: AuditTrail

    def __init__(self, env: Any = None, policy: VisitsPolicy | None = None) -> None:
        self.policy = policy or VisitsPolicy()
        self.replay_divergences: list[str] = []
        super().__init__(env)

    def construct_read_models(self) -> Sequence[ReadModel]:
        self.desk = VisitDesk()
        self.audit = AuditTrail()
        return (self.desk, self.audit)

    # --- helpers ------------------------------------------------------------------------------

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run get → change → save again from a fresh read when a concurrent command got there first."""
        for tries in range(self.conflict_retries + 1):
            try:
                return attempt()
            except IntegrityError:
                if tries == self.conflict_retries:
                    raise
        raise AssertionError("unreachable")

    def _get(self, aggregate_id: Any) -> Any:
        # One read: asking `in repository` first would load the aggregate twice.
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _lead(self, lead_id: str) -> LeadFacts:
        timeline = self._get(LeadTimeline.create_id(lead_id))
        if timeline is None:
            raise NotFound(
                f"lead {lead_id} is unknown: the leads service has not told us about it", field="lead_id"
            )
        assert isinstance(timeline, LeadTimeline)
        return timeline.view()

    def _leads_of(self, log: VisitLog) -> dict[str, LeadFacts]:
        leads: dict[str, LeadFacts] = {}
        for record in log.visits.values():
            lead_id = record.facts.lead_id
            if lead_id not in leads:
                timeline = self._get(LeadTimeline.create_id(lead_id))
                if timeline is not None:
                    leads[lead_id] = timeline.view()
        return leads

    def _log_of(self, rep_id: str) -> VisitLog:
        log = self._get(VisitLog.create_id(rep_id))
        if log is None:
            raise NotFound(f"{rep_id} has logged no visits", field="rep_id")
        assert isinstance(log, VisitLog)
        return log

    def _rep_of_flag(self, flag_id: str) -> str:
        with self.reading():
            flag = self.desk.flags.get(flag_id)
        if flag is None:
            raise NotFound(f"no flag {flag_id}", field="flag_id")
        return flag.rep_id

    # --- commands: the rep's visit log ---------------------------------------------------------

    def log_visit(
        self,
        *,
        lead_id: str,
        visited_at: datetime,
        meta: Meta,
        position: GeoPoint | None = None,
        checkin_position: GeoPoint | None = None,
        photo_hash: str | None = None,
        notes: str = "",
        left_at: datetime | None = None,
        client_ref: str | None = None,
    ) -> str:
        """Log a visit of the acting rep (meta.actor_id: from the token, never from the body) at
        the service's time (meta.at), judge it, and return its id. The same client_ref with the
        same content returns the same id; with other content it is a 409."""
        return self.record_visit(
            lead_id=lead_id,
            visited_at=visited_at,
            meta=meta,
            position=position,
            checkin_position=checkin_position,
            photo_hash=photo_hash,
            notes=notes,
            left_at=left_at,
            client_ref=client_ref,
        ).visit_id

    def record_visit(
        self,
        *,
        lead_id: str,
        visited_at: datetime,
        meta: Meta,
        position: GeoPoint | None = None,
        checkin_position: GeoPoint | None = None,
        photo_hash: str | None = None,
        notes: str = "",
        left_at: datetime | None = None,
        client_ref: str | None = None,
    ) -> LoggedVisit:
        """`log_visit`, answering with the visit's recorded time as well (the first request's,
        for a retried one), so the API need not wait for the read models to answer."""
        rep_id = meta.actor_id
        lead = self._lead(lead_id)
        visit = new_visit(
            rep_id=rep_id,
            lead=lead,
            visited_at=visited_at,
            left_at=left_at,
            position=position,
            checkin_position=checkin_position,
            photo_hash=photo_hash,
            notes=notes,
            client_ref=client_ref,
            policy=self.policy,
            now=meta.at,
        )

        def attempt() -> LoggedVisit:
            log = self._get(VisitLog.create_id(rep_id)) or VisitLog(rep_id=rep_id, meta=meta)
            existing = log.visits.get(visit.visit_id)
            if existing is not None and _same_visit(existing.facts, visit) and existing.notes == notes:
                # A retried request: already logged.
                return LoggedVisit(visit.visit_id, existing.facts.recorded_at)
            log.log_visit(visit, notes=notes, client_ref=client_ref, lead=lead, policy=self.policy, meta=meta)
            self.save(log)
            return LoggedVisit(visit.visit_id, visit.recorded_at)

        return self._retrying(attempt)

    def correct_visit(
        self,
        visit_id: str,
        *,
        reason: str,
        meta: Meta,
        visited_at: datetime | None = None,
        left_at: datetime | None = None,
        position: GeoPoint | None = None,
        notes: str | None = None,
    ) -> list[str]:
        """The rep corrects their own visit with a new event; returns the ids of flags it raised."""

        def attempt() -> list[str]:
            log = self._get(VisitLog.create_id(meta.actor_id))
            if log is None or visit_id not in log.visits:
                raise NotFound(f"no visit {visit_id} of yours", field="visit_id")
            lead = self._lead(log.visits[visit_id].facts.lead_id)
            raised: list[str] = log.correct_visit(
                visit_id,
                visited_at=visited_at,
                left_at=left_at,
                position=position,
                notes=notes,
                reason=reason,
                lead=lead,
                policy=self.policy,
                meta=meta,
            )
            self.save(log)
            return raised

        return self._retrying(attempt)

    # --- commands: the quality-control desk ---------------------------------------------------

    def confirm_flag(self, flag_id: str, *, reason: str, fabrication: bool, meta: Meta) -> str | None:
        """qc confirms a suspicion, saying whether the visit was fabricated (a red line) or only
        broke procedure. The first fabrication on a visit emits FabricationConfirmed and looks back
        over the rep's whole history: returns that look-back's id (else None)."""
        rep_id = self._rep_of_flag(flag_id)

        def attempt() -> str | None:
            log = self._log_of(rep_id)
            look_back_id: str | None = None
            if log.confirm_flag(flag_id, reason=reason, fabrication=fabrication, meta=meta):
                look_back_id = log.confirm_fabrication(
                    log.flags[flag_id].visit_id,
                    reason=reason,
                    leads=self._leads_of(log),
                    policy=self.policy,
                    meta=meta,
                )
            self.save(log)
            return look_back_id

        return self._retrying(attempt)

    def dismiss_flag(self, flag_id: str, *, reason: str, meta: Meta) -> None:
        rep_id = self._rep_of_flag(flag_id)

        def attempt() -> None:
            log = self._log_of(rep_id)
            log.dismiss_flag(flag_id, reason=reason, meta=meta)
            self.save(log)

        self._retrying(attempt)

    def look_back(self, rep_id: str, *, reason: str, meta: Meta) -> str:
        """Judge a rep's whole history again by today's rules (e.g. a red line found elsewhere)."""
        if not reason.strip():
            raise RuleViolated("say why the rep's history is looked back over", field="reason")

        def attempt() -> str:
            log = self._log_of(rep_id)
            look_back_id = str(
                stable_id("look-back", rep_id, "requested", meta.at.isoformat(), meta.actor_id)
            )
            log.look_back(
                look_back_id,
                trigger_visit_id=None,
                trigger_flag_ids=(),
                reason=reason,
                leads=self._leads_of(log),
                policy=self.policy,
                meta=meta,
            )
            self.save(log)
            return look_back_id

        return self._retrying(attempt)

    # --- commands: the manager's weekly summary of minor breaches --------------------------------

    def summarise_minor_breaches(self, week_start: date, *, meta: Meta) -> list[str]:
        """Summarise a finished week's minor breaches, one summary per rep, all in one save;
        returns the reps summarised. Running it again for the same week does nothing."""
        with self.reading():
            rep_ids = self.desk.reps_with_breaches_in(week_start)

        def attempt() -> list[str]:
            logs = [self._log_of(rep_id) for rep_id in rep_ids]
            summarised = [log for log in logs if log.summarise_minor_breaches(week_start, meta)]
            if summarised:
                self.save(*summarised)
            return [log.rep_id for log in summarised]

        if not rep_ids:
            # Still refuse a week that is not over or does not start on a Monday.
            VisitLog.check_summary_week(week_start, meta)
            return []
        return self._retrying(attempt)

    def summarise_last_week(self, now: datetime) -> list[str]:
        """The scheduler's weekly job: summarise the last full week."""
        return self.summarise_minor_breaches(
            previous_week_start(now), meta=Meta(SCHEDULER_ACTOR, "system", now.astimezone(UTC))
        )

    # --- consumed from the leads topic (exactly once, through process_delivery) -----------------

    def _record_lead_fact(
        self,
        delivery: Delivery,
        envelope: Envelope,
        kind: LeadFactKind,
        *,
        lead_id: str,
        at: datetime,
        region: str,
        rep_id: str | None,
        detail: str = "",
        customer_position: GeoPoint | None = None,
    ) -> bool:
        meta = envelope.caused_meta()
        fact = LeadFact(
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            kind=kind,
            lead_id=lead_id,
            at=as_utc(at, "at"),
            rep_id=rep_id,
            region=region,
            customer_position=customer_position,
            detail=detail,
        )

        def handle() -> list[Aggregate]:
            timeline = self._get(LeadTimeline.create_id(fact.lead_id)) or LeadTimeline(
                lead_id=fact.lead_id, meta=meta
            )
            timeline.record(fact, meta)
            return [timeline]

        return self.process_delivery(delivery, handle)

    def on_lead_registered(self, delivery: Delivery, event: leads.LeadRegistered, envelope: Envelope) -> bool:
        try:
            customer = check_position(GeoPoint(event.customer_lat, event.customer_lon), "customer")
        except RuleViolated:
            customer = None  # an address we cannot place: the distance rule stays silent on it
        return self._record_lead_fact(
            delivery,
            envelope,
            "registered",
            lead_id=event.lead_id,
            at=event.registered_at,
            region=event.region,
            rep_id=None,
            customer_position=customer,
        )

    def on_lead_assigned(self, delivery: Delivery, event: leads.LeadAssigned, envelope: Envelope) -> bool:
        return self._record_lead_fact(
            delivery,
            envelope,
            "assigned",
            lead_id=event.lead_id,
            at=event.assigned_at,
            region=event.region,
            rep_id=event.rep_id,
        )

    def on_lead_reclaimed(self, delivery: Delivery, event: leads.LeadReclaimed, envelope: Envelope) -> bool:
        return self._record_lead_fact(
            delivery,
            envelope,
            "reclaimed",
            lead_id=event.lead_id,
            at=event.reclaimed_at,
            region=event.region,
            rep_id=event.rep_id,
            detail=event.reason,
        )

    def on_lead_kept_private(
        self, delivery: Delivery, event: leads.LeadKeptPrivate, envelope: Envelope
    ) -> bool:
        return self._record_lead_fact(
            delivery,
            envelope,
            "kept_private",
            lead_id=event.lead_id,
            at=event.kept_at,
            region=event.region,
            rep_id=event.rep_id,
        )

    def on_lead_released(self, delivery: Delivery, event: leads.LeadReleased, envelope: Envelope) -> bool:
        return self._record_lead_fact(
            delivery,
            envelope,
            "released",
            lead_id=event.lead_id,
            at=event.released_at,
            region=event.region,
            rep_id=event.rep_id,
            detail=event.reason,
        )

    def on_lead_converted(self, delivery: Delivery, event: leads.LeadConverted, envelope: Envelope) -> bool:
        return self._record_lead_fact(
            delivery,
            envelope,
            "converted",
            lead_id=event.lead_id,
            at=event.converted_at,
            region=event.region,
            rep_id=event.rep_id,
            detail=event.note,
        )

    def on_lead_closed(self, delivery: Delivery, event: leads.LeadClosed, envelope: Envelope) -> bool:
        return self._record_lead_fact(
            delivery,
            envelope,
            "closed",
            lead_id=event.lead_id,
            at=event.closed_at,
            region=event.region,
            rep_id=event.rep_id,
            detail=event.reason,
        )

    def aggregates_touched(self, envelope: Envelope, event: Any) -> Iterable[UUID]:
        """A leads event is recorded in its lead's timeline (new for nearly every lead at first);
        a replayed visits event, in its rep's visit log."""
        if isinstance(event, leads.LeadsEvent):
            lead_id = getattr(event, "lead_id", None)
            return () if lead_id is None else (LeadTimeline.create_id(lead_id),)
        rep_id = getattr(event, "rep_id", None)
        return () if rep_id is None else (VisitLog.create_id(rep_id),)

    def handlers(self) -> dict[str, Callable[[Delivery, Any, Envelope], bool]]:
        """Consumed event type → handler, for the platform's consumer."""
        return {
            "LeadRegistered": self.on_lead_registered,
            "LeadAssigned": self.on_lead_assigned,
            "LeadReclaimed": self.on_lead_reclaimed,
            "LeadKeptPrivate": self.on_lead_kept_private,
            "LeadReleased": self.on_lead_released,
            "LeadConverted": self.on_lead_converted,
            "LeadClosed": self.on_lead_closed,
        }

    # --- rebuilding from the topics: the visits topic's own events, applied again -------------
    # A fresh store that has consumed the leads topic replays the visits topic through these:
    # each fact a person stated (a visit, a correction, a decision, a requested look-back, a
    # weekly summary) is applied again with its original actor and time, and the rules derive
    # the flags afresh. Derived events on the topic (flags, fabrications, look-backs caused by a
    # confirmation) are not applied but checked: `replay_divergences` lists any the rules did
    # not derive the same way.

    def _replay(
        self, delivery: Delivery, envelope: Envelope, change: Callable[[VisitLog, Meta], None]
    ) -> bool:
        meta = Meta(
            actor_id=envelope.actor_id,
            actor_role=envelope.actor_role,
            at=envelope.occurred_at,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
        )
        rep_id = _rep_of(envelope)

        def handle() -> list[Aggregate]:
            log = self._get(VisitLog.create_id(rep_id)) or VisitLog(rep_id=rep_id, meta=meta)
            change(log, meta)
            return [log]

        return self.process_delivery(delivery, handle)

    def replay_visit_logged(self, delivery: Delivery, event: public.VisitLogged, envelope: Envelope) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            if event.visit_id in log.visits:
                return
            lead = self._lead(event.lead_id)
            visit = VisitFacts(
                visit_id=event.visit_id,
                rep_id=event.rep_id,
                lead_id=event.lead_id,
                region=event.region if event.region is not None else lead.region,
                visited_at=event.visited_at,
                left_at=event.left_at,
                recorded_at=event.recorded_at,
                position=_geo(event.position),
                checkin_position=_geo(event.checkin_position),
                photo_hash=event.photo_hash,
            )
            log.log_visit(
                visit, notes=event.notes or "", client_ref=None, lead=lead, policy=self.policy, meta=meta
            )

        return self._replay(delivery, envelope, change)

    def replay_visit_corrected(
        self, delivery: Delivery, event: public.VisitCorrected, envelope: Envelope
    ) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            log.correct_visit(
                event.visit_id,
                visited_at=event.visited_at,
                left_at=event.left_at,
                position=_geo(event.position),
                notes=event.notes,
                reason=event.reason,
                lead=self._lead(event.lead_id),
                policy=self.policy,
                meta=meta,
            )

        return self._replay(delivery, envelope, change)

    def replay_flag_confirmed(
        self, delivery: Delivery, event: public.FlagConfirmed, envelope: Envelope
    ) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            self._check_derived(log, [event.flag_id], envelope)
            if log.confirm_flag(event.flag_id, reason=event.reason, fabrication=event.fabrication, meta=meta):
                log.confirm_fabrication(
                    event.visit_id,
                    reason=event.reason,
                    leads=self._leads_of(log),
                    policy=self.policy,
                    meta=meta,
                )

        return self._replay(delivery, envelope, change)

    def replay_flag_dismissed(
        self, delivery: Delivery, event: public.FlagDismissed, envelope: Envelope
    ) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            self._check_derived(log, [event.flag_id], envelope)
            log.dismiss_flag(event.flag_id, reason=event.reason, meta=meta)

        return self._replay(delivery, envelope, change)

    def replay_look_back(
        self, delivery: Delivery, event: public.LookBackCompleted, envelope: Envelope
    ) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            if event.look_back_id not in log.look_backs:
                if event.trigger_visit_id is not None:
                    # A confirmation causes its look-back, and was applied just before it.
                    self.replay_divergences.append(f"look-back {event.look_back_id} was not caused again")
                    return
                log.look_back(
                    event.look_back_id,
                    trigger_visit_id=None,
                    trigger_flag_ids=(),
                    reason=event.reason,
                    leads=self._leads_of(log),
                    policy=self.policy,
                    meta=meta,
                )
            self._check_derived(log, event.new_flag_ids, envelope)

        return self._replay(delivery, envelope, change)

    def replay_summary(
        self, delivery: Delivery, event: public.WeeklyMinorBreachSummary, envelope: Envelope
    ) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            log.summarise_minor_breaches(event.week_start, meta)

        return self._replay(delivery, envelope, change)

    def replay_flagged(self, delivery: Delivery, event: public.VisitFlagged, envelope: Envelope) -> bool:
        def change(log: VisitLog, meta: Meta) -> None:
            self._check_derived(log, [event.flag_id], envelope)

        return self._replay(delivery, envelope, change)

    def _check_derived(self, log: VisitLog, flag_ids: Sequence[str], envelope: Envelope) -> None:
        for flag_id in flag_ids:
            if flag_id not in log.flags:
                self.replay_divergences.append(
                    f"{envelope.event_type} {envelope.event_id}: flag {flag_id} was not derived again"
                )

    def replay_handlers(self) -> dict[str, Callable[[Delivery, Any, Envelope], bool]]:
        """The visits topic's event type → how a rebuilding store applies it."""
        return {
            "VisitLogged": self.replay_visit_logged,
            "VisitCorrected": self.replay_visit_corrected,
            "VisitFlagged": self.replay_flagged,
            "FlagConfirmed": self.replay_flag_confirmed,
            "FlagDismissed": self.replay_flag_dismissed,
            "LookBackCompleted": self.replay_look_back,
            "WeeklyMinorBreachSummary": self.replay_summary,
            # FabricationConfirmed is caused again by its FlagConfirmed.
        }

    # --- queries: ownership -------------------------------------------------------------------

    def owned_at(self, lead_id: str, rep_id: str, at: datetime) -> OwnershipAnswer:
        """Did rep R own lead L at time T? With the id of the event that proves the answer."""
        return ownership_at(self._lead(lead_id), rep_id, as_utc(at, "at"))

    def ownership_history(self, lead_id: str) -> tuple[OwnershipPeriod, ...]:
        return self._lead(lead_id).periods()

    def lead(self, lead_id: str) -> LeadFacts:
        return self._lead(lead_id)

    # --- queries: visits and flags ------------------------------------------------------------

    def get_visit(self, visit_id: str, *, include_flags: bool = True) -> VisitView:
        """One visit; include_flags=False for the rep it is about (they never see flags on it)."""
        with self.reading():
            view = self.desk.visits.get(visit_id)
        if view is None:
            raise NotFound(f"no visit {visit_id}", field="visit_id")
        return view if include_flags else view.without_flags()

    def list_visits(
        self,
        *,
        rep_id: str | None = None,
        lead_id: str | None = None,
        region: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_flags: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[VisitView]:
        """Visits by claimed time. A rep's view: rep_id=self, include_flags=False; a manager's: region."""
        with self.reading():
            views = self.desk.list_visits(
                rep_id=rep_id, lead_id=lead_id, region=region, since=since, until=until
            )
        page = views[offset : offset + limit]
        return page if include_flags else [v.without_flags() for v in page]

    def get_flag(self, flag_id: str) -> FlagView:
        with self.reading():
            flag = self.desk.flags.get(flag_id)
        if flag is None:
            raise NotFound(f"no flag {flag_id}", field="flag_id")
        return flag

    def list_flags(
        self,
        *,
        region: str | None = None,
        rep_id: str | None = None,
        rule: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        not_about: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[FlagView]:
        """The QC desk's list; not_about=<viewer> so nobody reads flags about themselves."""
        with self.reading():
            flags = self.desk.list_flags(
                region=region, rep_id=rep_id, rule=rule, status=status, severity=severity, not_about=not_about
            )
        return flags[offset : offset + limit]

    def minor_breaches(
        self, *, week_start: date | None = None, rep_id: str | None = None, region: str | None = None
    ) -> list[MinorBreachView]:
        """Minor breaches (late entries) by the week they were recorded in: the manager's view."""
        with self.reading():
            breaches = list(self.desk.breaches.values())
        return sorted(
            (
                b
                for b in breaches
                if (week_start is None or b.week_start == week_start)
                and (rep_id is None or b.rep_id == rep_id)
                and (region is None or b.region == region)
            ),
            key=lambda b: (b.recorded_at, b.breach_id),
        )

    def weekly_summaries(
        self, *, week_start: date | None = None, rep_id: str | None = None, region: str | None = None
    ) -> list[WeeklySummaryView]:
        with self.reading():
            summaries = list(self.desk.summaries)
        return [
            s
            for s in summaries
            if (week_start is None or s.week_start == week_start)
            and (rep_id is None or s.rep_id == rep_id)
            and (region is None or region in s.regions)
        ]

    def get_look_back(self, look_back_id: str) -> LookBackView:
        with self.reading():
            view = self.desk.look_backs.get(look_back_id)
        if view is None:
            raise NotFound(f"no look-back {look_back_id}", field="look_back_id")
        return view

    def look_backs(self, *, rep_id: str | None = None) -> list[LookBackView]:
        with self.reading():
            views = list(self.desk.look_backs.values())
        return sorted(
            (v for v in views if rep_id is None or v.rep_id == rep_id),
            key=lambda v: (v.completed_at, v.look_back_id),
        )

    def audit_trail(
        self,
        *,
        rep_id: str | None = None,
        lead_id: str | None = None,
        include_flags: bool = True,
        region: str | None = None,
    ) -> list[AuditEntry]:
        """Every event that touched a rep (or a lead, or a rep on one lead) across the consumed
        leads events and the visit log, in the order it happened, with flags and their evidence.
        region: only that region's part (a manager's view)."""
        if rep_id is None and lead_id is None:
            raise RuleViolated("name a rep or a lead", field="rep_id")
        with self.reading():
            return self.audit.trail(
                rep_id=rep_id, lead_id=lead_id, include_flags=include_flags, region=region
            )


def _geo(point: public.GeoPoint | None) -> GeoPoint | None:
    return None if point is None else GeoPoint(point.lat, point.lon, point.accuracy_m)


def _rep_of(envelope: Envelope) -> str:
    rep_id = envelope.payload.get("rep_id")
    if not isinstance(rep_id, str) or VisitLog.create_id(rep_id) != UUID(envelope.aggregate_id):
        raise RuleViolated(f"{envelope.event_type} {envelope.event_id} is not from a rep's visit log")
    return rep_id


def _same_visit(a: VisitFacts, b: VisitFacts) -> bool:
    """The same visit, whenever it was recorded (a retried request)."""
    return (a.lead_id, a.visited_at, a.left_at, a.position, a.checkin_position, a.photo_hash) == (
        b.lead_id,
        b.visited_at,
        b.left_at,
        b.position,
        b.checkin_position,
        b.photo_hash,
    )
