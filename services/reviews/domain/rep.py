"""A rep as the reviews service knows them (from the leads topic): region and whether active."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.domain import Meta, direct_events, stable_id


@direct_events
class Rep(Aggregate):
    class Registered(Aggregate.Created):
        rep_id: str
        region: str
        active: bool
        meta: Meta

    class Changed(Aggregate.Event):
        region: str
        active: bool
        meta: Meta

    @staticmethod
    def create_id(rep_id: str) -> UUID:
        return stable_id("reviews-rep", rep_id)

    @event(Registered)
    def __init__(self, rep_id: str, region: str, active: bool, meta: Meta) -> None:
        self.rep_id = rep_id
        self.region = region
        self.active = active

    def update(self, region: str, active: bool, meta: Meta) -> bool:
        """Record a new region or status; False (and no event) when nothing changed."""
        if (region, active) == (self.region, self.active):
            return False
        self._changed(region, active, meta)
        return True

    @event(Changed)
    def _changed(self, region: str, active: bool, meta: Meta) -> None:
        self.region = region
        self.active = active
