"""A rep's results in one quarter, counted from consumed leads and visits events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.reviews.domain.values import Quarter
from shared.domain import Meta, direct_events, stable_id


@direct_events
class QuarterResults(Aggregate):
    """Counts each converted lead and each logged visit once, whatever is redelivered."""

    class Started(Aggregate.Created):
        rep_id: str
        quarter: str
        meta: Meta

    class ConversionCounted(Aggregate.Event):
        lead_id: str
        meta: Meta

    class VisitCounted(Aggregate.Event):
        visit_id: str
        meta: Meta

    class VisitDiscounted(Aggregate.Event):
        visit_id: str
        reason: str
        meta: Meta

    @staticmethod
    def create_id(rep_id: str, quarter: str) -> UUID:
        return stable_id("reviews-results", rep_id, quarter)

    @event(Started)
    def __init__(self, rep_id: str, quarter: str, meta: Meta) -> None:
        Quarter.parse(quarter)
        self.rep_id = rep_id
        self.quarter = quarter
        self.converted_leads: set[str] = set()
        self.visit_ids: set[str] = set()
        self.discounted_visit_ids: set[str] = set()

    @property
    def conversions(self) -> int:
        return len(self.converted_leads)

    @property
    def visits(self) -> int:
        return len(self.visit_ids)

    def count_conversion(self, lead_id: str, meta: Meta) -> bool:
        if lead_id in self.converted_leads:
            return False
        self._conversion_counted(lead_id, meta)
        return True

    @event(ConversionCounted)
    def _conversion_counted(self, lead_id: str, meta: Meta) -> None:
        self.converted_leads.add(lead_id)

    def count_visit(self, visit_id: str, meta: Meta) -> bool:
        # A visit proven fabricated stays out, even if its VisitLogged arrives late.
        if visit_id in self.visit_ids or visit_id in self.discounted_visit_ids:
            return False
        self._visit_counted(visit_id, meta)
        return True

    @event(VisitCounted)
    def _visit_counted(self, visit_id: str, meta: Meta) -> None:
        self.visit_ids.add(visit_id)

    def discount_visit(self, visit_id: str, reason: str, meta: Meta) -> bool:
        """A visit confirmed fabricated no longer counts as results."""
        if visit_id in self.discounted_visit_ids:
            return False
        self._visit_discounted(visit_id, reason, meta)
        return True

    @event(VisitDiscounted)
    def _visit_discounted(self, visit_id: str, reason: str, meta: Meta) -> None:
        self.visit_ids.discard(visit_id)
        self.discounted_visit_ids.add(visit_id)
