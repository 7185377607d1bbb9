"""The aggregate cache as the services run it: filled by reads and by what consumed batches save,
kept up to date by this process's saves, read without asking the store, never changed by what a
caller does to an aggregate after saving it, and read again from the store once a conflict shows
that another process wrote it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking

import shared.application as application_module
from shared.application import (
    ConcurrentChange,
    Delivery,
    ServiceApplication,
    StepFailed,
    copy_aggregate,
)
from shared.settings import cache_env
from tests.support.probe import TallyApplication, count_batch
from tests.support.stores import sqlite_env
from tests.unit.platform.test_snapshots import Counter, Counting


def cached_store(path: Path) -> dict[str, str]:
    """A SQLite store in a file, read through a cache of 10 aggregates."""
    return {**sqlite_env(path), **cache_env(10)}


def counting(path: Path) -> Counting:
    return Counting(env=cached_store(path))


def count_reads(app: ServiceApplication, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every read of a stream's events from the store, from now on."""
    reads: list[Any] = []
    select = app.recorder.select_events

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return select(*args, **kwargs)

    monkeypatch.setattr(app.recorder, "select_events", counted)
    return reads


def test_an_aggregate_this_process_saved_is_read_from_the_cache_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = counting(tmp_path / "s.db")
    counter = Counter("c")
    counter.count(1)
    app.save(counter)
    cache = app.repository.cache
    assert cache is not None and counter.id not in cache.cache  # a save adds nothing: reads do
    app.repository.get(counter.id)
    reads = count_reads(app, monkeypatch)
    for n in (2, 3):
        loaded = app.repository.get(counter.id)
        loaded.count(n)
        app.save(loaded)
    loaded = app.repository.get(counter.id)
    assert reads == []
    assert loaded.seen == [1, 2, 3] and loaded.version == 4
    assert loaded is not app.repository.get(counter.id)  # each read is a copy to change


def test_changing_an_aggregate_after_saving_it_leaves_the_cache_as_saved(tmp_path: Path) -> None:
    app = counting(tmp_path / "s.db")
    counter = app.repository.get(app.save(Counter("c"))[0].domain_event.originator_id)
    counter.count(1)
    app.save(counter)  # the cache's copy brought up to date
    counter.count(99)  # never saved
    loaded = app.repository.get(counter.id)
    assert loaded.seen == [1] and loaded.version == 2
    loaded.seen.append(98)  # a command changing its copy in place, and failing before it saves
    assert app.repository.get(counter.id).seen == [1]


