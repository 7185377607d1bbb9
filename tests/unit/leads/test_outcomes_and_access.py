"""Outcomes (convert, close) end a lead's life in the pool; who may act comes from rotation events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.leads.domain import access
from services.leads.domain.access import Target, may_act
from services.leads.domain.region_management import RegionManagement
from services.leads.domain.rep import Rep
from shared.domain import Conflict, Forbidden

from .given import (
    DAY,
    T0,
    Topic,
    admin,
    app,
    appoint,
    assign,
    at,
    hire,
    manager,
    new_lead,
    rep,
    rotate,
    stored,
    system,
)


def test_a_converted_lead_leaves_the_pool_for_good() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.convert_lead(lead_id, rep("r1", at(5)), note="annual membership")
    lead = leads.lead(lead_id)
    assert lead.status == "converted" and lead.owners[-1].ended_by == "converted"
    assert leads.reclaim_overdue(at(100)) == []
    assert leads.distribute(DAY + timedelta(days=10), system(at(days=10))).leads_available == 0
    with pytest.raises(Conflict):
        leads.close_lead(lead_id, "duplicate", admin(at(6)))


def test_converting_a_private_lead_frees_its_place_in_the_private_pool() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    leads.convert_lead(lead_id, rep("r1", at(2)))
    assert leads.workbench("r1", at(2)).private_pool == ()
    assert stored(leads, Rep.create_id("r1"))[-1] == "PrivateLeadLeft"


def test_a_lead_in_the_pool_cannot_be_converted() -> None:
    leads = app()
    lead_id = str(leads.register_lead(new_lead("Acme"), admin()))
    with pytest.raises(Conflict):
        leads.convert_lead(lead_id, admin(at(1)))


def test_a_closed_lead_is_never_assigned_again() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.close_lead(lead_id, "company dissolved", rep("r1", at(3)))
    lead = leads.lead(lead_id)
    assert (lead.status, lead.outcome_reason, lead.owners[-1].ended_by) == (
        "closed",
        "company dissolved",
        "closed",
    )
    with pytest.raises(Conflict):
        leads.assign_lead(lead_id, "r1", admin(at(4)))


def test_a_rep_cannot_close_a_colleagues_lead() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    lead_id = assign(leads, "Acme", "r1")
    with pytest.raises(Forbidden):
        leads.close_lead(lead_id, "not interested", rep("r2", at(1)))
    assert leads.lead(lead_id).status == "assigned"


# --- authorisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "action", "target", "allowed"),
    [
        ("admin", access.DISTRIBUTE, Target(None), True),
        ("manager", access.ASSIGN, Target("hangzhou"), True),
        ("manager", access.ASSIGN, Target("ningbo"), False),
        ("manager", access.DISTRIBUTE, Target(None), False),
        ("manager", access.FOLLOW_UP, Target("hangzhou", "r1"), False),
        ("rep", access.FOLLOW_UP, Target("hangzhou", "u1"), True),
        ("rep", access.FOLLOW_UP, Target("hangzhou", "r2"), False),
        ("rep", access.ASSIGN, Target("hangzhou", "u1"), False),
        ("system", access.RECLAIM, Target(None), True),
        ("system", access.KEEP_PRIVATE, Target("hangzhou", "r1"), False),
        ("qc", access.VIEW_REGION, Target("hangzhou"), True),
        ("qc", access.CLOSE, Target("hangzhou"), False),
        ("qc", access.MANAGE_REP, Target("hangzhou", "r1"), False),
        ("hr", access.REGISTER_REP, Target("ningbo"), True),
        ("hr", access.MANAGE_REP, Target("ningbo", "r1"), True),
        ("hr", access.ASSIGN, Target("hangzhou"), False),
        ("ops", access.VIEW_LEAD, Target("hangzhou", "r1"), True),
    ],
)
def test_who_may_act(role: str, action: str, target: Target, allowed: bool) -> None:
    assert may_act("u1", role, action, target, {"hangzhou"}) is allowed


def test_a_manager_acts_in_the_region_rotation_appointed_them_to() -> None:
    leads = app()
    rotation = Topic(leads, "rotation")
    hire(leads, "r1")
    lead_id = str(leads.register_lead(new_lead("Acme"), admin()))
    with pytest.raises(Forbidden):
        leads.assign_lead(lead_id, "r1", manager("m1", at(1)))
    assert appoint(rotation, "m1", "hangzhou", at(1))
    leads.assign_lead(lead_id, "r1", manager("m1", at(2)))
    assert leads.lead(lead_id).owner_id == "r1"
    assert leads.region_view("hangzhou", at(2)).manager_id == "m1"


def test_a_rotated_manager_loses_the_old_region_and_gains_the_new_from_the_effective_time() -> None:
    leads = app()
    rotation = Topic(leads, "rotation")
    appoint(rotation, "m1", "hangzhou", T0)
    appoint(rotation, "m2", "ningbo", T0)
    moved = at(days=180)
    assert rotate(rotation, "m1", "hangzhou", "ningbo", moved)
    assert rotate(rotation, "m2", "ningbo", "hangzhou", moved)
    assert leads.managed_regions("m1", moved - timedelta(seconds=1)) == {"hangzhou"}
    assert leads.managed_regions("m1", moved) == {"ningbo"}
    assert leads.managed_regions("m2", moved) == {"hangzhou"}
    assert leads.may(manager("m1", moved), access.ASSIGN, "hangzhou") is False


def test_a_rotation_arriving_before_the_departure_it_implies_still_leaves_one_manager() -> None:
    leads = app()
    rotation = Topic(leads, "rotation")
    appoint(rotation, "m2", "ningbo", T0)
    moved = at(days=180)
    rotate(rotation, "m1", "hangzhou", "ningbo", moved)  # m1 arrives before m2's move is heard
    rotate(rotation, "m2", "ningbo", "suzhou", moved)
    assert leads.manager_of("ningbo", moved) == "m1"
    assert leads.managed_regions("m2", moved) == {"suzhou"}


def test_a_redelivered_appointment_changes_nothing() -> None:
    leads = app()
    rotation = Topic(leads, "rotation")
    appoint(rotation, "m1", "hangzhou", T0)
    assert rotation.redeliver_last() is False
    assert stored(leads, RegionManagement.create_id("hangzhou")) == ["Opened", "ManagerArrived"]
