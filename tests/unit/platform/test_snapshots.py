"""Snapshots are taken from the aggregate as it was just saved, when its version crosses the
interval: the same state the store's events give at that version, and no snapshot otherwise."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate, event

from shared.application import ServiceApplication


class Counter(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[int] = []

    @event("Counted")
    def count(self, n: int) -> None:
        self.seen.append(n)


class Other(Aggregate):
    @event("Touched")
    def touch(self) -> None:
        pass


class Counting(ServiceApplication):
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {Counter: 3}


def snapshot_versions(app: Counting, aggregate_id: UUID) -> list[int]:
    assert app.snapshots is not None
    return [s.originator_version for s in app.snapshots.get(aggregate_id)]


def test_a_snapshot_is_the_saved_state_at_each_interval_crossed() -> None:
    app = Counting(env={})
    counter = Counter("c")
    app.save(counter)  # version 1
    for n in range(4):  # versions 2 … 5: version 3 crosses the interval
        counter.count(n)
        app.save(counter)
    assert snapshot_versions(app, counter.id) == [3]
    counter.count(4)
    counter.count(5)
    counter.count(6)  # versions 6 (crossing), 7 and 8 in one save: a snapshot at 8
    app.save(counter)
    assert snapshot_versions(app, counter.id) == [3, 8]

    assert app.snapshots is not None
    for snapshot in app.snapshots.get(counter.id):
        from_events = app.repository.get(counter.id, version=snapshot.originator_version)
        restored = snapshot.mutate(None)
        assert vars(restored) == vars(from_events)


def test_aggregates_without_an_interval_are_never_snapshotted() -> None:
    app = Counting(env={})
    other = Other()
    for _ in range(7):
        other.touch()
    app.save(other)
    assert snapshot_versions(app, other.id) == []
