"""Benchmark: a rotation plan for 300 managers and 300 regions, against a bare linear_sum_assignment.

Run: .venv/bin/python bench/bench_rotation.py [--size 300] [--repeat 7]
Prints median times; asserts nothing about them (machines differ).
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime

import numpy as np
from scipy.optimize import linear_sum_assignment

from bench.common import medians_in_turns, seconds
from services.rotation.application import RotationApplication
from services.rotation.domain.due import ManagerRecord
from services.rotation.domain.solver import Plan, solve_rotation
from services.rotation.domain.values import GeoPoint
from services.rotation.policy import RotationPolicy
from shared.domain import Meta


def country(size: int, seed: int) -> tuple[list[ManagerRecord], dict[str, GeoPoint], dict[str, list[str]]]:
    """`size` regions across China's latitudes and longitudes, each held by a manager who is due,
    with a history of three earlier postings (so the no-return rule forbids real cells)."""
    rng = random.Random(seed)
    regions = {f"r{i:03d}": GeoPoint(rng.uniform(20, 45), rng.uniform(90, 125)) for i in range(size)}
    codes = list(regions)
    managers, history = [], {}
    for i, code in enumerate(codes):
        since = datetime(2025, rng.randint(1, 6), rng.randint(1, 28), tzinfo=UTC)
        home = GeoPoint(rng.uniform(20, 45), rng.uniform(90, 125))
        managers.append(ManagerRecord(f"m{i:03d}", code, since, home, dependants=rng.randint(0, 3)))
        history[f"m{i:03d}"] = [*rng.sample([c for c in codes if c != code], 3), code]
    return managers, regions, history


def staffed_application(
    managers: list[ManagerRecord], regions: dict[str, GeoPoint], policy: RotationPolicy
) -> RotationApplication:
    """The same country in the service's application, on the in-memory store."""
    app = RotationApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy)
    setup = Meta("hr-bench", "hr", datetime(2025, 12, 1, tzinfo=UTC))
    for code, place in regions.items():
        app.open_region(code, code.upper(), place.lat, place.lon, setup)
    for m in managers:
        assert m.region is not None and m.since is not None
        app.register_manager(m.manager_id, m.manager_id, "regional", m.home_base.lat, m.home_base.lon, setup)
        app.appoint_manager(m.manager_id, m.region, setup, since=m.since)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    managers, regions, history = country(args.size, args.seed)
    as_of = datetime(2026, 1, 10, tzinfo=UTC)
    policy = RotationPolicy()
    result = solve_rotation(managers, regions, history, as_of, policy)
    if not isinstance(result, Plan):
        raise SystemExit(f"no plan: {result.reasons}")

    matrix = np.random.default_rng(args.seed).random((args.size, args.size))
    # The same plan as the service makes it: read model → planning data → solver (no history
    # of earlier postings here, so the no-return rule forbids only the current region).
    app = staffed_application(managers, regions, policy)
    solve, bare, preview = medians_in_turns(
        seconds(lambda _: solve_rotation(managers, regions, history, as_of, policy)),
        seconds(lambda _: linear_sum_assignment(matrix)),
        seconds(lambda _: app.preview_plan(as_of)),
        repeats=args.repeat,
    )

    print(
        f"plan: {len(result.moves)} moves for {args.size} managers × {args.size} regions, "
        f"total cost {result.total_cost:,.0f}"
    )
    print(f"solve_rotation median over {args.repeat}: {solve * 1000:8.2f} ms")
    print(f"bare linear_sum_assignment {args.size}×{args.size} median: {bare * 1000:8.2f} ms")
    print(f"ratio (plan / bare solver): {solve / bare:.1f}×")

    print(f"RotationApplication.preview_plan median over {args.repeat}: {preview * 1000:8.2f} ms")
    print(f"ratio (application preview / bare solver): {preview / bare:.1f}×")


if __name__ == "__main__":
    main()
