"""The Manager, Region and RotationPlan aggregates: given events, when a command, then events or an error."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from services.rotation.domain.manager import Manager
from services.rotation.domain.plan import RotationPlan
from services.rotation.domain.region import Region
from services.rotation.domain.solver import Move
from shared.domain import Conflict, Forbidden, RuleViolated
from tests.unit.rotation.support import as_manager, at, hr, point

NOW = at(2026, 3, 1)


def posted_manager(region: str = "hangzhou") -> Manager:
    manager = Manager(
        manager_id="ann", name="Ann", level="regional", home_base=point(region), dependants=0, meta=hr(NOW)
    )
    manager.appoint(manager_id="ann", region=region, since=at(2025, 6, 1), meta=hr(NOW))
    manager.collect_events()
    return manager


def kinds(aggregate: Manager | RotationPlan) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_only_hr_or_admin_open_regions_and_codes_are_slugs() -> None:
    with pytest.raises(Forbidden):
        Region(code="hangzhou", name="Hangzhou", location=point("hangzhou"), meta=as_manager("ann", NOW))
    with pytest.raises(RuleViolated) as error:
        Region(code="Hang Zhou", name="Hangzhou", location=point("hangzhou"), meta=hr(NOW))
    assert error.value.field == "code"


def test_a_region_id_comes_from_its_code_so_a_duplicate_is_detected() -> None:
    region = Region(code="hangzhou", name="Hangzhou", location=point("hangzhou"), meta=hr(NOW))
    assert region.id == Region.create_id("hangzhou")


def test_a_manager_already_posted_is_moved_by_a_plan_not_appointed_again() -> None:
    manager = posted_manager()
    with pytest.raises(Conflict, match="already manages hangzhou"):
        manager.appoint(manager_id="ann", region="shanghai", since=NOW, meta=hr(NOW))


def test_an_appointment_cannot_start_in_the_future() -> None:
    manager = Manager(
        manager_id="bob", name="Bob", level="regional", home_base=point("wuhan"), dependants=1, meta=hr(NOW)
    )
    with pytest.raises(RuleViolated) as error:
        manager.appoint(manager_id="bob", region="wuhan", since=NOW + timedelta(seconds=1), meta=hr(NOW))
    assert error.value.field == "since"


def test_past_postings_cannot_overlap() -> None:
    manager = posted_manager()
    manager.record_past_posting(region="wuhan", start=at(2024, 6, 1), end=at(2025, 6, 1), meta=hr(NOW))
    assert [p.region for p in manager.postings] == ["wuhan", "hangzhou"]
    with pytest.raises(Conflict):
        manager.record_past_posting(region="beijing", start=at(2025, 1, 1), end=at(2025, 7, 1), meta=hr(NOW))
    assert manager.recent_regions(2) == ("wuhan", "hangzhou")


def test_a_manager_asks_for_a_deferral_for_themself() -> None:
    manager = posted_manager()
    manager.request_deferral(
        reason="parent in hospital", until=NOW + timedelta(days=90), max_days=183, meta=as_manager("ann", NOW)
    )
    assert kinds(manager) == ["DeferralRequested"]
    assert manager.deferral is not None and manager.deferral.status == "requested"


def test_nobody_else_but_hr_may_ask_for_a_managers_deferral() -> None:
    manager = posted_manager()
    with pytest.raises(Forbidden):
        manager.request_deferral(
            reason="x", until=NOW + timedelta(days=9), max_days=183, meta=as_manager("bob", NOW)
        )


def test_a_deferral_may_last_up_to_the_maximum_and_not_a_second_longer() -> None:
    manager = posted_manager()
    with pytest.raises(RuleViolated) as error:
        manager.request_deferral(
            reason="school year",
            until=NOW + timedelta(days=183, seconds=1),
            max_days=183,
            meta=as_manager("ann", NOW),
        )
    assert error.value.field == "until"
    manager.request_deferral(
        reason="school year", until=NOW + timedelta(days=183), max_days=183, meta=as_manager("ann", NOW)
    )
    assert kinds(manager) == ["DeferralRequested"]


def test_a_deferral_must_end_in_the_future_and_give_a_reason() -> None:
    manager = posted_manager()
    with pytest.raises(RuleViolated) as error:
        manager.request_deferral(reason="x", until=NOW, max_days=183, meta=as_manager("ann", NOW))
    assert error.value.field == "until"
    with pytest.raises(RuleViolated) as error:
        manager.request_deferral(
            reason="  ", until=NOW + timedelta(days=1), max_days=183, meta=as_manager("ann", NOW)
        )
    assert error.value.field == "reason"


def test_a_manager_cannot_approve_their_own_deferral() -> None:
    manager = posted_manager()
    manager.request_deferral(
        reason="x", until=NOW + timedelta(days=30), max_days=183, meta=as_manager("ann", NOW)
    )
    with pytest.raises(Forbidden):
        manager.approve_deferral(as_manager("ann", NOW))
    manager.approve_deferral(hr(NOW))
    assert manager.deferred_at(NOW + timedelta(days=29)) and not manager.deferred_at(NOW + timedelta(days=30))


def test_a_second_request_waits_until_the_first_is_decided() -> None:
    manager = posted_manager()
    manager.request_deferral(
        reason="x", until=NOW + timedelta(days=30), max_days=183, meta=as_manager("ann", NOW)
    )
    with pytest.raises(Conflict):
        manager.request_deferral(
            reason="y", until=NOW + timedelta(days=40), max_days=183, meta=as_manager("ann", NOW)
        )
    manager.reject_deferral(reason="not a hardship", meta=hr(NOW))
    with pytest.raises(Conflict):
        manager.approve_deferral(hr(NOW))


def test_a_rotation_from_a_region_the_manager_has_left_is_refused() -> None:
    manager = posted_manager()
    with pytest.raises(Conflict, match="no longer in shanghai"):
        manager.rotate(
            manager_id="ann",
            from_region="shanghai",
            to_region="wuhan",
            effective_at=NOW,
            plan_id=uuid4(),
            meta=hr(NOW),
        )


def test_a_rotation_closes_the_posting_and_opens_the_next_on_its_date() -> None:
    manager = posted_manager()
    manager.rotate(
        manager_id="ann",
        from_region="hangzhou",
        to_region="wuhan",
        effective_at=NOW,
        plan_id=uuid4(),
        meta=hr(NOW),
    )
    assert kinds(manager) == ["Rotated"]
    assert [(p.region, p.end) for p in manager.postings] == [("hangzhou", NOW), ("wuhan", None)]
    assert manager.since == NOW


def make_plan(effective_at: datetime = NOW + timedelta(days=30)) -> RotationPlan:
    move = Move("ann", "hangzhou", "shanghai", 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, "why")
    back = Move("bob", "shanghai", "hangzhou", 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, "why")
    return RotationPlan(
        plan_id=uuid4(),
        as_of=NOW,
        effective_at=effective_at,
        moves=[move, back],
        staying=[],
        total_cost=2.0,
        meta=hr(NOW),
    )


def test_only_hr_or_admin_make_and_approve_plans() -> None:
    with pytest.raises(Forbidden):
        RotationPlan(
            plan_id=uuid4(),
            as_of=NOW,
            effective_at=NOW,
            moves=[],
            staying=[],
            total_cost=0.0,
            meta=as_manager("ann", NOW),
        )
    plan = make_plan()
    with pytest.raises(Forbidden):
        plan.approve(as_manager("ann", NOW))


def test_a_plan_is_approved_once_and_carried_out_only_on_its_date() -> None:
    plan = make_plan()
    plan.approve(hr(NOW))
    with pytest.raises(Conflict):
        plan.approve(hr(NOW))
    with pytest.raises(RuleViolated, match="wait until"):
        plan.carry_out(hr(NOW + timedelta(days=30) - timedelta(seconds=1)))
    plan.carry_out(hr(NOW + timedelta(days=30)))
    assert kinds(plan) == ["Planned", "Approved", "CarriedOut"]


def test_a_plan_whose_date_has_passed_cannot_be_approved() -> None:
    plan = make_plan()
    with pytest.raises(RuleViolated, match="has passed"):
        plan.approve(hr(NOW + timedelta(days=30, seconds=1)))


def test_a_withdrawn_plan_is_never_carried_out() -> None:
    plan = make_plan()
    plan.withdraw(reason="bob declined", meta=hr(NOW))
    with pytest.raises(Conflict):
        plan.carry_out(hr(NOW + timedelta(days=31)))
    with pytest.raises(Conflict):
        plan.withdraw(reason="again", meta=hr(NOW))
