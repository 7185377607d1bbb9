"""LeadTimeline: one lead's ownership story, as consumed from the leads topic."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.visits.domain.copying import copy_sharing_frozen_values
from services.visits.domain.ownership import LeadFact, LeadFacts
from services.visits.domain.values import GeoPoint
from shared.domain import Meta, RuleViolated, direct_events, stable_id


@direct_events
class LeadTimeline(Aggregate):
    """What the leads service told us about one lead, in its order, so the visits service can say
    who owned it at any past moment. A lead without a timeline is a lead we never heard of."""

    class Opened(Aggregate.Created):
        lead_id: str
        meta: Meta

    class FactRecorded(Aggregate.Event):
        fact: LeadFact
        meta: Meta

    @staticmethod
    def create_id(lead_id: str) -> UUID:
        return stable_id("lead-timeline", lead_id)

    @event(Opened)
    def __init__(self, lead_id: str, meta: Meta) -> None:
        self.lead_id = lead_id
        self.region = ""
        self.customer_position: GeoPoint | None = None
        self.customer_position_event_id: str | None = None
        self.facts: list[LeadFact] = []
        self.event_ids: dict[str, int] = {}  # a re-published event (same id) changes nothing

    def __deepcopy__(self, memo: dict[int, Any]) -> LeadTimeline:
        # The facts are frozen and only ever appended: copying the containers is enough.
        return copy_sharing_frozen_values(self)

    def record(self, fact: LeadFact, meta: Meta) -> bool:
        """Record one consumed leads event; False if this very event was recorded before."""
        if fact.event_id in self.event_ids:
            return False
        self._fact_recorded(fact, meta)
        return True

    @event(FactRecorded)
    def _fact_recorded(self, fact: LeadFact, meta: Meta) -> None:
        if fact.lead_id != self.lead_id:
            raise RuleViolated(f"event {fact.event_id} is about lead {fact.lead_id}, not {self.lead_id}")
        if fact.kind in ("assigned", "reclaimed", "kept_private", "released") and not fact.rep_id:
            raise RuleViolated(f"{fact.event_type} {fact.event_id} names no rep", field="rep_id")
        self.event_ids[fact.event_id] = len(self.facts)
        self.facts.append(fact)
        if fact.region:
            self.region = fact.region
        if fact.customer_position is not None:
            self.customer_position = fact.customer_position
            self.customer_position_event_id = fact.event_id

    def view(self) -> LeadFacts:
        return LeadFacts(
            lead_id=self.lead_id,
            region=self.region,
            customer_position=self.customer_position,
            customer_position_event_id=self.customer_position_event_id,
            facts=tuple(self.facts),
        )
