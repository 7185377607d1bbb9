"""VisitLog: one rep's visit record (拜访记录) — visits, corrections, flags, decisions, look-backs.

One aggregate per rep because the rules judge a visit against the rep's other visits: saving
them in one stream makes every judgement see exactly the history before it, in one order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as LibrarySnapshot

from services.visits.domain.copying import copy_sharing_frozen_values
from services.visits.domain.ownership import LeadFacts
from services.visits.domain.rules import RULE_FUNCTIONS, SYMMETRIC_RULES, RepHistory, RuleContext, detect
from services.visits.domain.values import (
    MINOR,
    Finding,
    FlagOrigin,
    FlagStatus,
    GeoPoint,
    Severity,
    VisitFacts,
    as_utc,
    check_photo_hash,
    check_position,
    check_visit_times,
    fmt,
    week_bounds,
)
from services.visits.policy import VisitsPolicy
from shared.domain import Conflict, Forbidden, Meta, NotFound, RuleViolated, direct_events, stable_id
from shared.structures import LayeredDict

# People decide: only quality control confirms or dismisses a flag, never the machine.
DECIDING_ROLES = frozenset({"qc"})


def _strings(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)  # stored sequences come back as lists


@dataclass(frozen=True)
class VisitRecord:
    facts: VisitFacts
    notes: str
    client_ref: str | None
    corrections: int = 0
    fabrication_confirmed: bool = False


@dataclass(frozen=True)
class FlagRecord:
    """A suspicion about one visit, with its evidence, and what people decided about it."""

    flag_id: str
    visit_id: str
    lead_id: str
    region: str
    rule: str
    severity: Severity
    reason: str
    evidence: tuple[str, ...]
    origin: FlagOrigin
    look_back_id: str | None
    flagged_at: datetime
    status: FlagStatus = "open"
    fabrication: bool = False
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _strings(self.evidence))


@dataclass(frozen=True)
class MinorBreach:
    """A small breach (破窗理论) kept for the manager's weekly summary, not a fabrication flag."""

    breach_id: str
    visit_id: str
    lead_id: str
    region: str
    rule: str
    reason: str
    evidence: tuple[str, ...]
    visited_at: datetime
    recorded_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _strings(self.evidence))


@dataclass(frozen=True)
class LookBackFinding:
    """One thing a look-back found: a flag (or minor breach) id, and whether it was new."""

    finding_id: str
    visit_id: str
    rule: str
    severity: Severity
    new: bool


def flag_id_for(visit_id: str, rule: str) -> str:
    """One flag per visit and rule, so judging a visit again never raises the same flag twice."""
    return str(stable_id("flag", visit_id, rule))


def breach_id_for(visit_id: str, rule: str) -> str:
    return str(stable_id("minor-breach", visit_id, rule))


def visit_id_for(
    rep_id: str, lead_id: str, visited_at: datetime, recorded_at: datetime, client_ref: str | None
) -> str:
    """A client's reference makes a retried request the same visit; without one, the inputs do."""
    if client_ref:
        return str(stable_id("visit", rep_id, "ref", client_ref))
    return str(stable_id("visit", rep_id, lead_id, visited_at.isoformat(), recorded_at.isoformat()))


def new_visit(
    *,
    rep_id: str,
    lead: LeadFacts,
    visited_at: datetime,
    left_at: datetime | None,
    position: GeoPoint | None,
    checkin_position: GeoPoint | None,
    photo_hash: str | None,
    notes: str,
    client_ref: str | None,
    policy: VisitsPolicy,
    now: datetime,
) -> VisitFacts:
    """A visit the rep wants logged, checked; its recorded time is `now` (the service's clock)."""
    now = as_utc(now, "recorded_at")
    visited_at, left_at = check_visit_times(
        visited_at,
        left_at,
        now=now,
        future_tolerance=policy.future_tolerance,
        max_backdating=policy.max_backdating,
    )
    check_notes(notes, policy)
    if client_ref is not None and not (0 < len(client_ref) <= 200):
        raise RuleViolated("client_ref must be 1 to 200 characters", field="client_ref")
    return VisitFacts(
        visit_id=visit_id_for(rep_id, lead.lead_id, visited_at, now, client_ref),
        rep_id=rep_id,
        lead_id=lead.lead_id,
        region=lead.region,
        visited_at=visited_at,
        left_at=left_at,
        recorded_at=now,
        position=check_position(position, "position"),
        checkin_position=check_position(checkin_position, "checkin_position"),
        photo_hash=check_photo_hash(photo_hash),
    )


