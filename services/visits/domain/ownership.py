"""The lead ownership timeline as pure values: which rep owned a lead when, and what proves it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.visits.domain.values import GeoPoint, fmt

LeadFactKind = Literal[
    "registered", "assigned", "reclaimed", "kept_private", "released", "converted", "closed"
]
LEAD_FACT_KINDS: tuple[LeadFactKind, ...] = (
    "registered",
    "assigned",
    "reclaimed",
    "kept_private",
    "released",
    "converted",
    "closed",
)


@dataclass(frozen=True)
class LeadFact:
    """One leads event as the visits service keeps it; event_id is the envelope's, for evidence."""

    event_id: str
    event_type: str  # the public event's name, e.g. "LeadReclaimed"
    kind: LeadFactKind
    lead_id: str
    at: datetime  # when it happened, by the leads service's clock
    rep_id: str | None = None
    region: str | None = None
    customer_position: GeoPoint | None = None
    detail: str = ""  # e.g. why it was reclaimed or closed


@dataclass(frozen=True)
class OwnershipPeriod:
    """One rep owning a lead from began_at until ended_at (exclusive); open while ended_at is None."""

    rep_id: str
    began_at: datetime
    began_by: str  # event id of the assignment (or keep) that began it
    ended_at: datetime | None = None
    ended_by: str | None = None
    ended_how: str | None = None  # reclaimed, released, closed, reassigned

    def covers(self, at: datetime) -> bool:
        return self.began_at <= at and (self.ended_at is None or at < self.ended_at)


@dataclass(frozen=True)
class LeadFacts:
    """Everything the service has heard about one lead, in the order the leads topic told it."""

    lead_id: str
    region: str
    customer_position: GeoPoint | None
    customer_position_event_id: str | None
    facts: tuple[LeadFact, ...]

    def periods(self) -> tuple[OwnershipPeriod, ...]:
        return ownership_periods(self.facts)

    def as_of(self, at: datetime) -> LeadFacts:
        """What the leads service had said by `at`: a record is judged by what was known when it
        was made, so judging it again (a look-back, a rebuild from the topics) gives the same answer."""
        known = tuple(f for f in self.facts if f.at <= at)
        if len(known) == len(self.facts):
            return self
        return dataclasses.replace(self, facts=known)


@dataclass(frozen=True)
class OwnershipAnswer:
    """Did rep R own lead L at time T, and the ids of the events that prove the answer."""

    lead_id: str
    rep_id: str
    at: datetime
    owned: bool
    owner_rep_id: str | None  # who owned it at T (R, another rep, or nobody)
    explanation: str
    evidence: tuple[str, ...]

    @property
    def proof_event_id(self) -> str | None:
        return self.evidence[0] if self.evidence else None


def _ended(period: OwnershipPeriod, fact: LeadFact, how: str) -> OwnershipPeriod:
    # A fact stamped before the period began (clock skew) still ends it, at its start.
    return OwnershipPeriod(
        rep_id=period.rep_id,
        began_at=period.began_at,
        began_by=period.began_by,
        ended_at=max(fact.at, period.began_at),
        ended_by=fact.event_id,
        ended_how=how,
    )


def ownership_periods(facts: Sequence[LeadFact]) -> tuple[OwnershipPeriod, ...]:
    """Replays the facts: assigned or kept begins (or continues) a rep's ownership; reclaimed,
    released and closed end it; an assignment to another rep ends the previous owner's.
    Conversion changes nothing: the rep keeps the customer."""
    closed: list[OwnershipPeriod] = []
    current: OwnershipPeriod | None = None
    for fact in facts:
        if fact.kind in ("assigned", "kept_private") and fact.rep_id:
            if current is not None and current.rep_id == fact.rep_id:
                continue
            if current is not None:
                closed.append(_ended(current, fact, "reassigned"))
            current = OwnershipPeriod(rep_id=fact.rep_id, began_at=fact.at, began_by=fact.event_id)
        elif fact.kind in ("reclaimed", "released") and current is not None:
            if fact.rep_id in (None, current.rep_id):
                closed.append(_ended(current, fact, fact.kind))
                current = None
        elif fact.kind == "closed" and current is not None:
            closed.append(_ended(current, fact, "closed"))
            current = None
    if current is not None:
        closed.append(current)
    return tuple(closed)


def ownership_at(lead: LeadFacts, rep_id: str, at: datetime) -> OwnershipAnswer:
    """The answer for any past moment, with the event that proves it first in `evidence`."""
    periods = lead.periods()
    mine = [p for p in periods if p.rep_id == rep_id]
    owner = next((p for p in periods if p.covers(at)), None)
    if owner is not None and owner.rep_id == rep_id:
        return OwnershipAnswer(
            lead_id=lead.lead_id,
            rep_id=rep_id,
            at=at,
            owned=True,
            owner_rep_id=rep_id,
            explanation=f"{rep_id} owned lead {lead.lead_id} since {fmt(owner.began_at)}",
            evidence=(owner.began_by,),
        )
    evidence: list[str] = []
    words: list[str] = []
    before = [p for p in mine if p.ended_at is not None and p.ended_at <= at]
    after = [p for p in mine if p.began_at > at]
    if before:
        last = before[-1]
        assert last.ended_by is not None and last.ended_at is not None
        evidence.append(last.ended_by)
        words.append(f"{rep_id}'s ownership ended at {fmt(last.ended_at)} ({last.ended_how})")
    elif after:
        first = after[0]
        evidence.append(first.began_by)
        words.append(f"{rep_id} was only given the lead at {fmt(first.began_at)}, after that time")
    else:
        words.append(f"{rep_id} was never given lead {lead.lead_id}")
    if owner is not None:
        evidence.append(owner.began_by)
        words.append(f"{owner.rep_id} owned it since {fmt(owner.began_at)}")
    elif not before:
        # Nobody owned it: the last thing that happened to it before T shows where it was.
        earlier = [f for f in lead.facts if f.at <= at]
        if earlier:
            evidence.append(earlier[-1].event_id)
            words.append(
                f"at that time it was in the pool (last: {earlier[-1].event_type} at {fmt(earlier[-1].at)})"
            )
        elif lead.facts:
            heard = lead.facts[0]
            evidence.append(heard.event_id)
            words.append(
                f"the lead was first heard of at {fmt(heard.at)} ({heard.event_type}), after that time"
            )
    else:
        words.append("nobody owned it at that time")
    return OwnershipAnswer(
        lead_id=lead.lead_id,
        rep_id=rep_id,
        at=at,
        owned=False,
        owner_rep_id=owner.rep_id if owner is not None else None,
        explanation="; ".join(words),
        evidence=tuple(dict.fromkeys(evidence)),
    )
