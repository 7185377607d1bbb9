"""Who is due: tenure against the policy, at and around every boundary."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.rotation.domain.due import ManagerRecord, due_list
from services.rotation.policy import RotationPolicy
from tests.unit.rotation.support import at, point, record

POLICY = RotationPolicy()  # due after 6 months, risk past 12
SINCE = at(2025, 1, 15)
SIX_MONTHS = at(2025, 7, 15)
TWELVE_MONTHS = at(2026, 1, 15)


def test_a_manager_one_second_short_of_six_months_is_not_due() -> None:
    result = due_list([record("ann", "hangzhou", SINCE)], SIX_MONTHS - timedelta(seconds=1), POLICY)
    assert result.due == ()


def test_a_manager_falls_due_the_moment_six_months_are_reached_with_nothing_overdue() -> None:
    result = due_list([record("ann", "hangzhou", SINCE)], SIX_MONTHS, POLICY)
    assert result.manager_ids == ("ann",)
    assert result.due[0].overdue == timedelta(0)
    assert result.due[0].due_at == SIX_MONTHS


def test_how_overdue_is_counted_from_the_due_date() -> None:
    result = due_list([record("ann", "hangzhou", SINCE)], SIX_MONTHS + timedelta(days=10, hours=3), POLICY)
    assert result.due[0].overdue_days == 10


def test_months_are_calendar_months_and_the_31st_falls_due_on_the_last_day_of_a_short_month() -> None:
    since = at(2025, 8, 31)
    assert due_list([record("ann", "hangzhou", since)], at(2026, 2, 27), POLICY).due == ()
    assert due_list([record("ann", "hangzhou", since)], at(2026, 2, 28), POLICY).manager_ids == ("ann",)


def test_a_region_is_at_risk_only_once_its_manager_is_strictly_past_the_maximum_tenure() -> None:
    managers = [record("ann", "hangzhou", SINCE)]
    assert due_list(managers, TWELVE_MONTHS, POLICY).at_risk == ()
    assert not due_list(managers, TWELVE_MONTHS, POLICY).due[0].past_max
    just_over = due_list(managers, TWELVE_MONTHS + timedelta(seconds=1), POLICY)
    assert [r.region for r in just_over.at_risk] == ["hangzhou"]
    assert just_over.at_risk[0].past_max_by == timedelta(seconds=1)
    assert just_over.due[0].past_max


def test_the_tenure_settings_are_read_from_the_policy() -> None:
    policy = RotationPolicy(min_tenure_months=2, due_after_months=4, max_tenure_months=8)
    managers = [record("ann", "hangzhou", SINCE)]
    assert due_list(managers, at(2025, 5, 15) - timedelta(seconds=1), policy).due == ()
    assert due_list(managers, at(2025, 5, 15), policy).manager_ids == ("ann",)
    assert due_list(managers, at(2025, 9, 15, second=1), policy).at_risk[0].region == "hangzhou"


def test_the_most_overdue_come_first_and_managers_without_a_posting_are_never_due() -> None:
    managers = [
        record("bob", "shanghai", at(2025, 3, 1)),
        record("ann", "hangzhou", at(2025, 1, 1)),
        record("cat", "beijing", at(2025, 12, 1)),
    ]
    unposted = ManagerRecord("dan", None, None, point("wuhan"))
    result = due_list([*managers, unposted], at(2026, 1, 1), POLICY)
    assert result.manager_ids == ("ann", "bob")


def test_a_deferred_manager_is_still_listed_as_due_with_the_hold() -> None:
    held = record("ann", "hangzhou", SINCE, held_until=at(2025, 9, 1), held_because="deferred (hardship)")
    during = due_list([held], at(2025, 8, 1), POLICY).due[0]
    after = due_list([held], at(2025, 9, 1), POLICY).due[0]
    assert (during.held_until, during.held_because) == (at(2025, 9, 1), "deferred (hardship)")
    assert after.held_until is None


@pytest.mark.parametrize(
    "settings",
    [
        {"min_tenure_months": 7},  # above due_after
        {"max_tenure_months": 5},  # below due_after
        {"no_return_postings": -1},
        {"home_km_cost": -0.1},
    ],
)
def test_a_policy_that_contradicts_itself_is_refused(settings: dict[str, int | float]) -> None:
    with pytest.raises(ValueError):
        RotationPolicy(**settings)  # type: ignore[arg-type]
