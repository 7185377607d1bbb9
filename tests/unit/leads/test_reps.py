"""Reps and teams: registration, the quota band, the private-pool cap, and (de)activation."""

from __future__ import annotations

from datetime import date

import pytest

from services.leads.domain.rep import Rep
from shared.domain import Conflict, RuleViolated

from .given import DAY, T0, admin, app, assign, at, hire, rep, stock, stored


@pytest.mark.parametrize("quota", [30, 40, 50])
def test_a_daily_quota_inside_the_band_is_accepted(quota: int) -> None:
    leads = app()
    hire(leads, "r1", quota=quota)
    assert leads.workbench("r1", T0).daily_quota == quota


@pytest.mark.parametrize("quota", [29, 51])
def test_a_daily_quota_just_outside_the_band_is_refused(quota: int) -> None:
    leads = app()
    with pytest.raises(RuleViolated) as refused:
        hire(leads, "r1", quota=quota)
    assert refused.value.field == "daily_quota"


def test_changing_a_quota_checks_the_band_too() -> None:
    leads = app()
    hire(leads, "r1")
    leads.set_daily_quota("r1", 50, admin())
    with pytest.raises(RuleViolated):
        leads.set_daily_quota("r1", 51, admin())
    assert stored(leads, Rep.create_id("r1")) == ["Registered", "QuotaSet"]
    assert leads.workbench("r1", T0).daily_quota == 50


def test_a_rep_is_registered_once() -> None:
    leads = app()
    hire(leads, "r1")
    with pytest.raises(Conflict) as refused:
        hire(leads, "r1")
    assert refused.value.field == "rep_id"


def test_an_unknown_role_is_refused() -> None:
    leads = app()
    with pytest.raises(RuleViolated) as refused:
        leads.register_rep("r1", "R1", "hangzhou", date(2024, 1, 1), admin(), role="hero")
    assert refused.value.field == "role"


def test_a_private_pool_cap_above_the_maximum_is_refused() -> None:
    leads = app()
    hire(leads, "r1")
    leads.set_private_pool_cap("r1", 200, admin())
    with pytest.raises(RuleViolated) as refused:
        leads.set_private_pool_cap("r1", 201, admin())
    assert refused.value.field == "private_pool_cap"


def test_an_inactive_rep_gets_nothing_from_distribution() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    stock(leads, 100)
    leads.deactivate_rep("r2", "left the company", admin())
    report = leads.distribute(DAY, admin())
    assert report.per_rep == {"r1": 30}
    assert leads.workbench("r2", T0).quota_left_today == 0


def test_deactivating_a_rep_gives_back_every_lead_they_held() -> None:
    leads = app()
    hire(leads, "r1")
    kept = assign(leads, "Kept Co", "r1")
    worked = assign(leads, "Worked Co", "r1")
    leads.keep_private(kept, "r1", rep("r1"))
    returned = leads.deactivate_rep("r1", "left the company", admin(at(1)))
    assert sorted(returned) == sorted([kept, worked])
    assert leads.lead(kept).status == "pool"
    assert leads.lead(worked).owners[-1].reason == "rep_deactivated"
    bench = leads.workbench("r1", at(1))
    assert bench.assigned == () and bench.private_pool == () and not bench.active


def test_a_reactivated_rep_gets_leads_again() -> None:
    leads = app()
    hire(leads, "r1")
    stock(leads, 10)
    leads.deactivate_rep("r1", "parental leave", admin())
    with pytest.raises(Conflict):
        leads.deactivate_rep("r1", "again", admin())
    leads.reactivate_rep("r1", admin())
    assert leads.distribute(DAY, admin()).per_rep == {"r1": 10}
