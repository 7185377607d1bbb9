"""One daily distribution run: what it gave out and how evenly, for the record and the managers."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.domain import Meta, direct_events, stable_id


@direct_events
class DistributionRun(Aggregate):
    @staticmethod
    def create_id(day: date, region: str | None, run_key: str) -> UUID:
        return stable_id("distribution", day.isoformat(), region or "*", run_key)

    @event("Completed")
    def __init__(
        self,
        day: date,
        region: str | None,
        run_key: str,
        reps: int,
        leads_available: int,
        quota_asked: int,
        assigned: int,
        spread: dict[str, float],
        meta: Meta,
    ) -> None:
        self.day = day
        self.region = region
        self.run_key = run_key
        self.reps = reps
        self.leads_available = leads_available
        self.quota_asked = quota_asked
        self.assigned = assigned
        self.spread = spread
        self.completed_at = meta.at
