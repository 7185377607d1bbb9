"""The rotation plan as an assignment problem: every region keeps a manager, no return, cheapest moves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from services.rotation.domain.due import ManagerRecord
from services.rotation.domain.solver import Infeasible, Plan, solve_rotation
from services.rotation.policy import RotationPolicy
from tests.unit.rotation.support import CITIES, at, point, record

AS_OF = at(2026, 1, 10)
DUE = at(2025, 6, 1)  # seven months before AS_OF
REGIONS = {city: point(city) for city in CITIES}
STRICT = RotationPolicy(draw_in_early_movers=False)


def solve(
    managers: Sequence[ManagerRecord],
    history: dict[str, list[str]] | None = None,
    policy: RotationPolicy = STRICT,
) -> Plan | Infeasible:
    history = dict(history or {})
    for m in managers:
        history.setdefault(m.manager_id, [m.region] if m.region else [])
    return solve_rotation(managers, REGIONS, history, AS_OF, policy)


def moves(result: Plan | Infeasible) -> dict[str, str]:
    assert isinstance(result, Plan), result
    return {m.manager_id: m.to_region for m in result.moves}


def test_two_due_managers_swap_and_every_region_keeps_a_manager() -> None:
    result = solve([record("ann", "hangzhou", DUE), record("bob", "shanghai", DUE)])
    assert moves(result) == {"ann": "shanghai", "bob": "hangzhou"}


def test_the_cheapest_assignment_wins_distance_from_home_counts() -> None:
    # ann lives in shanghai; bob lives in beijing: sending each nearer home is cheaper.
    managers = [
        record("ann", "hangzhou", DUE, home="shanghai"),
        record("bob", "nanjing", DUE, home="beijing"),
        record("cat", "shanghai", DUE, home="shanghai"),
        record("dan", "beijing", DUE, home="beijing"),
    ]
    result = solve(managers)
    assert isinstance(result, Plan)
    picked = moves(result)
    assert picked["ann"] == "shanghai" and picked["bob"] == "beijing"
    # The total is the sum of the moves and each move explains its cost.
    assert result.total_cost == round(sum(m.cost for m in result.moves), 2)
    ann = next(m for m in result.moves if m.manager_id == "ann")
    assert "hangzhou → shanghai" in ann.explanation and "due since 2025-12-01" in ann.explanation


def test_nobody_returns_to_a_region_held_within_the_last_n_postings() -> None:
    # Three due managers; ann held beijing two postings ago, so the cheap cycle via beijing is out.
    managers = [
        record("ann", "hangzhou", DUE),
        record("bob", "shanghai", DUE),
        record("cat", "beijing", DUE),
    ]
    free = moves(solve(managers))
    history = {"ann": ["beijing", "wuhan", "hangzhou"]}
    constrained = moves(solve(managers, history))
    assert free["ann"] == "beijing"  # without the history the solver likes it
    assert constrained["ann"] != "beijing"
    assert sorted(constrained.values()) == ["beijing", "hangzhou", "shanghai"]


def test_a_region_held_just_outside_the_no_return_window_may_be_given_again() -> None:
    managers = [record("ann", "hangzhou", DUE), record("bob", "shanghai", DUE)]
    inside = {"ann": ["shanghai", "wuhan", "hangzhou"]}  # 3 postings: window of 3 forbids shanghai
    outside = {"ann": ["shanghai", "wuhan", "chengdu", "hangzhou"]}  # 4 postings ago: allowed
    assert isinstance(solve(managers, inside), Infeasible)
    assert moves(solve(managers, outside)) == {"ann": "shanghai", "bob": "hangzhou"}


def test_a_manager_for_whom_every_open_region_is_forbidden_is_named() -> None:
    managers = [record("ann", "hangzhou", DUE), record("bob", "shanghai", DUE)]
    result = solve(managers, {"ann": ["shanghai", "hangzhou"]})
    assert isinstance(result, Infeasible)
    assert result.manager_ids == ("ann",)
    assert "ann must move from hangzhou" in result.reasons[0]
    assert "hangzhou, shanghai" in result.reasons[0]  # the open regions it could not take


def test_a_lone_due_manager_with_nobody_to_swap_with_has_no_plan_and_says_why() -> None:
    result = solve([record("ann", "hangzhou", DUE), record("bob", "shanghai", AS_OF - timedelta(days=30))])
    assert isinstance(result, Infeasible)
    assert result.manager_ids == ("ann",)
    assert "every open region (hangzhou) is forbidden" in result.reasons[0]


def test_a_group_that_can_reach_too_few_regions_is_named_with_those_regions() -> None:
    # ann and bob may each go only to wuhan (they held the others recently): two managers, one region.
    managers = [
        record("ann", "hangzhou", DUE),
        record("bob", "shanghai", DUE),
        record("cat", "wuhan", DUE),
        record("dan", "beijing", DUE),
    ]
    history = {
        "ann": ["shanghai", "beijing", "hangzhou"],
        "bob": ["hangzhou", "beijing", "shanghai"],
    }
    result = solve(managers, history)
    assert isinstance(result, Infeasible)
    assert set(result.manager_ids) >= {"ann", "bob"}
    assert "wuhan" in result.reasons[0] and "ann" in result.reasons[0] and "bob" in result.reasons[0]


def test_a_deferred_manager_stays_and_their_region_is_not_offered() -> None:
    deferred = record(
        "cat", "suzhou", DUE, held_until=AS_OF + timedelta(days=1), held_because="deferred (hardship)"
    )
    managers = [record("ann", "hangzhou", DUE), record("bob", "shanghai", DUE), deferred]
    result = solve(managers)
    assert isinstance(result, Plan)
    assert set(moves(result)) == {"ann", "bob"}
    assert "suzhou" not in moves(result).values()
    assert [(s.manager_id, s.region) for s in result.staying] == [("cat", "suzhou")]
    assert "deferred (hardship)" in result.staying[0].reason


def test_a_deferral_that_has_ended_no_longer_keeps_anyone_in_place() -> None:
    ended = record("cat", "suzhou", DUE, held_until=AS_OF, held_because="deferred (hardship)")
    managers = [record("ann", "hangzhou", DUE), record("bob", "shanghai", DUE), ended]
    assert set(moves(solve(managers))) == {"ann", "bob", "cat"}


def test_the_manager_moving_a_household_gets_the_shorter_move() -> None:
    # Two cycles cost the same distance in total; only who carries the long legs differs.
    def plan(with_family: str) -> dict[str, str]:
        managers = [
            record(m, region, DUE, dependants=3 if m == with_family else 0)
            for m, region in (("ann", "hangzhou"), ("bob", "shanghai"), ("cat", "chengdu"))
        ]
        return moves(solve(managers))

    assert plan("ann")["ann"] == "shanghai"  # 165 km rather than 1,570
    assert plan("bob")["bob"] == "hangzhou"


def test_the_family_cost_is_the_policy_rate_per_dependant_per_km_moved() -> None:
    result = solve([record("ann", "hangzhou", DUE, dependants=3), record("bob", "shanghai", DUE)])
    assert isinstance(result, Plan)
    ann, bob = result.moves
    assert bob.family_cost == 0.0
    assert ann.family_cost == pytest.approx(0.25 * 3 * ann.move_km, abs=0.1)
    assert ann.cost == pytest.approx(ann.distance_cost + ann.family_cost, abs=0.01)
    assert "household of 3 moves" in ann.explanation


def test_a_manager_past_the_minimum_tenure_is_drawn_in_to_make_a_lone_move_possible() -> None:
    policy = RotationPolicy()  # draws in early movers, min tenure 3 months
    early = record("bob", "shanghai", AS_OF - timedelta(days=100))  # past 3 months, not due
    result = solve([record("ann", "hangzhou", DUE), early], policy=policy)
    assert moves(result) == {"ann": "shanghai", "bob": "hangzhou"}
    assert isinstance(result, Plan)
    bob = next(m for m in result.moves if m.manager_id == "bob")
    assert bob.early_cost > 0 and "not yet due" in bob.explanation


def test_a_manager_under_the_minimum_tenure_is_never_moved() -> None:
    policy = RotationPolicy()
    too_new = record("bob", "shanghai", at(2025, 10, 10, second=1))  # 3 months less one second
    assert isinstance(solve([record("ann", "hangzhou", DUE), too_new], policy=policy), Infeasible)
    just_eligible = record("bob", "shanghai", at(2025, 10, 10))
    assert moves(solve([record("ann", "hangzhou", DUE), just_eligible], policy=policy))["bob"] == "hangzhou"


def test_an_early_mover_who_is_not_needed_stays_where_they_are() -> None:
    policy = RotationPolicy()
    managers = [
        record("ann", "hangzhou", DUE),
        record("bob", "shanghai", DUE),
        record("cat", "chengdu", AS_OF - timedelta(days=100)),
    ]
    assert moves(solve(managers, policy=policy)) == {"ann": "shanghai", "bob": "hangzhou"}


def test_when_nobody_is_due_the_plan_is_empty() -> None:
    result = solve([record("ann", "hangzhou", AS_OF - timedelta(days=10))])
    assert isinstance(result, Plan)
    assert result.moves == () and result.total_cost == 0.0


def test_three_hundred_managers_are_placed_in_three_hundred_regions() -> None:
    from services.rotation.domain.values import GeoPoint

    regions = {f"r{i}": GeoPoint(20 + (i % 20), 100 + i // 20) for i in range(300)}
    managers = [ManagerRecord(f"m{i}", f"r{i}", DUE, regions[f"r{(i * 7) % 300}"]) for i in range(300)]
    history = {f"m{i}": [f"r{(i + 1) % 300}", f"r{i}"] for i in range(300)}
    result = solve_rotation(managers, regions, history, AS_OF, STRICT)
    assert isinstance(result, Plan)
    assert len(result.moves) == 300
    assert sorted(m.to_region for m in result.moves) == sorted(regions)
    assert all(m.to_region != f"r{(int(m.manager_id[1:]) + 1) % 300}" for m in result.moves)
