"""The leads policy comes from the environment (IRONARMY_POLICY__<FIELD>), checked at start-up; the
clock's jobs run the daily distribution once per business day, from the policy's hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.leads.bootstrap import jobs
from services.leads.config import LeadsSettings
from services.leads.policy import LeadsPolicy

from .given import DAY, app, at, hire, stock


def test_the_policy_comes_from_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__QUOTA_MIN", "5")
    monkeypatch.setenv("IRONARMY_POLICY__DEFAULT_DAILY_QUOTA", "6")
    monkeypatch.setenv("IRONARMY_POLICY__FOLLOW_UP_HOURS", "36")
    monkeypatch.setenv("IRONARMY_POLICY__BUSINESS_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("IRONARMY_CLOCK_JOBS_EVERY_MINUTES", "5")
    settings = LeadsSettings()
    policy = settings.policy
    assert isinstance(policy, LeadsPolicy)
    assert (policy.quota_min, policy.default_daily_quota) == (5, 6)
    assert policy.follow_up_window == timedelta(hours=36)
    assert policy.zone.key == "Europe/Berlin"
    assert policy.quota_max == LeadsPolicy().quota_max  # the rest: defaults
    assert settings.clock_jobs_every_minutes == 5


def test_the_whole_policy_may_be_given_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY", '{"former_owner_lock_days": 3, "default_private_pool_cap": 5}')
    policy = LeadsSettings().policy
    assert (policy.former_owner_lock_days, policy.default_private_pool_cap) == (3.0, 5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEFAULT_DAILY_QUOTA", "60"),  # outside the default band 30–50
        ("WARN_BEFORE_HOURS", "100"),  # longer than the follow-up window
        ("BUSINESS_TIMEZONE", "Mars/Olympus"),
        ("DAILY_DISTRIBUTION_HOUR", "24"),
    ],
)
def test_an_inconsistent_policy_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"IRONARMY_POLICY__{name}", value)
    with pytest.raises((ValidationError, ValueError)):
        LeadsSettings()


def test_the_clock_jobs_warn_then_reclaim_then_distribute() -> None:
    settings = LeadsSettings(environment="test", clock_jobs_every_minutes=15)
    scheduled = jobs(app(), settings)
    assert [job.name for job in scheduled] == ["warn_follow_ups_due", "reclaim_overdue", "daily_distribution"]
    assert {job.every for job in scheduled} == {timedelta(minutes=15)}


def test_the_daily_run_deals_once_a_business_day_and_not_before_its_hour() -> None:
    leads = app(LeadsPolicy(daily_distribution_hour=8))
    hire(leads, "r1")
    stock(leads, 100)
    # T0 is 09:00 in Hangzhou; 06:59 is before the hour.
    assert leads.distribute_daily(at(hours=-2, seconds=-60)) is None
    first = leads.distribute_daily(at())
    assert first is not None and first.day == DAY and first.region is None and first.assigned == 30
    assert leads.distribute_daily(at(hours=8)) is None  # later that day: already made
    assert leads.workbench("r1", at(hours=8)).assigned_today == 30
    # 00:30 the next day in Hangzhou is the next business day, but before the hour.
    assert leads.distribute_daily(at(hours=15, seconds=1800)) is None
    second = leads.distribute_daily(at(days=1))
    assert second is not None and second.day == DAY + timedelta(days=1) and second.assigned == 30


def test_the_daily_run_acts_as_the_scheduler() -> None:
    leads = app()
    hire(leads, "r1")
    stock(leads, 40)
    leads.distribute_daily(at())
    (card, *_) = leads.workbench("r1", at()).assigned
    assert leads.lead(card.lead_id).owners[0].rep_id == "r1"
    assert leads.region_view("hangzhou", at()).last_distribution is not None
