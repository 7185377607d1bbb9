"""Who manages a region, and since when: learnt from the rotation service's events."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.domain import Meta, direct_events, stable_id


@dataclass(frozen=True)
class Posting:
    manager_id: str
    start: datetime
    end: datetime | None = None


@direct_events
class RegionManagement(Aggregate):
    """A region's managers over time. Tolerates arrivals and departures in either order:
    a newcomer ends whoever is still posted there, and a late departure changes nothing."""

    @staticmethod
    def create_id(region: str) -> UUID:
        return stable_id("region-management", region)

    @event("Opened")
    def __init__(self, region: str, meta: Meta) -> None:
        self.region = region
        self.postings: tuple[Posting, ...] = ()

    def manager_at(self, at: datetime) -> str | None:
        for posting in reversed(self.postings):
            if posting.start <= at and (posting.end is None or at < posting.end):
                return posting.manager_id
        return None

    def current(self) -> Posting | None:
        if self.postings and self.postings[-1].end is None:
            return self.postings[-1]
        return None

    def arrive(self, manager_id: str, since: datetime, meta: Meta) -> bool:
        """False when this manager's posting from that moment is already known."""
        if any(p.manager_id == manager_id and p.start == since for p in self.postings):
            return False
        self._manager_arrived(manager_id=manager_id, since=since, meta=meta)
        return True

    @event("ManagerArrived")
    def _manager_arrived(self, manager_id: str, since: datetime, meta: Meta) -> None:
        postings = list(self.postings)
        if postings and postings[-1].end is None:
            postings[-1] = replace(postings[-1], end=max(since, postings[-1].start))
        postings.append(Posting(manager_id=manager_id, start=since))
        self.postings = tuple(postings)

    def depart(self, manager_id: str, at: datetime, meta: Meta) -> bool:
        """False when the manager is not posted here now (already replaced, or never came)."""
        posting = self.current()
        if posting is None or posting.manager_id != manager_id:
            return False
        self._manager_left(manager_id=manager_id, at=at, meta=meta)
        return True

    @event("ManagerLeft")
    def _manager_left(self, manager_id: str, at: datetime, meta: Meta) -> None:
        last = self.postings[-1]
        self.postings = (*self.postings[:-1], replace(last, end=max(at, last.start)))
