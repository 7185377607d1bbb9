"""A rep's history kept up to date visit by visit answers every window exactly as one built from
all the visits at once, and is a value: adding to it leaves the history it came from unchanged."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from typing import Any, ClassVar, get_type_hints

import pytest
from eventsourcing.domain import MutableOrImmutableAggregate, Snapshot

from services.visits.application import VisitsApplication
from services.visits.domain.rules import RepHistory
from services.visits.domain.values import VisitFacts
from services.visits.domain.visit_log import HISTORY, VisitLog, VisitLogState
from shared.structures import SortedRun
from tests.unit.visits.support import HANGZHOU, LeadsTopic, at, rep
from tests.unit.visits.test_copying import a_busy_record
from tests.unit.visits.test_rules import visit

LEADS = ("L1", "L2", "L3")
PHOTOS = ("sha256:" + "aa" * 32, "sha256:" + "bb" * 32, None)


def random_visit(rng: random.Random, n: int) -> VisitFacts:
    visited = at(rng.randrange(0, 72), minutes=rng.choice((0, 0, 15, 30)))  # ties on purpose
    return visit(
        f"v{n:03d}",
        lead_id=rng.choice(LEADS),
        visited_at=visited,
        recorded_at=visited + timedelta(minutes=rng.choice((5, 5, 90))),
        photo=rng.choice(PHOTOS),
    )


def answers(history: RepHistory) -> tuple[object, ...]:
    """Everything the rules can ask, over windows that cut through the visits anywhere."""
    windows = [(at(h), at(h + span)) for h in range(-2, 76, 3) for span in (0, 1, 7, 30)]
    return (
        len(history),
        history.visits,
        tuple(history.visited_between(a, b) for a, b in windows),
        tuple(history.recorded_between(a, b) for a, b in windows),
        tuple(history.of_lead(lead) for lead in (*LEADS, "L9")),
        tuple(history.of_lead_visited_between(lead, a, b) for lead in LEADS for a, b in windows),
        tuple(history.with_photo(photo) for photo in PHOTOS if photo),
    )


@pytest.mark.parametrize("chunk", [2, SortedRun.CHUNK])  # a long history's chunks, and a short one's
def test_a_history_kept_visit_by_visit_answers_as_one_built_at_once(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SortedRun, "CHUNK", chunk)
    rng = random.Random(7)
    kept = RepHistory()
    current: dict[str, VisitFacts] = {}
    for n in range(200):
        if current and rng.random() < 0.3:  # a correction: another time, lead or photo
            old = current[rng.choice(sorted(current))]
            new = dataclasses.replace(
                random_visit(rng, n), visit_id=old.visit_id, recorded_at=old.recorded_at
            )
            kept = kept.with_visit(new, replacing=old)
        else:
            new = random_visit(rng, n)
            kept = kept.with_visit(new)
        current[new.visit_id] = new
        assert answers(kept) == answers(RepHistory(current.values())), f"after step {n}"


def test_adding_to_a_history_leaves_the_one_it_came_from_as_it_was() -> None:
    first, second = visit("v1", visited_at=at(1)), visit("v2", visited_at=at(2), lead_id="L2")
    one = RepHistory([first])
    before = answers(one)
    two = one.with_visit(second)
    three = two.with_visit(dataclasses.replace(second, lead_id="L1"), replacing=second)
    assert answers(one) == before
    assert two.of_lead("L2") == (second,) and three.of_lead("L2") == ()
    assert len(three) == 2 and three.of_lead("L1")[1].lead_id == "L1"


def test_a_log_keeps_its_history_and_a_snapshot_leaves_it_out() -> None:
    app = VisitsApplication(env={})
    leads = LeadsTopic(app)
    for lead in ("L1", "L2"):
        leads.owned_lead(lead, "r1", at(-48))
    ids = [
        app.log_visit(
            lead_id=("L1", "L2")[n % 2],
            visited_at=at(n),
            position=HANGZHOU,
            checkin_position=HANGZHOU,
            meta=rep("r1", at(n, minutes=10)),
        )
        for n in range(4)
    ]
    app.correct_visit(ids[1], reason="left later", left_at=at(1.5), meta=rep("r1", at(2)))
    log = app.repository.get(VisitLog.create_id("r1"))
    assert log.history() == RepHistory(record.facts for record in log.visits.values())
    assert log.history().visits[1].left_at == at(1.5)

    snapshot = VisitLog.Snapshot.take(log)
    assert isinstance(snapshot, Snapshot) and HISTORY not in snapshot.state
    restored = snapshot.mutate(None)
    assert HISTORY not in vars(restored)
    assert restored.history() == log.history()  # built again, once, from the visits


class EverySecondSave(VisitsApplication):
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {VisitLog: 2}


def test_a_busy_logs_snapshot_is_typed_json_and_reads_back_as_the_same_log() -> None:
    app = EverySecondSave(env={})
    a_busy_record(app)
    log = app.repository.get(VisitLog.create_id("r1"))
    # Every attribute a log holds is in its snapshot's typed state, but the derived history.
    identity = {"_id", "_version", "_pending_events"}
    assert set(get_type_hints(VisitLogState)) == set(vars(log)) - identity - {HISTORY}

    assert app.snapshots is not None
    (snapshot,) = app.snapshots.get(log.id, desc=True, limit=1)
    stored = app.mapper.to_stored_event(snapshot)
    assert b'"_type_"' not in stored.state  # typed JSON, not the library's tagged form
    restored = app.mapper.to_domain_event(stored).mutate(None)
    from_events = app.repository.get(log.id, version=snapshot.originator_version)
    assert vars(restored) | {HISTORY: from_events.history()} == vars(from_events)
    for record in (*restored.visits.values(), *restored.flags.values(), *restored.breaches.values()):
        hash(record)  # frozen all the way down, as before the snapshot


class EveryFifthEvent(VisitsApplication):
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {VisitLog: 5}


def test_a_log_loaded_from_a_snapshot_keeps_its_history_through_later_visits_and_corrections() -> None:
    app = EveryFifthEvent(env={})  # no aggregate cache: every get reads the snapshot and what follows
    leads = LeadsTopic(app)
    leads.owned_lead("L1", "r1", at(-48))
    log_id = VisitLog.create_id("r1")

    def log_visit(n: int) -> str:
        return app.log_visit(
            lead_id="L1",
            visited_at=at(n),
            position=HANGZHOU,
            checkin_position=HANGZHOU,
            meta=rep("r1", at(n, minutes=10)),
        )

    ids = [log_visit(n) for n in range(5)]
    assert app.snapshots is not None
    (snapshot,) = app.snapshots.get(log_id, desc=True, limit=1)
    # Then, after that snapshot: a visit logged, and one moved to another time by a correction.
    ids.append(log_visit(5))
    app.correct_visit(ids[2], reason="it was the afternoon", visited_at=at(2.5), meta=rep("r1", at(6)))
    after = list(app.events.get(log_id, gt=snapshot.originator_version))
    assert {type(e) for e in after} >= {VisitLog.VisitLogged, VisitLog.VisitCorrected}

    log = app.repository.get(log_id)
    assert log.history() == RepHistory(record.facts for record in log.visits.values())
    assert len(log.history()) == 6 and log.history().visits[2].visited_at == at(2.5)
