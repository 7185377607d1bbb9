"""Follow-up and reclaim: the deadline, the warning before it, visits that count, and the lock
that keeps a reclaimed lead from going straight back to the rep who lost it."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from shared.domain import Forbidden, RuleViolated

from .given import DAY, POLICY, T0, Topic, admin, app, assign, at, hire, rep, stock, stored, system, visit

DEADLINE = T0 + timedelta(hours=POLICY.follow_up_hours)


def test_a_lead_not_followed_up_is_kept_until_its_deadline_and_reclaimed_just_after() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    assert leads.reclaim_overdue(DEADLINE) == []
    assert leads.reclaim_overdue(DEADLINE + timedelta(seconds=1)) == [lead_id]
    lead = leads.lead(lead_id)
    assert lead.status == "pool" and lead.owners[-1].reason == "follow_up_overdue"
    assert stored(leads, UUID(lead_id))[-1] == "Reclaimed"


def test_a_follow_up_starts_the_deadline_again_from_then() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.record_follow_up(lead_id, "r1", rep("r1", at(47)), channel="call")
    assert leads.reclaim_overdue(DEADLINE + timedelta(hours=1)) == []
    assert leads.lead(lead_id).deadline == at(47 + 48)
    assert leads.reclaim_overdue(at(95, seconds=1)) == [lead_id]


def test_a_follow_up_after_the_deadline_does_not_count() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    with pytest.raises(RuleViolated) as refused:
        leads.record_follow_up(lead_id, "r1", rep("r1", DEADLINE + timedelta(seconds=1)))
    assert refused.value.field == "followed_up_at"
    leads.record_follow_up(lead_id, "r1", rep("r1", DEADLINE + timedelta(hours=1)), followed_up_at=DEADLINE)
    assert leads.lead(lead_id).follow_ups == 1


def test_only_the_owner_follows_a_lead_up() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    lead_id = assign(leads, "Acme", "r1")
    with pytest.raises(Forbidden):
        leads.record_follow_up(lead_id, "r2", rep("r2", at(1)))
    with pytest.raises(Forbidden):
        leads.record_follow_up(lead_id, "r1", rep("r2", at(1)))  # not as someone else either


def test_a_warning_is_sent_once_inside_the_window_before_the_deadline() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    window_opens = DEADLINE - timedelta(hours=POLICY.warn_before_hours)
    assert leads.warn_follow_ups_due(window_opens - timedelta(seconds=1)) == []
    assert leads.warn_follow_ups_due(window_opens) == [lead_id]
    assert leads.warn_follow_ups_due(window_opens + timedelta(hours=1)) == []
    assert leads.workbench("r1", window_opens).assigned[0].warned
    assert stored(leads, UUID(lead_id)).count("FollowUpWarned") == 1


def test_a_sweep_of_many_warnings_is_stored_in_the_stores_order() -> None:
    from services.leads.policy import LeadsPolicy

    leads = app(LeadsPolicy(save_batch_size=4))
    for i in range(3):
        hire(leads, f"r{i}")
    stock(leads, 15)
    leads.distribute(DAY, system())
    before = leads.recorder.max_notification_id() or 0
    warned = leads.warn_follow_ups_due(at(40))
    assert len(warned) == 15
    written = leads.recorder.select_notifications(before, 100, inclusive_of_start=False)
    assert [n.originator_id for n in written] == sorted(map(UUID, warned), key=lambda lead_id: lead_id.int)


def test_a_reclaim_sweep_stores_plain_reclaims_in_the_stores_order_and_a_private_one_with_its_rep() -> None:
    from services.leads.domain.rep import Rep
    from services.leads.policy import LeadsPolicy

    leads = app(LeadsPolicy(save_batch_size=4))
    hire(leads, "r0")
    kept = assign(leads, "Kept Co", "r0")
    leads.keep_private(kept, "r0", rep("r0", at(1)))
    limit = at(1) + timedelta(days=POLICY.private_no_progress_days)
    for i in range(1, 3):
        hire(leads, f"r{i}")
    stock(leads, 10)
    leads.distribute(DAY, system(limit - timedelta(hours=POLICY.follow_up_hours + 1)))
    before = leads.recorder.max_notification_id() or 0
    reclaimed = leads.reclaim_overdue(limit + timedelta(seconds=1))
    assert len(reclaimed) == 11 and kept in reclaimed
    written = [
        (n.originator_id, n.topic.rsplit(".", 1)[-1])
        for n in leads.recorder.select_notifications(before, 100, inclusive_of_start=False)
    ]
    assert written[:2] == [(UUID(kept), "Reclaimed"), (Rep.create_id("r0"), "PrivateLeadLeft")]
    plain = [lead_id for lead_id, _ in written[2:]]
    assert plain == sorted(plain, key=lambda lead_id: lead_id.int) and len(plain) == 10


def test_a_new_deadline_gets_its_own_warning() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    assert leads.warn_follow_ups_due(at(40)) == [lead_id]
    leads.record_follow_up(lead_id, "r1", rep("r1", at(41)))
    assert leads.warn_follow_ups_due(at(41 + 36)) == [lead_id]


def test_no_warning_after_the_deadline_has_passed() -> None:
    leads = app()
    hire(leads, "r1")
    assign(leads, "Acme", "r1")
    assert leads.warn_follow_ups_due(DEADLINE + timedelta(seconds=1)) == []


def test_a_visit_logged_by_the_owner_in_time_counts_as_a_follow_up() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    visits = Topic(leads, "visits")
    assert visit(visits, lead_id, "r1", visited_at=at(30), logged_at=at(31))
    lead = leads.lead(lead_id)
    assert lead.follow_ups == 1 and lead.deadline == at(30 + 48)
    assert stored(leads, UUID(lead_id))[-1] == "FollowedUp"


def test_a_visit_logged_late_for_a_moment_before_the_deadline_still_counts() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    visit(Topic(leads, "visits"), lead_id, "r1", visited_at=at(47), logged_at=at(49))
    assert leads.reclaim_overdue(at(50)) == []


def test_a_visit_by_someone_else_or_after_the_deadline_changes_nothing() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    lead_id = assign(leads, "Acme", "r1")
    visits = Topic(leads, "visits")
    assert visit(visits, lead_id, "r2", visited_at=at(10))  # consumed, but not a follow-up
    assert visit(visits, lead_id, "r1", visited_at=DEADLINE + timedelta(seconds=1))
    assert visit(visits, "not-a-lead", "r1", visited_at=at(11))
    assert leads.lead(lead_id).follow_ups == 0
    assert leads.reclaim_overdue(DEADLINE + timedelta(seconds=2)) == [lead_id]


def test_a_visit_names_its_lead_as_what_applying_it_reads() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    visits = Topic(leads, "visits")
    visit(visits, lead_id, "r1", visited_at=at(5))
    assert visits.last is not None
    _, payload, envelope = visits.last
    assert list(leads.aggregates_touched(envelope, payload)) == [UUID(lead_id)]
    visit(visits, "not-a-lead", "r1", visited_at=at(6))
    _, payload, envelope = visits.last
    assert list(leads.aggregates_touched(envelope, payload)) == []


def test_a_visit_redelivered_counts_once() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    visits = Topic(leads, "visits")
    visit(visits, lead_id, "r1", visited_at=at(5))
    assert visits.redeliver_last() is False
    assert leads.lead(lead_id).follow_ups == 1


def test_a_reclaimed_lead_goes_to_a_colleague_in_the_next_distribution() -> None:
    leads = app()
    hire(leads, "r1", quota=30)
    hire(leads, "r2", quota=30)
    stock(leads, 30)
    leads.distribute(DAY, system(at(0)))
    lost = [card.lead_id for card in leads.workbench("r1", T0).assigned]
    for card in leads.workbench("r2", T0).assigned:
        leads.record_follow_up(card.lead_id, "r2", rep("r2", at(24)))
    assert sorted(leads.reclaim_overdue(at(49))) == sorted(lost)
    report = leads.distribute(DAY + timedelta(days=3), system(at(days=3)))
    assert report.per_rep == {"r1": 0, "r2": 15}
    assert all(leads.lead(lead_id).owner_id == "r2" for lead_id in lost)


def test_a_reclaimed_lead_is_never_given_back_to_the_same_rep_within_the_lock() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    lost_at = DEADLINE + timedelta(seconds=1)
    leads.reclaim_overdue(lost_at)
    lock = timedelta(days=POLICY.former_owner_lock_days)
    just_under = lost_at + lock - timedelta(seconds=1)
    report = leads.distribute(DAY + timedelta(days=7), system(just_under))
    assert report.assigned == 0 and leads.lead(lead_id).status == "pool"
    with pytest.raises(RuleViolated) as refused:
        leads.assign_lead(lead_id, "r1", admin(just_under))
    assert refused.value.field == "rep_id"
    report = leads.distribute(DAY + timedelta(days=8), system(lost_at + lock))
    assert report.per_rep == {"r1": 1}