class Holder(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[dict[str, list[int]]] = [{"a": [1]}]
        self.same = self.items  # one list under two names
        self.myself = self


def test_an_aggregate_copy_is_a_deep_copy_sharing_only_immutable_values() -> None:
    holder = Holder("h")
    copied = copy_aggregate(holder)
    expected = copy.deepcopy(holder)
    assert type(copied) is Holder and copied is not holder
    assert copied.items == expected.items and copied.version == expected.version
    assert copied.id == holder.id and copied.created_on == holder.created_on
    assert copied.id is holder.id and copied.name is holder.name  # immutable: shared
    assert copied.items is not holder.items and copied.items[0]["a"] is not holder.items[0]["a"]
    assert copied.same is copied.items and copied.myself is copied  # shapes kept, as deepcopy does
    assert copied.pending_events is not holder.pending_events
    copied.items[0]["a"].append(2)
    assert holder.items == [{"a": [1]}]


def cached_here_changed_there(tmp_path: Path) -> tuple[Counting, Counting, Counter]:
    """Two processes on one store: a counter cached by the first, then changed by the second."""
    here, there = counting(tmp_path / "s.db"), counting(tmp_path / "s.db")
    counter = Counter("c")
    here.save(counter)
    here.repository.get(counter.id)
    theirs = there.repository.get(counter.id)
    theirs.count(1)
    there.save(theirs)
    return here, there, counter


def test_a_command_on_an_aggregate_another_process_changed_reads_it_again_after_one_conflict(
    tmp_path: Path,
) -> None:
    here, there, counter = cached_here_changed_there(tmp_path)

    stale = here.repository.get(counter.id)
    stale.count(2)
    with pytest.raises(ConcurrentChange):
        here.save(stale)
    fresh = here.repository.get(counter.id)  # what a command's retry reads
    assert fresh.seen == [1] and fresh.version == 2
    fresh.count(2)
    here.save(fresh)
    assert there.repository.get(counter.id, version=3).seen == [1, 2]


def test_a_consumed_batch_on_an_aggregate_another_process_changed_is_retried_from_the_store(
    tmp_path: Path,
) -> None:
    here, there, counter = cached_here_changed_there(tmp_path)

    attempts: list[int] = []

    def handle() -> list[Counter]:
        loaded = here.repository.get(counter.id)
        attempts.append(loaded.version)
        loaded.count(2)
        return [loaded]

    delivery = Delivery("g", "t", 0, 0, "source-1", 1)
    results = here.apply_in_one_transaction(
        Tracking(delivery.tracking_name, 0), [lambda: here.process_delivery(delivery, handle)]
    )
    assert results == [True]
    assert attempts == [1, 2]  # the stale copy conflicted; the retry read the store
    assert there.repository.get(counter.id, version=3).seen == [1, 2]


def tallying(path: Path) -> TallyApplication:
    return TallyApplication(cached_store(path))


def test_a_batch_reads_the_aggregates_it_names_together_and_those_not_stored_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tallying(tmp_path / "t.db")
    reads = count_reads(first, monkeypatch)
    assert count_batch(first, 0, 0, [("s1", 1), ("s2", 1), ("s1", 2)]) == [True, True, True]
    assert reads == []  # tallies and positions new: found by the batch's queries, no stream read
    assert (first.count("s1"), first.count("s2")) == (2, 1)

    restarted = tallying(tmp_path / "t.db")  # nothing cached
    reads = count_reads(restarted, monkeypatch)
    # s1's second event again (re-published under a new offset), its third, and a new source.
    assert count_batch(restarted, 0, 1, [("s1", 2), ("s1", 3), ("s3", 1)]) == [False, True, True]
    assert reads == []  # s1's position and tally, read with the batch's others, not one by one
    assert (restarted.count("s1"), restarted.count("s3")) == (3, 1)


def test_what_a_consumed_batch_saved_is_cached_and_the_next_batch_reads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count_batch(tallying(tmp_path / "t.db"), 0, 0, [("s1", 1), ("s2", 1)])
    app = tallying(tmp_path / "t.db")  # restarted: nothing cached
    assert count_batch(app, 0, 1, [("s1", 2), ("s2", 2), ("s3", 1)]) == [True, True, True]  # read, made

    reads = count_reads(app, monkeypatch)
    preloads: list[Any] = []
    select_after = application_module.select_after
    monkeypatch.setattr(application_module, "select_after", lambda *a: preloads.append(a) or select_after(*a))
    assert count_batch(app, 0, 2, [("s1", 3), ("s2", 3), ("s3", 2)]) == [True, True, True]
    assert reads == [] and preloads == []  # tallies read and made alike: all cached
    assert [app.count(s) for s in ("s1", "s2", "s3")] == [3, 3, 2]
    assert [tallying(tmp_path / "t.db").count(s) for s in ("s1", "s2", "s3")] == [3, 3, 2]  # stored


def test_a_refused_batch_leaves_the_cache_as_the_last_batch_saved_it(tmp_path: Path) -> None:
    app = tallying(tmp_path / "t.db")
    count_batch(app, 0, 0, [("s1", 1), ("s2", 1)])
    with pytest.raises(StepFailed):  # s1 counted, then s2 counted and refused: nothing saved
        count_batch(app, 0, 1, [("s1", 2), ("s2", 2)], refuse="s2")
    assert (app.count("s1"), app.count("s2")) == (1, 1)
    assert count_batch(app, 0, 1, [("s1", 2), ("s2", 2)]) == [True, True]  # the same, accepted
    assert (app.count("s1"), app.count("s2")) == (2, 2)


def test_aggregates_read_together_are_the_aggregates_read_one_by_one(tmp_path: Path) -> None:
    app = counting(tmp_path / "s.db")
    counters = []
    for n in range(6):  # versions 1 to 6: snapshots at 3 and 6 for some
        counter = Counter(f"c{n}")
        for k in range(n):
            counter.count(k)
        app.save(counter)
        counters.append(counter)
    for counter in counters[:3]:  # one more event each: after a snapshot, for the third
        counter.count(99)
    app.save(*counters[:3])
    unknown = Counter("never saved").id
    preloaded = counting(tmp_path / "s.db").preload([*(c.id for c in counters), unknown])
    one_by_one = counting(tmp_path / "s.db")
    assert set(preloaded.aggregates) == {c.id for c in counters}
    for counter in counters:
        assert vars(preloaded.aggregates[counter.id]) == vars(one_by_one.repository.get(counter.id))
    assert preloaded.absent == {unknown}
