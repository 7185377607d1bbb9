"""A command's copy of a cached visit log or lead timeline: cheap, because the records in it are
frozen and shared, yet its own, so a command that fails half-way never changes the cached one."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from services.visits.application import VisitsApplication
from services.visits.domain.lead_timeline import LeadTimeline
from services.visits.domain.visit_log import VisitLog
from services.visits.policy import VisitsPolicy
from shared.domain import Conflict
from tests.unit.visits.support import HANGZHOU, PHOTO, SHANGHAI, LeadsTopic, at, qc, rep


@pytest.fixture
def app() -> VisitsApplication:
    # With the aggregate cache, as the services run: every get copies the cached aggregate.
    return VisitsApplication(env={"AGGREGATE_CACHE_MAXSIZE": "100"}, policy=VisitsPolicy())


def a_busy_record(app: VisitsApplication) -> None:
    """r1's log gets visits, a correction, flags, a minor breach, a decision and a look-back."""
    leads = LeadsTopic(app)
    leads.owned_lead("L1", "r1", at(-48))
    leads.owned_lead("L2", "r2", at(-48))
    honest = app.log_visit(
        lead_id="L1",
        visited_at=at(1),
        position=HANGZHOU,
        checkin_position=HANGZHOU,
        photo_hash=PHOTO,
        meta=rep("r1", at(1.2)),
    )
    app.correct_visit(honest, reason="left later", left_at=at(1.5), meta=rep("r1", at(1.6)))
    app.log_visit(lead_id="L1", visited_at=at(-30), position=HANGZHOU, meta=rep("r1", at(2)))  # late
    app.log_visit(lead_id="L1", visited_at=at(1.7), position=SHANGHAI, meta=rep("r1", at(2.1)))
    not_mine = app.log_visit(
        lead_id="L2", visited_at=at(3), position=HANGZHOU, photo_hash=PHOTO, meta=rep("r1", at(3.2))
    )
    (flag,) = [f for f in app.list_flags(rule="not_the_owner") if f.visit_id == not_mine]
    app.confirm_flag(flag.flag_id, reason="r2's customer", fabrication=True, meta=qc(at(5)))


def held_values(aggregate: Aggregate) -> list[Any]:
    values: list[Any] = []
    for value in vars(aggregate).values():
        if isinstance(value, Mapping):  # a dict, or a log's LayeredDict
            values.extend(value.values())
        elif isinstance(value, list):
            values.extend(value)
        else:
            values.append(value)
    return values


def test_every_record_a_visit_log_or_lead_timeline_holds_is_immutable(app: VisitsApplication) -> None:
    a_busy_record(app)
    log = app.repository.get(VisitLog.create_id("r1"))
    assert log.flags and log.breaches and log.look_backs and any(r.corrections for r in log.visits.values())
    timeline = app.repository.get(LeadTimeline.create_id("L1"))
    for aggregate in (log, timeline):
        for value in held_values(aggregate):
            hash(value)  # frozen all the way down, so a copy may share it


def test_a_copy_of_a_visit_log_is_the_log_its_events_give(app: VisitsApplication) -> None:
    a_busy_record(app)
    log_id = VisitLog.create_id("r1")
    cached = app.repository.get(log_id)
    from_events = app.repository.get(log_id, version=cached.version)  # not from the cache
    assert vars(copy.deepcopy(cached)) == vars(cached) == vars(from_events)


def test_a_command_that_fails_half_way_leaves_the_cached_log_as_it_was(app: VisitsApplication) -> None:
    a_busy_record(app)
    log_id = VisitLog.create_id("r1")
    before = vars(copy.deepcopy(app.repository.get(log_id)))
    log = app.repository.get(log_id)
    flag_id = next(f for f, record in log.flags.items() if record.status == "open")
    log.dismiss_flag(flag_id, reason="checked with the customer", meta=qc(at(6)))
    log.summarised_weeks.append("2026-03-02")
    with pytest.raises(Conflict):  # the command fails after changing the log: it is never saved
        log.dismiss_flag(flag_id, reason="again", meta=qc(at(6)))
    again = app.repository.get(log_id)
    assert vars(again) == before and again.flags[flag_id].status == "open"


def test_a_copy_of_a_lead_timeline_has_its_own_facts(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    leads.owned_lead("L1", "r1", at(-48))
    timeline_id = LeadTimeline.create_id("L1")
    cached = app.repository.get(timeline_id)
    copied = copy.deepcopy(cached)
    copied.facts.append(copied.facts[0])
    copied.event_ids["another"] = 9
    assert len(app.repository.get(timeline_id).facts) == len(cached.facts) == 2
    assert "another" not in cached.event_ids
