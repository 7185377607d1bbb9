"""Who sees which reviews: reps their own, managers their region, hr, qc, ops and admin all."""

from __future__ import annotations

import pytest

from services.reviews.domain.access import may_view_region, may_view_review


@pytest.mark.parametrize(
    ("role", "actor_id", "caller_region", "allowed"),
    [
        ("rep", "rep-1", None, True),
        ("rep", "rep-2", None, False),
        ("manager", "mgr-1", "hangzhou", True),
        ("manager", "mgr-1", "ningbo", False),
        ("hr", "hr-1", None, True),
        ("qc", "qc-1", None, True),
        ("system", "reviews", None, False),
    ],
)
def test_a_review_is_seen_by_its_rep_its_regions_manager_and_the_desks(
    role: str, actor_id: str, caller_region: str | None, allowed: bool
) -> None:
    assert may_view_review(role, actor_id, caller_region, "rep-1", "hangzhou") is allowed


def test_a_regions_distribution_is_not_for_reps_or_other_regions_managers() -> None:
    assert may_view_region("manager", "hangzhou", "hangzhou") is True
    assert may_view_region("manager", "ningbo", "hangzhou") is False
    assert may_view_region("rep", "hangzhou", "hangzhou") is False
    assert may_view_region("hr", None, "hangzhou") is True
