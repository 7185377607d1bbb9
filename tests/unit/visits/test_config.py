"""The detection policy comes from the environment (IRONARMY_POLICY__<FIELD>), checked at start-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.visits.config import VisitsSettings
from services.visits.policy import VisitsPolicy


def test_thresholds_and_switches_come_from_nested_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__FAR_FROM_CUSTOMER_M", "300")
    monkeypatch.setenv("IRONARMY_POLICY__LATE_ENTRY_FLAG_AFTER", "PT96H")
    monkeypatch.setenv("IRONARMY_POLICY__REQUIRE_PHOTO", "false")
    monkeypatch.setenv("IRONARMY_POLICY__DISABLED_RULES", "duplicate_visit, overlapping_visits")
    policy = VisitsSettings().policy
    assert isinstance(policy, VisitsPolicy)
    assert policy.far_from_customer_m == 300.0
    assert policy.late_entry_flag_after == timedelta(hours=96)
    assert policy.require_photo is False
    assert policy.disabled_rules == frozenset({"duplicate_visit", "overlapping_visits"})
    assert policy.late_entry_minor_after == VisitsPolicy().late_entry_minor_after  # the rest: defaults


def test_rules_can_be_switched_off_with_a_json_list_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__DISABLED_RULES", '["late_entry"]')
    assert not VisitsSettings().policy.enabled("late_entry")


def test_the_whole_policy_may_be_given_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY", '{"max_travel_speed_kmh": 80, "bulk_entry_min_visits": 4}')
    policy = VisitsSettings().policy
    assert (policy.max_travel_speed_kmh, policy.bulk_entry_min_visits) == (80.0, 4)


def test_an_unknown_rule_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__DISABLED_RULES", "late_entry,no_such_rule")
    with pytest.raises(ValidationError, match="no_such_rule"):
        VisitsSettings()


def test_a_flag_threshold_below_the_minor_one_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__LATE_ENTRY_FLAG_AFTER", "PT1H")
    with pytest.raises(ValidationError, match="late_entry_flag_after"):
        VisitsSettings()


def test_without_settings_the_default_policy_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert VisitsSettings().policy == VisitsPolicy()