def check_notes(notes: str, policy: VisitsPolicy) -> None:
    if len(notes) > policy.notes_max_chars:
        raise RuleViolated(f"notes are limited to {policy.notes_max_chars} characters", field="notes")


HISTORY = "_history"  # the attribute holding a log's RepHistory, derived and never snapshotted
LAYERED = ("visits", "flags", "breaches")  # LayeredDicts in the log, plain dicts in its snapshot


# A visit log's attributes as its snapshot holds them: every attribute but the derived history.
class VisitLogState(TypedDict):
    _created_on: datetime
    _modified_on: datetime
    rep_id: str
    visits: dict[str, VisitRecord]
    flags: dict[str, FlagRecord]
    breaches: dict[str, MinorBreach]
    summarised_weeks: list[str]
    look_backs: list[str]


@direct_events
class VisitLog(Aggregate):
    """Every visit one rep logged, every flag raised about them, every decision on those flags."""

    class Opened(Aggregate.Created):
        rep_id: str
        meta: Meta

    class VisitLogged(Aggregate.Event):
        visit: VisitFacts
        notes: str
        client_ref: str | None
        meta: Meta

    class VisitCorrected(Aggregate.Event):
        visit: VisitFacts  # the visit as corrected; the logged one stays in the stream
        notes: str
        changed: Sequence[str]
        reason: str
        meta: Meta

    class VisitFlagged(Aggregate.Event):
        flag_id: str
        visit_id: str
        rep_id: str
        lead_id: str
        region: str
        rule: str
        severity: str
        reason: str
        evidence: Sequence[str]
        origin: str
        look_back_id: str | None
        meta: Meta

    class MinorBreachNoted(Aggregate.Event):
        breach: MinorBreach
        meta: Meta

    class FlagConfirmed(Aggregate.Event):
        flag_id: str
        visit_id: str
        rep_id: str
        region: str
        rule: str
        fabrication: bool
        reason: str
        meta: Meta

    class FlagDismissed(Aggregate.Event):
        flag_id: str
        visit_id: str
        rep_id: str
        region: str
        rule: str
        reason: str
        meta: Meta

    class FabricationConfirmed(Aggregate.Event):
        visit_id: str
        rep_id: str
        lead_id: str
        region: str
        visited_at: datetime
        flag_ids: Sequence[str]
        evidence: Sequence[str]
        reason: str
        look_back_id: str
        meta: Meta

    class LookBackCompleted(Aggregate.Event):
        look_back_id: str
        rep_id: str
        trigger_visit_id: str | None
        trigger_flag_ids: Sequence[str]
        visits_examined: int
        findings: Sequence[LookBackFinding]
        reason: str
        meta: Meta

    class MinorBreachesSummarised(Aggregate.Event):
        rep_id: str
        week_start: date
        breaches: Sequence[MinorBreach]
        meta: Meta

    class Snapshot(LibrarySnapshot):
        """The log's state without its history index, which is derived from the visits: a log
        loaded from a snapshot builds it again when first judging. Its state is typed, so it is
        stored as typed JSON (shared.codec): a long log's snapshot is encoded in C."""

        state: VisitLogState  # type: ignore[assignment]

        @classmethod
        def take(cls, aggregate: Any) -> Any:
            snapshot = super().take(aggregate)
            state = cast(dict[str, Any], snapshot.state)
            state.pop(HISTORY, None)
            for name in LAYERED:
                state[name] = state[name].to_dict()
            return snapshot

        def mutate(self, _: None) -> Any:
            log = super().mutate(None)
            for name in LAYERED:
                setattr(log, name, LayeredDict(getattr(log, name)))
            return log

    @staticmethod
    def create_id(rep_id: str) -> UUID:
        return stable_id("visit-log", rep_id)

    @event(Opened)
    def __init__(self, rep_id: str, meta: Meta) -> None:
        self.rep_id = rep_id
        # Held in LayeredDicts: a command's copy of a log with years of visits copies little.
        self.visits: LayeredDict[str, VisitRecord] = LayeredDict()
        self.flags: LayeredDict[str, FlagRecord] = LayeredDict()
        self.breaches: LayeredDict[str, MinorBreach] = LayeredDict()
        self.summarised_weeks: list[str] = []
        self.look_backs: list[str] = []
        self._history = RepHistory()

    def __deepcopy__(self, memo: dict[int, Any]) -> VisitLog:
        # Every record held is frozen and a change replaces it: copying the containers is enough.
        return copy_sharing_frozen_values(self)

    # --- logging and correcting -------------------------------------------------------------

    def log_visit(
        self,
        visit: VisitFacts,
        *,
        notes: str,
        client_ref: str | None,
        lead: LeadFacts,
        policy: VisitsPolicy,
        meta: Meta,
    ) -> list[str]:
        """Log a checked visit, then judge it by every enabled rule; returns the flag ids raised."""
        self._visit_logged(visit, notes, client_ref, meta)
        return self._judge(visit.visit_id, {lead.lead_id: lead}, policy, "logging", None, meta)

    @event(VisitLogged)
    def _visit_logged(self, visit: VisitFacts, notes: str, client_ref: str | None, meta: Meta) -> None:
        if visit.rep_id != self.rep_id:
            raise Forbidden("a rep logs only their own visits", field="rep_id")
        if visit.visit_id in self.visits:
            raise Conflict(f"visit {visit.visit_id} is already logged", field="client_ref")
        history = self.history()  # before the change: a log from a snapshot builds it from the visits
        self.visits[visit.visit_id] = VisitRecord(visit, notes, client_ref)
        self._history = history.with_visit(visit)

    def correct_visit(
        self,
        visit_id: str,
        *,
        visited_at: datetime | None,
        left_at: datetime | None,
        position: GeoPoint | None,
        notes: str | None,
        reason: str,
        lead: LeadFacts,
        policy: VisitsPolicy,
        meta: Meta,
    ) -> list[str]:
        """A correction is a new event: the visit as first logged stays in the record. The
        corrected visit is judged again; flags already raised stay raised."""
        record = self.visit(visit_id)
        old = record.facts
        new_visited, new_left = check_visit_times(
            visited_at or old.visited_at,
            left_at or old.left_at,
            now=as_utc(meta.at, "at"),
            future_tolerance=policy.future_tolerance,
            max_backdating=policy.max_backdating,
        )
        if notes is not None:
            check_notes(notes, policy)
        corrected = dataclasses.replace(
            old,
            visited_at=new_visited,
            left_at=new_left,
            position=check_position(position, "position") if position is not None else old.position,
        )
        new_notes = record.notes if notes is None else notes
        changed = [
            name
            for name in ("visited_at", "left_at", "position")
            if getattr(old, name) != getattr(corrected, name)
        ]
        if new_notes != record.notes:
            changed.append("notes")
        if not changed:
            raise RuleViolated("the correction changes nothing")
        self._visit_corrected(corrected, new_notes, changed, reason, meta)
        return self._judge(visit_id, {lead.lead_id: lead}, policy, "correction", None, meta)

    @event(VisitCorrected)
    def _visit_corrected(
        self, visit: VisitFacts, notes: str, changed: Sequence[str], reason: str, meta: Meta
    ) -> None:
        record = self.visit(visit.visit_id)
        if meta.actor_id != self.rep_id:
            raise Forbidden("only the rep who logged a visit can correct it")
        if record.fabrication_confirmed:
            raise Conflict("this visit was confirmed as fabricated; its record can no longer be corrected")
        if not reason.strip():
            raise RuleViolated("say why the visit is corrected", field="reason")
        history = self.history()  # before the change, as in _visit_logged
        self.visits[visit.visit_id] = dataclasses.replace(
            record, facts=visit, notes=notes, corrections=record.corrections + 1
        )
        self._history = history.with_visit(visit, replacing=record.facts)

    # --- judging ----------------------------------------------------------------------------

    def history(self) -> RepHistory:
        """The rep's visits, indexed for the rules: kept up to date as visits are logged and
        corrected (a value, so a command's copy of the log shares it safely)."""
        history: RepHistory | None = self.__dict__.get(HISTORY)
        if history is None:  # loaded from a snapshot
            history = self._history = RepHistory(record.facts for record in self.visits.values())
        return history

    def _judge(
        self,
        visit_id: str,
        leads: Mapping[str, LeadFacts],
        policy: VisitsPolicy,
        origin: FlagOrigin,
        look_back_id: str | None,
        meta: Meta,
        history: RepHistory | None = None,
        findings_out: list[tuple[Finding, bool]] | None = None,
    ) -> list[str]:
        """Run the rules on one visit and note what they find; returns the new flag ids."""
        if history is None:
            history = self.history()
        visit = self.visits[visit_id].facts
        raised: list[str] = []
        for finding in detect(visit, RuleContext(history, leads.get(visit.lead_id)), policy):
            self._note(finding, origin, look_back_id, meta, raised, findings_out)
            if finding.rule in SYMMETRIC_RULES and origin != "look_back":
                # The other visits it names are judged by the same rule, now that this one exists.
                for other_id in finding.related_visit_ids:
                    other = self.visits[other_id].facts
                    ctx = RuleContext(history, leads.get(other.lead_id))
                    again = RULE_FUNCTIONS[finding.rule](other, ctx, policy)
                    if again is not None:
                        self._note(again, origin, look_back_id, meta, raised, findings_out)
        return raised

    def _note(
        self,
        finding: Finding,
        origin: FlagOrigin,
        look_back_id: str | None,
        meta: Meta,
        raised: list[str],
        findings_out: list[tuple[Finding, bool]] | None,
    ) -> None:
        visit = self.visits[finding.visit_id].facts
        if finding.severity == MINOR:
            breach_id = breach_id_for(finding.visit_id, finding.rule)
            new = breach_id not in self.breaches
            if new:
                breach = MinorBreach(
                    breach_id=breach_id,
                    visit_id=visit.visit_id,
                    lead_id=visit.lead_id,
                    region=visit.region,
                    rule=finding.rule,
                    reason=finding.reason,
                    evidence=finding.evidence,
                    visited_at=visit.visited_at,
                    recorded_at=visit.recorded_at,
                )
                self._minor_breach_noted(breach, meta)
        else:
            flag_id = flag_id_for(finding.visit_id, finding.rule)
            new = flag_id not in self.flags
            if new:
                self._visit_flagged(
                    flag_id=flag_id,
                    visit_id=visit.visit_id,
                    rep_id=self.rep_id,
                    lead_id=visit.lead_id,
                    region=visit.region,
                    rule=finding.rule,
                    severity=finding.severity,
                    reason=finding.reason,
                    evidence=finding.evidence,
                    origin=origin,
                    look_back_id=look_back_id,
                    meta=meta,
                )
                raised.append(flag_id)
        if findings_out is not None:
            findings_out.append((finding, new))

    @event(VisitFlagged)
    def _visit_flagged(
        self,
        flag_id: str,
        visit_id: str,
        rep_id: str,
        lead_id: str,
        region: str,
        rule: str,
        severity: Severity,
        reason: str,
        evidence: Sequence[str],
        origin: FlagOrigin,
        look_back_id: str | None,
        meta: Meta,
    ) -> None:
        self.visit(visit_id)
        if not evidence:
            raise RuleViolated("a flag must name the events that prove it")
        self.flags[flag_id] = FlagRecord(
            flag_id=flag_id,
            visit_id=visit_id,
            lead_id=lead_id,
            region=region,
            rule=rule,
            severity=severity,
            reason=reason,
            evidence=tuple(evidence),
            origin=origin,
            look_back_id=look_back_id,
            flagged_at=meta.at,
        )

    @event(MinorBreachNoted)
    def _minor_breach_noted(self, breach: MinorBreach, meta: Meta) -> None:
        self.breaches[breach.breach_id] = breach

    # --- the quality-control desk -----------------------------------------------------------

    def _deciding(self, flag_id: str, reason: str, meta: Meta) -> FlagRecord:
        flag = self.flag(flag_id)
        if meta.actor_role not in DECIDING_ROLES:
            raise Forbidden(f"only quality control decides flags, not role '{meta.actor_role}'")
        if meta.actor_id == self.rep_id:
            raise Forbidden("no one decides a flag about themselves")
        if flag.status != "open":
            raise Conflict(f"flag {flag_id} was already {flag.status} by {flag.decided_by}", field="flag_id")
        if not reason.strip():
            raise RuleViolated("a decision needs a reason", field="reason")
        return flag

    def confirm_flag(self, flag_id: str, *, reason: str, fabrication: bool, meta: Meta) -> bool:
        """Confirm a suspicion; True when it newly confirms the visit as a fabrication, which
        the caller must follow with `confirm_fabrication` (it needs the leads to look back)."""
        flag = self._deciding(flag_id, reason, meta)
        self._flag_confirmed(
            flag_id, flag.visit_id, self.rep_id, flag.region, flag.rule, fabrication, reason, meta
        )
        return fabrication and not self.visits[flag.visit_id].fabrication_confirmed

    @event(FlagConfirmed)
    def _flag_confirmed(
        self,
        flag_id: str,
        visit_id: str,
        rep_id: str,
        region: str,
        rule: str,
        fabrication: bool,
        reason: str,
        meta: Meta,
    ) -> None:
        flag = self._deciding(flag_id, reason, meta)
        self.flags[flag_id] = dataclasses.replace(
            flag,
            status="confirmed",
            fabrication=fabrication,
            decided_by=meta.actor_id,
            decided_at=meta.at,
            decision_reason=reason,
        )

    def dismiss_flag(self, flag_id: str, *, reason: str, meta: Meta) -> None:
        flag = self._deciding(flag_id, reason, meta)
        self._flag_dismissed(flag_id, flag.visit_id, self.rep_id, flag.region, flag.rule, reason, meta)

    @event(FlagDismissed)
    def _flag_dismissed(
        self, flag_id: str, visit_id: str, rep_id: str, region: str, rule: str, reason: str, meta: Meta
    ) -> None:
        flag = self._deciding(flag_id, reason, meta)
        self.flags[flag_id] = dataclasses.replace(
            flag, status="dismissed", decided_by=meta.actor_id, decided_at=meta.at, decision_reason=reason
        )

    def look_back_id_for(self, visit_id: str) -> str:
        return str(stable_id("look-back", self.rep_id, visit_id))

    def confirm_fabrication(
        self, visit_id: str, *, reason: str, leads: Mapping[str, LeadFacts], policy: VisitsPolicy, meta: Meta
    ) -> str:
        """A red line: say so publicly with every confirmed flag's evidence, then look back over
        the rep's whole history with the same rules (蟑螂理论). Returns the look-back id."""
        record = self.visit(visit_id)
        confirmed = [
            f
            for f in self.flags.values()
            if f.visit_id == visit_id and f.status == "confirmed" and f.fabrication
        ]
        look_back_id = self.look_back_id_for(visit_id)
        evidence = tuple(dict.fromkeys(e for f in confirmed for e in f.evidence))
        self._fabrication_confirmed(
            visit_id=visit_id,
            rep_id=self.rep_id,
            lead_id=record.facts.lead_id,
            region=record.facts.region,
            visited_at=record.facts.visited_at,
            flag_ids=[f.flag_id for f in confirmed],
            evidence=list(evidence),
            reason=reason,
            look_back_id=look_back_id,
            meta=meta,
        )
        self.look_back(
            look_back_id,
            trigger_visit_id=visit_id,
            trigger_flag_ids=[f.flag_id for f in confirmed],
            reason=f"fabrication confirmed on visit {visit_id}: {reason}",
            leads=leads,
            policy=policy,
            meta=meta,
        )
        return look_back_id

    @event(FabricationConfirmed)
    def _fabrication_confirmed(
        self,
        visit_id: str,
        rep_id: str,
        lead_id: str,
        region: str,
        visited_at: datetime,
        flag_ids: Sequence[str],
        evidence: Sequence[str],
        reason: str,
        look_back_id: str,
        meta: Meta,
    ) -> None:
        record = self.visit(visit_id)
        if record.fabrication_confirmed:
            raise Conflict(f"visit {visit_id} was already confirmed as fabricated")
        if not flag_ids:
            raise RuleViolated("a fabrication is confirmed on a confirmed flag, never without one")
        self.visits[visit_id] = dataclasses.replace(record, fabrication_confirmed=True)

    def look_back(
        self,
        look_back_id: str,
        *,
        trigger_visit_id: str | None,
        trigger_flag_ids: Sequence[str],
        reason: str,
        leads: Mapping[str, LeadFacts],
        policy: VisitsPolicy,
        meta: Meta,
    ) -> list[LookBackFinding]:
        """Judge every visit of the rep again with today's rules; new suspicions become flags."""
        if look_back_id in self.look_backs:
            raise Conflict(f"look-back {look_back_id} was already done")
        history = self.history()
        found: list[tuple[Finding, bool]] = []
        for visit in history.visits:
            self._judge(visit.visit_id, leads, policy, "look_back", look_back_id, meta, history, found)
        findings = [
            LookBackFinding(
                finding_id=breach_id_for(f.visit_id, f.rule)
                if f.severity == MINOR
                else flag_id_for(f.visit_id, f.rule),
                visit_id=f.visit_id,
                rule=f.rule,
                severity=f.severity,
                new=new,
            )
            for f, new in found
            if f.visit_id != trigger_visit_id
        ]
        self._look_back_completed(
            look_back_id=look_back_id,
            rep_id=self.rep_id,
            trigger_visit_id=trigger_visit_id,
            trigger_flag_ids=list(trigger_flag_ids),
            visits_examined=len(history),
            findings=findings,
            reason=reason,
            meta=meta,
        )
        return findings

    @event(LookBackCompleted)
    def _look_back_completed(
        self,
        look_back_id: str,
        rep_id: str,
        trigger_visit_id: str | None,
        trigger_flag_ids: Sequence[str],
        visits_examined: int,
        findings: Sequence[LookBackFinding],
        reason: str,
        meta: Meta,
    ) -> None:
        self.look_backs.append(look_back_id)

    # --- the manager's weekly summary of minor breaches --------------------------------------

    def summarise_minor_breaches(self, week_start: date, meta: Meta) -> bool:
        """Summarise the week's minor breaches once the week is over; False if none or done."""
        start, end = self.check_summary_week(week_start, meta)
        if week_start.isoformat() in self.summarised_weeks:
            return False
        breaches = sorted(
            (b for b in self.breaches.values() if start <= b.recorded_at < end),
            key=lambda b: (b.recorded_at, b.breach_id),
        )
        if not breaches:
            return False
        self._minor_breaches_summarised(self.rep_id, week_start, breaches, meta)
        return True

    @staticmethod
    def check_summary_week(week_start: date, meta: Meta) -> tuple[datetime, datetime]:
        """A summary is of a whole week (Monday to Monday, UTC) that is over."""
        start, end = week_bounds(week_start)
        if meta.at < end:
            raise RuleViolated(f"the week of {week_start} is not over until {fmt(end)}", field="week_start")
        return start, end

    @event(MinorBreachesSummarised)
    def _minor_breaches_summarised(
        self, rep_id: str, week_start: date, breaches: Sequence[MinorBreach], meta: Meta
    ) -> None:
        self.summarised_weeks.append(week_start.isoformat())

    # --- reading ----------------------------------------------------------------------------

    def visit(self, visit_id: str) -> VisitRecord:
        try:
            return self.visits[visit_id]
        except KeyError:
            raise NotFound(f"no visit {visit_id} in {self.rep_id}'s record", field="visit_id") from None

    def flag(self, flag_id: str) -> FlagRecord:
        try:
            return self.flags[flag_id]
        except KeyError:
            raise NotFound(f"no flag {flag_id}", field="flag_id") from None
