"""The detection rules: small pure functions over a visit and the rep's history, each returning
what it found with the ids of the events that prove it. Same inputs, same findings, always."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.visits.domain.ownership import LeadFacts, ownership_at
from services.visits.domain.values import (
    BULK_ENTRY,
    DUPLICATE_VISIT,
    FAR_FROM_CUSTOMER,
    IMPOSSIBLE_TRAVEL,
    LATE_ENTRY,
    MINOR,
    MISSING_CHECKIN_EVIDENCE,
    MODERATE,
    NOT_THE_OWNER,
    OVERLAPPING_VISITS,
    RULES,
    SERIOUS,
    Finding,
    VisitFacts,
    fmt,
    human,
)
from services.visits.policy import VisitsPolicy
from shared.structures import LayeredDict, SortedRun

# Rules about two or more visits: when one fires, the others it names are judged again too,
# since which of them is the invented one is for people to decide.
SYMMETRIC_RULES = frozenset({BULK_ENTRY, IMPOSSIBLE_TRAVEL, OVERLAPPING_VISITS})


def _key(visit: VisitFacts) -> tuple[datetime, str]:
    return visit.visited_at, visit.visit_id


def _visited_at(visit: VisitFacts) -> datetime:
    return visit.visited_at


def _recorded_key(visit: VisitFacts) -> tuple[datetime, str]:
    return visit.recorded_at, visit.visit_id


def _recorded_at(visit: VisitFacts) -> datetime:
    return visit.recorded_at


Visits = tuple[VisitFacts, ...]


class RepHistory:
    """One rep's visits, indexed for the windows the rules look through.

    A value: `with_visit` answers a new history and leaves this one as it was. A visit log keeps
    its history up to date that way (a command changes a copy of the cached log, which shares
    this one) instead of sorting all the rep's visits again for every visit: a year of visits
    made that most of the cost of logging one. The new history shares nearly all of this one's
    indexes (`shared.structures`): adding a visit costs about the same after 10,000 as after 10.
    """

    _claimed: SortedRun[VisitFacts]  # in claimed order
    _by_recorded: SortedRun[VisitFacts]
    _by_lead: LayeredDict[str, SortedRun[VisitFacts]]  # a lead's visits, in claimed order
    _by_photo: LayeredDict[str, SortedRun[VisitFacts]]

    def __init__(self, visits: Iterable[VisitFacts] = ()) -> None:
        visits = list(visits)
        self._claimed = SortedRun(visits, key=_key)
        self._by_recorded = SortedRun(visits, key=_recorded_key)
        by_lead: dict[str, list[VisitFacts]] = {}
        by_photo: dict[str, list[VisitFacts]] = {}
        for visit in visits:
            by_lead.setdefault(visit.lead_id, []).append(visit)
            if visit.photo_hash:
                by_photo.setdefault(visit.photo_hash, []).append(visit)
        self._by_lead = LayeredDict((lead, SortedRun(group, key=_key)) for lead, group in by_lead.items())
        self._by_photo = LayeredDict((photo, SortedRun(group, key=_key)) for photo, group in by_photo.items())

    def with_visit(self, visit: VisitFacts, *, replacing: VisitFacts | None = None) -> RepHistory:
        """This history with `visit` added, in place of `replacing` (the same visit before a
        correction) when given."""
        new = object.__new__(RepHistory)
        claimed, by_recorded = self._claimed, self._by_recorded
        by_lead, by_photo = self._by_lead.copy(), self._by_photo.copy()
        if replacing is not None:
            claimed, by_recorded = claimed.removed(replacing), by_recorded.removed(replacing)
            by_lead[replacing.lead_id] = by_lead[replacing.lead_id].removed(replacing)
            if replacing.photo_hash:
                by_photo[replacing.photo_hash] = by_photo[replacing.photo_hash].removed(replacing)
        new._claimed, new._by_recorded = claimed.inserted(visit), by_recorded.inserted(visit)
        by_lead[visit.lead_id] = by_lead.get(visit.lead_id, _NO_VISITS).inserted(visit)
        if visit.photo_hash:
            by_photo[visit.photo_hash] = by_photo.get(visit.photo_hash, _NO_VISITS).inserted(visit)
        new._by_lead, new._by_photo = by_lead, by_photo
        return new

    @property
    def visits(self) -> Visits:
        """Every visit, in claimed order (a tuple of them all: for walking the whole history)."""
        return self._claimed.items()

    def __len__(self) -> int:
        return len(self._claimed)

    def __eq__(self, other: object) -> bool:
        # Every index is a function of the visits.
        return isinstance(other, RepHistory) and self.visits == other.visits

    def __hash__(self) -> int:
        return hash(self.visits)

    def visited_between(self, start: datetime, end: datetime) -> Visits:
        """Visits claimed to start in [start, end], in claimed order."""
        return self._claimed.between(start, end, _visited_at)

    def recorded_between(self, start: datetime, end: datetime) -> Visits:
        """Visits recorded in [start, end], in recorded order."""
        return self._by_recorded.between(start, end, _recorded_at)

    def of_lead(self, lead_id: str) -> Visits:
        return self._by_lead.get(lead_id, _NO_VISITS).items()

    def of_lead_visited_between(self, lead_id: str, start: datetime, end: datetime) -> Visits:
        """The lead's visits claimed to start in [start, end], in claimed order."""
        return self._by_lead.get(lead_id, _NO_VISITS).between(start, end, _visited_at)

    def with_photo(self, photo_hash: str) -> Visits:
        return self._by_photo.get(photo_hash, _NO_VISITS).items()


