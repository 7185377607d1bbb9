"""Snapshots are taken from the aggregate as it was just saved, when its version crosses the
interval (wider as the aggregate grows): the same state the store's events give at that version,
and no snapshot otherwise."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate, event

from shared.application import ServiceApplication, snapshot_step


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


def test_a_long_lived_aggregate_is_snapshotted_further_apart_as_it_grows() -> None:
    app = Counting(env={})
    counter = Counter("c")
    app.save(counter)  # version 1
    for n in range(129):  # versions 2 … 130, a save each
        counter.count(n)
        app.save(counter)
    every_3 = list(range(3, 60, 3))  # the interval, up to twenty of them
    every_6 = list(range(60, 120, 6))  # then twice as far apart up to twice that version
    assert snapshot_versions(app, counter.id) == [*every_3, *every_6, 120]


def test_snapshots_cost_about_the_same_per_event_and_a_load_replays_a_tenth_at_most() -> None:
    taken = [v for v in range(1, 100_001) if v % snapshot_step(v, 100) == 0]
    assert len(taken) < 100  # a fixed interval of 100 would take 1,000 of them
    assert taken[:20] == list(range(100, 2001, 100))
    # Each snapshot holds the whole state (as many events' worth as its version): spread over
    # the events since the one before, at most twenty events' worth each, however long the
    # history (at a fixed interval, a thousand at version 100,000).
    assert all(after / (after - before) <= 20 for before, after in itertools.pairwise(taken))
    for version in (2_000, 5_000, 33_333, 100_000):  # the events a load replays after the last one
        last = max(v for v in taken if v <= version)
        assert version - last <= version // 10
