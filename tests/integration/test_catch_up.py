"""Read models caught up by a query while saves go on: a query reads the store without holding
the read models still, so a save meanwhile applies its own events at once, and every stored event
reaches the read models exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.application import ReadModel
from shared.domain import Meta
from tests.support.probe import Probe, ProbeApplication
from tests.support.stores import sqlite_env

META = Meta("u-1", "admin", datetime(2026, 1, 5, 9, tzinfo=UTC))


class Seen(ReadModel):
    def __init__(self) -> None:
        self.events: list[tuple[Any, int]] = []

    def apply(self, domain_event: Any) -> None:
        self.events.append((domain_event.originator_id, domain_event.originator_version))


class WatchedProbes(ProbeApplication):
    seen: Seen

    def construct_read_models(self) -> Sequence[ReadModel]:
        self.seen = Seen()
        return (self.seen,)


class HeldRead:
    """The application's reads of the store's log, each held open after it has read until the
    test lets it go."""

    def __init__(self, app: WatchedProbes) -> None:
        self.select = app.recorder.select_notifications
        self.reading = threading.Event()
        self.release = threading.Event()
        app.recorder.select_notifications = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        rows = self.select(*args, **kwargs)
        self.reading.set()
        assert self.release.wait(10), "the test never let the read go"
        return rows


@pytest.fixture
def app(tmp_path: Path) -> Iterator[WatchedProbes]:
    application = WatchedProbes(sqlite_env(tmp_path / "store.sqlite"))
    yield application
    application.close()


def test_a_save_applies_its_events_while_a_query_reads_the_store(app: WatchedProbes) -> None:
    first = Probe("a", META)
    app.save(first)
    held = HeldRead(app)
    with ThreadPoolExecutor(1) as thread:
        query = thread.submit(app.catch_up)
        assert held.reading.wait(10)
        second = Probe("b", META)
        app.save(second)  # not held up by the query
        assert app.seen.events == [(first.id, 1), (second.id, 1)]
        held.release.set()
        assert query.result(timeout=10) == 2
    assert app.seen.events == [(first.id, 1), (second.id, 1)]


def test_an_event_a_save_applied_while_a_query_read_it_is_applied_once(app: WatchedProbes) -> None:
    probe = Probe("a", META)
    recordings = app.events.put(probe.collect_events())  # stored; not yet told to the read models
    held = HeldRead(app)
    with ThreadPoolExecutor(1) as thread:
        query = thread.submit(app.catch_up)
        assert held.reading.wait(10)  # the query has read the event from the store
        app._notify(recordings)  # the save that stored it goes on to apply it
        held.release.set()
        assert query.result(timeout=10) == 1
    assert app.seen.events == [(probe.id, 1)]


def test_a_query_sees_every_event_stored_before_it_began(app: WatchedProbes) -> None:
    probes = [Probe(f"p{i}", META) for i in range(3)]
    app.events.put([e for p in probes for e in p.collect_events()])  # the read models told nothing
    with app.reading():
        assert app.seen.events == [(p.id, 1) for p in probes]
