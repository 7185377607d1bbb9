"""The lead ownership timeline, built from consumed leads events: who owned a lead at any past time,
and the event that proves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from eventsourcing.persistence import Tracking

from services.visits.application import VisitsApplication
from services.visits.domain.lead_timeline import LeadTimeline
from services.visits.domain.visit_log import VisitLog
from shared.domain import NotFound
from shared.events.visits import VisitLogged
from tests.unit.visits.support import T0, LeadsTopic, at


@pytest.fixture
def app() -> VisitsApplication:
    return VisitsApplication(env={})


def test_a_rep_owns_a_lead_from_its_assignment_until_its_reclaim(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    leads.registered("L1", at(-1))
    assigned = leads.assigned("L1", "r1", at(0))
    reclaimed = leads.reclaimed("L1", "r1", at(48))

    during = app.owned_at("L1", "r1", at(47))
    assert during.owned and during.proof_event_id == assigned
    assert not app.owned_at("L1", "r1", at(0) - timedelta(seconds=1)).owned
    after = app.owned_at("L1", "r1", at(48))
    assert not after.owned and after.proof_event_id == reclaimed


def test_after_a_reclaim_the_colleague_owns_it_and_the_answer_names_both_events(
    app: VisitsApplication,
) -> None:
    leads = LeadsTopic(app)
    leads.assigned("L1", "r1", at(0))
    reclaimed = leads.reclaimed("L1", "r1", at(48))
    reassigned = leads.assigned("L1", "r2", at(48, minutes=1))

    answer = app.owned_at("L1", "r1", at(50))
    assert not answer.owned and answer.owner_rep_id == "r2"
    assert answer.evidence == (reclaimed, reassigned)
    assert app.owned_at("L1", "r2", at(50)).proof_event_id == reassigned


def test_an_assignment_to_another_rep_ends_the_previous_ownership(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    leads.assigned("L1", "r1", at(0))
    moved = leads.assigned("L1", "r2", at(5))
    (first, second) = app.ownership_history("L1")
    assert (first.rep_id, first.ended_by, first.ended_how) == ("r1", moved, "reassigned")
    assert second.rep_id == "r2" and second.ended_at is None


def test_keeping_a_lead_private_keeps_it_and_releasing_it_ends_ownership(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    leads.assigned("L1", "r1", at(0))
    leads.kept_private("L1", "r1", at(10))
    released = leads.released("L1", "r1", at(100))
    assert app.owned_at("L1", "r1", at(99)).owned
    answer = app.owned_at("L1", "r1", at(100))
    assert not answer.owned and answer.proof_event_id == released


def test_a_converted_lead_stays_with_its_rep_until_it_is_closed(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    leads.assigned("L1", "r1", at(0))
    leads.converted("L1", "r1", at(20))
    closed = leads.closed("L1", "r1", at(200))
    assert app.owned_at("L1", "r1", at(100)).owned
    assert app.owned_at("L1", "r1", at(200)).proof_event_id == closed


def test_a_rep_who_never_had_the_lead_is_told_where_it_was(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    registered = leads.registered("L1", at(-1))
    answer = app.owned_at("L1", "r9", at(3))
    assert not answer.owned and answer.owner_rep_id is None
    assert answer.evidence == (registered,) and "in the pool" in answer.explanation


def test_a_lead_never_heard_of_is_not_found(app: VisitsApplication) -> None:
    with pytest.raises(NotFound) as refused:
        app.owned_at("nobody-told-us", "r1", T0)
    assert refused.value.field == "lead_id"


def test_a_republished_leads_event_changes_nothing(app: VisitsApplication) -> None:
    leads = LeadsTopic(app)
    leads.assigned("L1", "r1", at(0))
    stored = app.recorder.max_notification_id()
    assert leads.republish_last() is False
    assert app.recorder.max_notification_id() == stored
    assert len(app.ownership_history("L1")) == 1


def test_a_batch_of_leads_events_applied_in_one_transaction_builds_the_same_timeline(
    app: VisitsApplication,
) -> None:
    batched = LeadsTopic(app)
    steps = [
        lambda: batched.assigned("L1", "r1", at(0)),
        lambda: batched.reclaimed("L1", "r1", at(48)),
        lambda: batched.assigned("L1", "r2", at(49)),
    ]
    ids = app.apply_in_one_transaction(Tracking("ironarmy.visits:ironarmy.leads:0", 2), steps)
    assert ids is not None
    (first, second) = app.ownership_history("L1")
    assert (first.began_by, first.ended_by, second.began_by) == tuple(ids)
    assert app.processed_offset("ironarmy.visits", "ironarmy.leads", 0) == 2


def test_a_consumed_event_names_the_timeline_or_the_visit_log_applying_it_reads(
    app: VisitsApplication,
) -> None:
    topic = LeadsTopic(app)
    topic.assigned("L1", "r1", at(0))
    assert topic.last is not None
    _, event, envelope = topic.last
    assert list(app.aggregates_touched(envelope, event)) == [LeadTimeline.create_id("L1")]
    visit = VisitLogged(visit_id="v1", rep_id="r1", lead_id="L1", visited_at=at(1), recorded_at=at(1))
    assert list(app.aggregates_touched(envelope, visit)) == [VisitLog.create_id("r1")]  # a replay's
