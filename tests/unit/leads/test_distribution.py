"""Daily distribution: quota, best first, region-matched, fair, and never back to a recent loser."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from services.leads.application import LeadsApplication
from services.leads.domain.allocation import PoolLead, RepSlot, allocate, spread
from shared.domain import Conflict, Forbidden

from .given import DAY, NINGBO, POLICY, T0, admin, app, at, hire, manager, new_lead, stock, system

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def pool_lead(score: float, region: str = "hz", locked_for: frozenset[str] = frozenset()) -> PoolLead:
    return PoolLead(uuid4(), region, score, WHEN, locked_for)


# --- the pure allocation --------------------------------------------------------------------


def test_reps_take_turns_so_no_one_is_more_than_one_lead_ahead_when_leads_run_short() -> None:
    reps = [RepSlot(f"r{i}", "hz", 40, newcomer=False) for i in range(4)]
    result = allocate(reps, [pool_lead(50) for _ in range(10)])
    assert sorted(result.per_rep.values()) == [2, 2, 3, 3]


def test_a_newcomers_share_is_never_smaller_than_a_veterans() -> None:
    reps = [
        RepSlot("vet-a", "hz", 40, False),
        RepSlot("new-z", "hz", 40, True),
        RepSlot("vet-b", "hz", 40, False),
    ]
    result = allocate(reps, [pool_lead(90 - i) for i in range(5)])
    assert result.per_rep == {"vet-a": 2, "new-z": 2, "vet-b": 1}
    fairness = spread(reps, result.per_rep)
    assert fairness.newcomer_min >= fairness.veteran_max
    assert fairness.fair and (fairness.min, fairness.max, fairness.range) == (1, 2, 1)


def test_the_best_lead_goes_first_and_newcomers_pick_first_in_each_round() -> None:
    best, second, third = pool_lead(99), pool_lead(80), pool_lead(10)
    reps = [RepSlot("vet", "hz", 1, False), RepSlot("new", "hz", 1, True)]
    result = allocate(reps, [third, best, second])
    assert result.assignments == [(best.lead_id, "new"), (second.lead_id, "vet")]


def test_leads_only_go_to_reps_of_their_region() -> None:
    hz, nb = pool_lead(50, "hz"), pool_lead(99, "nb")
    result = allocate([RepSlot("r1", "hz", 5, False)], [hz, nb])
    assert result.assignments == [(hz.lead_id, "r1")]


def test_a_locked_lead_is_skipped_for_that_rep_only() -> None:
    locked = pool_lead(99, locked_for=frozenset({"r1"}))
    other = pool_lead(50)
    result = allocate([RepSlot("r1", "hz", 1, False), RepSlot("r2", "hz", 1, False)], [locked, other])
    assert sorted(result.assignments, key=lambda a: a[1]) == [(other.lead_id, "r1"), (locked.lead_id, "r2")]


def test_among_equal_leads_the_tie_break_is_the_lead_ids_text_order() -> None:
    ids = [UUID(int=n) for n in (0xA0 << 120, 0x0F << 120, 0xFF, 0x10 << 120)]
    leads = [PoolLead(lead_id, "hz", 50, WHEN) for lead_id in ids]
    result = allocate([RepSlot("r1", "hz", 4, False)], leads)
    assert [str(lead_id) for lead_id, _ in result.assignments] == sorted(str(i) for i in ids)


def test_no_rep_gets_more_than_their_quota_left() -> None:
    reps = [RepSlot("r1", "hz", 2, False), RepSlot("r2", "hz", 5, False)]
    result = allocate(reps, [pool_lead(50) for _ in range(20)])
    assert result.per_rep == {"r1": 2, "r2": 5}
    assert result.quota_asked == 7 and result.leads_available == 20


# --- the command ------------------------------------------------------------------------------


def test_every_active_rep_gets_leads_up_to_quota_each_with_a_follow_up_deadline() -> None:
    leads = app()
    hire(leads, "r1", quota=30)
    hire(leads, "r2", quota=50)
    stock(leads, 200)
    report = leads.distribute(DAY, system())
    assert report.per_rep == {"r1": 30, "r2": 50} and report.assigned == 80
    bench = leads.workbench("r2", T0)
    assert bench.quota_left_today == 0 and len(bench.assigned) == 50
    assert {card.deadline for card in bench.assigned} == {T0 + timedelta(hours=48)}
    assert leads.pool_by_region("hangzhou")[0].in_pool == 120


def test_the_pool_is_given_out_highest_score_first() -> None:
    leads = app()
    hire(leads, "r1", quota=30)
    stock(leads, 40, score=90)
    stock(leads, 40, prefix="Low", score=20)
    leads.distribute(DAY, system())
    scores = [card.score for card in leads.workbench("r1", T0).assigned]
    assert min(scores) > 89


def test_a_second_run_the_same_day_only_fills_what_is_left_of_the_quota() -> None:
    leads = app()
    hire(leads, "r1", quota=30)
    stock(leads, 10)
    assert leads.distribute(DAY, system(at(0))).assigned == 10
    stock(leads, 50, prefix="More")
    assert leads.distribute(DAY, system(at(1))).per_rep == {"r1": 20}
    assert leads.distribute(DAY, system(at(2))).assigned == 0
    assert leads.workbench("r1", at(2)).quota_left_today == 0


def test_the_quota_is_fresh_the_next_day() -> None:
    leads = app()
    hire(leads, "r1", quota=30)
    stock(leads, 100)
    leads.distribute(DAY, system(at(0)))
    assert leads.distribute(DAY + timedelta(days=1), system(at(days=1))).per_rep == {"r1": 30}


def test_a_distribution_for_one_region_leaves_the_others_alone() -> None:
    leads = app()
    hire(leads, "hz1", "hangzhou")
    hire(leads, "nb1", "ningbo")
    stock(leads, 40, "hangzhou")
    leads.register_leads([new_lead(f"NB {i}", region="ningbo", address=NINGBO) for i in range(40)], admin())
    report = leads.distribute(DAY, system(), region="ningbo")
    assert report.per_rep == {"nb1": 30}
    assert leads.workbench("hz1", T0).assigned == ()
    assert {card.region for card in leads.workbench("nb1", T0).assigned} == {"ningbo"}


def test_a_rep_who_has_not_joined_yet_gets_nothing() -> None:
    leads = app()
    hire(leads, "r1", joined_on=DAY + timedelta(days=1))
    stock(leads, 10)
    assert leads.distribute(DAY, system()).reps == 0


def test_a_run_reports_the_spread_between_newcomers_and_veterans() -> None:
    leads = app()
    hire(leads, "vet", joined_on=date(2020, 1, 1))
    hire(leads, "new", joined_on=DAY - timedelta(days=POLICY.newcomer_days - 1))
    hire(leads, "old", joined_on=DAY - timedelta(days=POLICY.newcomer_days))  # just a veteran
    stock(leads, 5)
    report = leads.distribute(DAY, system())
    assert report.per_rep == {"new": 2, "old": 2, "vet": 1}
    assert (report.spread.newcomers, report.spread.veterans) == (1, 2)
    assert report.spread.newcomer_mean == 2.0 and report.spread.veteran_mean == 1.5
    view = leads.region_view("hangzhou", T0)
    assert view.last_distribution is not None and view.last_distribution.spread["min"] == 1


def test_the_same_run_cannot_be_made_twice() -> None:
    leads = app()
    hire(leads, "r1")
    stock(leads, 5)
    leads.distribute(DAY, system(correlation_id="run-1"))
    with pytest.raises(Conflict):
        leads.distribute(DAY, system(correlation_id="run-1"))


def test_a_manager_distributes_only_in_their_region() -> None:
    from .given import Topic, appoint

    leads = app()
    appoint(Topic(leads, "rotation"), "m1", "hangzhou")
    hire(leads, "r1")
    stock(leads, 5)
    with pytest.raises(Forbidden):
        leads.distribute(DAY, manager("m1"), region="ningbo")
    with pytest.raises(Forbidden):
        leads.distribute(DAY, manager("m1"))  # every region: not theirs to run
    assert leads.distribute(DAY, manager("m1"), region="hangzhou").assigned == 5


def test_assignments_are_saved_in_batches() -> None:
    from services.leads.policy import LeadsPolicy

    leads = app(LeadsPolicy(save_batch_size=7))
    for i in range(5):
        hire(leads, f"r{i}")
    stock(leads, 100)
    report = leads.distribute(DAY, system())
    assert report.assigned == 100
    assert sum(len(leads.workbench(f"r{i}", T0).assigned) for i in range(5)) == 100
    lead = leads.lead(str(next(iter(UUID(c.lead_id) for c in leads.workbench("r0", T0).assigned))))
    assert lead.owners[0].rep_id == "r0"


def allocate_like_the_run(leads: LeadsApplication) -> list[UUID]:
    """The lead ids in the order the allocation gives them out (best first, reps in turn)."""
    book = leads.book
    reps = [RepSlot(rep_id, "hangzhou", 30, newcomer=False) for rep_id in sorted(book.reps)]
    pool = [PoolLead(lead.id, lead.region, lead.score, lead.registered_at) for lead in book.leads.values()]
    return [lead_id for lead_id, _ in allocate(reps, pool).assignments]


def test_a_run_is_stored_in_the_stores_order_and_recorded_with_its_last_batch() -> None:
    from services.leads.policy import LeadsPolicy

    leads = app(LeadsPolicy(save_batch_size=10))  # the batches come out even
    for i in range(3):
        hire(leads, f"r{i}", quota=30)
    stock(leads, 60)
    before = leads.recorder.max_notification_id() or 0
    allocated = allocate_like_the_run(leads)
    report = leads.distribute(DAY, system(correlation_id="run-1"))
    assert report.assigned == 60
    written = leads.recorder.select_notifications(before, 100, inclusive_of_start=False)
    assert [n.topic.rsplit(".", 1)[-1] for n in written] == ["Assigned"] * 60 + ["Completed"]
    assert [n.originator_id for n in written[:60]] == sorted(allocated, key=lambda i: i.int) != allocated
    assert {len(leads.workbench(f"r{i}", T0).assigned) for i in range(3)} == {20}
    with pytest.raises(Conflict):
        leads.distribute(DAY, system(correlation_id="run-1"))


def test_a_run_with_nothing_to_give_is_still_recorded_once() -> None:
    leads = app()
    hire(leads, "r1")
    report = leads.distribute(DAY, system(correlation_id="empty"))
    assert (report.reps, report.assigned) == (1, 0)
    assert leads.region_view("hangzhou", T0).last_distribution is not None
    with pytest.raises(Conflict):
        leads.distribute(DAY, system(correlation_id="empty"))


def test_leads_being_assigned_are_not_seen_assigned_until_saved() -> None:
    leads = app()
    hire(leads, "r1")
    (lead_id,) = stock(leads, 1)
    replica = leads.book.leads[UUID(lead_id)]
    twin = replica.clone()
    twin.assign(
        "r1",
        day=DAY,
        follow_up_window=POLICY.follow_up_window,
        former_owner_lock=POLICY.former_owner_lock,
        distribution_id=None,
        meta=system(),
    )
    assert (twin.status, twin.version, len(twin.pending_events)) == ("assigned", 2, 1)
    assert (replica.status, replica.version, replica.owners, replica.pending_events) == ("pool", 1, (), [])
    assert leads.workbench("r1", T0).assigned == ()
