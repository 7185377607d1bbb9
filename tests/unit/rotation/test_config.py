"""The rotation policy comes from the environment (IRONARMY_POLICY__<FIELD>), checked at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.rotation.bootstrap import spec
from services.rotation.config import RotationSettings
from services.rotation.policy import RotationPolicy


def test_without_settings_the_policy_is_the_default_six_months() -> None:
    assert RotationSettings().policy == RotationPolicy()
    assert RotationSettings().policy.due_after_months == 6


def test_the_environment_fills_the_nested_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__DUE_AFTER_MONTHS", "4")
    monkeypatch.setenv("IRONARMY_POLICY__MAX_TENURE_MONTHS", "9")
    monkeypatch.setenv("IRONARMY_POLICY__DRAW_IN_EARLY_MOVERS", "false")
    monkeypatch.setenv("IRONARMY_POLICY__HOME_KM_COST", "2.5")
    policy = RotationSettings().policy
    assert isinstance(policy, RotationPolicy)
    assert (policy.due_after_months, policy.max_tenure_months) == (4, 9)
    assert policy.draw_in_early_movers is False and policy.home_km_cost == 2.5
    assert policy.no_return_postings == RotationPolicy().no_return_postings  # the rest keep defaults


def test_an_inconsistent_policy_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__MIN_TENURE_MONTHS", "8")  # above the due point of 6
    with pytest.raises(ValidationError, match="min_tenure <= due_after"):
        RotationSettings()


def test_the_service_builds_its_application_with_the_configured_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__NOTICE_DAYS", "14")
    settings = RotationSettings(store="memory")
    application = spec().make_application(settings, settings.eventsourcing_env("rotation"))
    assert application.policy.notice_days == 14