_NO_VISITS: SortedRun[VisitFacts] = SortedRun(key=_key)


@dataclass(frozen=True)
class RuleContext:
    history: RepHistory  # the rep's visits (the visit judged may be among them: rules skip it)
    lead: LeadFacts | None  # the visit's lead as the leads topic told it, when known


Rule = Callable[[VisitFacts, RuleContext, VisitsPolicy], Finding | None]


def not_the_owner(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """The rep did not own the lead at the moment the visit is claimed to have happened."""
    if ctx.lead is None:
        return None
    # Judged by what the leads topic had said when the visit was recorded, never by what came later.
    answer = ownership_at(ctx.lead.as_of(visit.recorded_at), visit.rep_id, visit.visited_at)
    if answer.owned or not answer.evidence:
        return None  # no accusation without an event that proves it
    return Finding(
        visit_id=visit.visit_id,
        rule=NOT_THE_OWNER,
        severity=SERIOUS,
        reason=f"visit claimed at {fmt(visit.visited_at)} to lead {visit.lead_id}, "
        f"which {visit.rep_id} did not own then: {answer.explanation}",
        evidence=(visit.visit_id, *answer.evidence),
    )


def late_entry(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """Entered long after it happened: a minor breach first, a flag when very late."""
    lag = visit.recorded_at - visit.visited_at
    if lag > policy.late_entry_flag_after:
        severity, limit = MODERATE, policy.late_entry_flag_after
    elif lag > policy.late_entry_minor_after:
        severity, limit = MINOR, policy.late_entry_minor_after
    else:
        return None
    return Finding(
        visit_id=visit.visit_id,
        rule=LATE_ENTRY,
        severity=severity,
        reason=f"recorded at {fmt(visit.recorded_at)}, {human(lag)} after the claimed visit at "
        f"{fmt(visit.visited_at)} (limit {human(limit)})",
        evidence=(visit.visit_id,),
    )


def bulk_entry(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """Many visits recorded within minutes of one another but claimed to be spread over the day."""
    window = policy.bulk_entry_window
    near = ctx.history.recorded_between(visit.recorded_at - window, visit.recorded_at + window)
    if all(v.visit_id != visit.visit_id for v in near):
        near = tuple(sorted([*near, visit], key=_recorded_key))
    best: list[VisitFacts] = []
    # Every run of visits recorded within one window that contains this one: keep the largest.
    for start in near:
        if start.recorded_at > visit.recorded_at:
            break
        group = [v for v in near if start.recorded_at <= v.recorded_at <= start.recorded_at + window]
        if all(v.visit_id != visit.visit_id for v in group) or len(group) < policy.bulk_entry_min_visits:
            continue
        claimed = [v.visited_at for v in group]
        if max(claimed) - min(claimed) <= policy.bulk_entry_min_claimed_span:
            continue
        if len(group) > len(best):
            best = group
    if not best:
        return None
    claimed = sorted(v.visited_at for v in best)
    others = tuple(v.visit_id for v in best if v.visit_id != visit.visit_id)
    return Finding(
        visit_id=visit.visit_id,
        rule=BULK_ENTRY,
        severity=SERIOUS,
        reason=f"{len(best)} visits recorded within {human(best[-1].recorded_at - best[0].recorded_at)} "
        f"({fmt(best[0].recorded_at)} to {fmt(best[-1].recorded_at)}) claim times spread over "
        f"{human(claimed[-1] - claimed[0])} ({fmt(claimed[0])} to {fmt(claimed[-1])})",
        evidence=(visit.visit_id, *others),
        related_visit_ids=others,
    )


def impossible_travel(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """The nearest visits before and after are too far away for the time between them."""
    here = visit.where
    if here is None:
        return None
    around = ctx.history.visited_between(
        visit.visited_at - policy.history_window, visit.visited_at + policy.history_window
    )
    # The nearest placed visit on either side: walk out from where this one sorts among them.
    i = bisect.bisect_left(around, _key(visit), key=_key)
    nearest = [
        v
        for v in (
            next((v for v in reversed(around[:i]) if v.where is not None), None),
            next((v for v in around[i:] if v.visit_id != visit.visit_id and v.where is not None), None),
        )
        if v is not None
    ]
    too_fast: list[tuple[VisitFacts, float, float]] = []
    for other in nearest:
        assert other.where is not None
        distance = here.distance_m(other.where)
        if distance <= policy.travel_min_distance_m:
            continue
        hours = abs((visit.visited_at - other.visited_at).total_seconds()) / 3600
        speed = float("inf") if hours == 0 else distance / 1000 / hours
        if speed > policy.max_travel_speed_kmh:
            too_fast.append((other, distance, speed))
    if not too_fast:
        return None
    parts = [
        f"{distance / 1000:.1f} km from visit {other.visit_id} at {fmt(other.visited_at)} in "
        f"{human(abs(visit.visited_at - other.visited_at))}"
        + ("" if speed == float("inf") else f" ({speed:.0f} km/h)")
        for other, distance, speed in too_fast
    ]
    others = tuple(other.visit_id for other, _, _ in too_fast)
    return Finding(
        visit_id=visit.visit_id,
        rule=IMPOSSIBLE_TRAVEL,
        severity=SERIOUS,
        reason=f"visit at {fmt(visit.visited_at)} is "
        + "; and ".join(parts)
        + f", faster than {policy.max_travel_speed_kmh:.0f} km/h",
        evidence=(visit.visit_id, *others),
        related_visit_ids=others,
    )


def overlapping_visits(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """Two visits to different leads at once (a visit without a leaving time lasts the assumed time)."""
    duration = policy.assumed_visit_duration
    start, end = visit.visited_at, visit.ends_at(duration)
    candidates = ctx.history.visited_between(start - policy.history_window, end)
    overlapping = [
        v
        for v in candidates
        if v.visit_id != visit.visit_id
        and v.lead_id != visit.lead_id  # the same lead twice is a duplicate, not an overlap
        and v.visited_at < end
        and start < v.ends_at(duration)
    ]
    if not overlapping:
        return None
    others = tuple(v.visit_id for v in overlapping)
    listed = ", ".join(
        f"{v.visit_id} (lead {v.lead_id}, {fmt(v.visited_at)} to {fmt(v.ends_at(duration))})"
        for v in overlapping
    )
    return Finding(
        visit_id=visit.visit_id,
        rule=OVERLAPPING_VISITS,
        severity=MODERATE,
        reason=f"visit from {fmt(start)} to {fmt(end)} overlaps {listed}",
        evidence=(visit.visit_id, *others),
        related_visit_ids=others,
    )


def far_from_customer(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """The on-site check-in was far from the customer's address, beyond the fix's own accuracy."""
    lead, checkin = ctx.lead, visit.checkin_position
    if lead is None or lead.customer_position is None or lead.customer_position_event_id is None:
        return None
    if checkin is None:
        return None  # missing evidence is its own rule
    distance = checkin.distance_m(lead.customer_position)
    accuracy = checkin.accuracy_m or 0.0
    if distance - accuracy <= policy.far_from_customer_m:
        return None
    return Finding(
        visit_id=visit.visit_id,
        rule=FAR_FROM_CUSTOMER,
        severity=MODERATE,
        reason=f"checked in {distance:.0f} m from the customer's address"
        + (f" (fix accurate to {accuracy:.0f} m)" if accuracy else "")
        + f", more than {policy.far_from_customer_m:.0f} m",
        evidence=(visit.visit_id, lead.customer_position_event_id),
    )


def missing_checkin_evidence(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """No on-site position or photo, or a position too imprecise to prove anything."""
    missing: list[str] = []
    checkin = visit.checkin_position
    if policy.require_checkin_position:
        if checkin is None:
            missing.append("no check-in position")
        elif checkin.accuracy_m is not None and checkin.accuracy_m > policy.max_checkin_accuracy_m:
            missing.append(
                f"check-in position only accurate to {checkin.accuracy_m:.0f} m "
                f"(needs {policy.max_checkin_accuracy_m:.0f} m)"
            )
    if policy.require_photo and not visit.photo_hash:
        missing.append("no check-in photo")
    if not missing:
        return None
    return Finding(
        visit_id=visit.visit_id,
        rule=MISSING_CHECKIN_EVIDENCE,
        severity=MODERATE,
        reason="check-in evidence missing: " + ", ".join(missing),
        evidence=(visit.visit_id,),
    )


def duplicate_visit(visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy) -> Finding | None:
    """The same visit logged before: same lead at nearly the same claimed time, or the same photo."""
    mine = (visit.recorded_at, visit.visit_id)
    originals: dict[str, str] = {}
    within = policy.duplicate_within
    for other in ctx.history.of_lead_visited_between(
        visit.lead_id, visit.visited_at - within, visit.visited_at + within
    ):
        if (other.recorded_at, other.visit_id) < mine:
            originals[other.visit_id] = (
                f"{other.visit_id} (same lead, claimed at {fmt(other.visited_at)}, "
                f"recorded at {fmt(other.recorded_at)})"
            )
    if visit.photo_hash:
        for other in ctx.history.with_photo(visit.photo_hash):
            if (other.recorded_at, other.visit_id) < mine and other.visit_id not in originals:
                originals[other.visit_id] = f"{other.visit_id} (the same photo, lead {other.lead_id})"
    if not originals:
        return None
    return Finding(
        visit_id=visit.visit_id,
        rule=DUPLICATE_VISIT,
        severity=MODERATE,
        reason="logged before as " + "; ".join(originals.values()),
        evidence=(visit.visit_id, *originals),
    )


RULE_FUNCTIONS: dict[str, Rule] = {
    NOT_THE_OWNER: not_the_owner,
    LATE_ENTRY: late_entry,
    BULK_ENTRY: bulk_entry,
    IMPOSSIBLE_TRAVEL: impossible_travel,
    OVERLAPPING_VISITS: overlapping_visits,
    FAR_FROM_CUSTOMER: far_from_customer,
    MISSING_CHECKIN_EVIDENCE: missing_checkin_evidence,
    DUPLICATE_VISIT: duplicate_visit,
}
assert tuple(RULE_FUNCTIONS) == RULES


def detect(
    visit: VisitFacts, ctx: RuleContext, policy: VisitsPolicy, rules: Sequence[str] = RULES
) -> list[Finding]:
    """Every enabled rule's finding about one visit, in the rules' fixed order."""
    findings: list[Finding] = []
    for rule in rules:
        if policy.enabled(rule):
            finding = RULE_FUNCTIONS[rule](visit, ctx, policy)
            if finding is not None:
                findings.append(finding)
    return findings
