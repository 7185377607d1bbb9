"""The rotation plan as an assignment problem: a pure function from plain data to a Plan or Infeasible.

Rows are the managers who may move (everyone due, and, if the policy allows, those past the
minimum tenure who could make the plan work); columns are the regions they hold, so every region
keeps exactly one manager. Returning to a region held within the last N postings is a forbidden
cell; distance and the household moved are costs. scipy's linear_sum_assignment finds the cheapest
assignment; a maximum bipartite matching first proves one exists, or names who cannot be placed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from services.rotation.domain.due import DueList, ManagerRecord, due_at, due_list, eligible_at
from services.rotation.domain.values import EARTH_RADIUS_KM, GeoPoint
from services.rotation.policy import RotationPolicy


@dataclass(frozen=True)
class Move:
    """One manager's move in a plan, with what it costs and why."""

    manager_id: str
    from_region: str
    to_region: str
    home_km: float  # new region from the manager's home base
    move_km: float  # new region from the current one
    distance_cost: float
    family_cost: float
    early_cost: float
    cost: float
    explanation: str


@dataclass(frozen=True)
class Stay:
    """A due manager the plan leaves where they are, and why."""

    manager_id: str
    region: str
    reason: str


@dataclass(frozen=True)
class Plan:
    as_of: datetime
    moves: tuple[Move, ...]
    staying: tuple[Stay, ...]
    total_cost: float
    due: DueList


@dataclass(frozen=True)
class Infeasible:
    """No plan exists; each reason names the managers and regions at fault."""

    as_of: datetime
    reasons: tuple[str, ...]
    manager_ids: tuple[str, ...]
    due: DueList


def _km_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Haversine distances between every point of a (n×2, degrees) and every point of b (m×2)."""
    lat1, lon1 = np.radians(a[:, :1]), np.radians(a[:, 1:])
    lat2, lon2 = np.radians(b[:, 0])[None, :], np.radians(b[:, 1])[None, :]
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    result: np.ndarray = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def _points(points: Sequence[GeoPoint]) -> np.ndarray:
    return np.array([(p.lat, p.lon) for p in points], dtype=float).reshape(-1, 2)


def solve_rotation(
    managers: Sequence[ManagerRecord],
    regions: Mapping[str, GeoPoint],
    history: Mapping[str, Sequence[str]],
    as_of: datetime,
    policy: RotationPolicy,
) -> Plan | Infeasible:
    """Plan the rotation of everyone due on `as_of`.

    `history` gives each manager's posted regions, oldest first, the current one last.
    """
    due = due_list(managers, as_of, policy)
    by_id = {m.manager_id: m for m in managers}
    staying = tuple(
        Stay(d.manager_id, d.region, f"{d.held_because} until {d.held_until:%Y-%m-%d}")
        for d in due.due
        if d.held_until is not None
    )
    must = [by_id[d.manager_id] for d in due.due if d.held_until is None]
    if not must:
        return Plan(as_of, (), staying, 0.0, due)
    must_ids = {m.manager_id for m in must}
    optional: list[ManagerRecord] = []
    if policy.draw_in_early_movers:
        optional = sorted(
            (
                m
                for m in managers
                if m.manager_id not in must_ids
                and m.region is not None
                and m.since is not None
                and eligible_at(m.since, policy) <= as_of
                and not m.held_at(as_of)
            ),
            key=lambda m: m.manager_id,
        )
    rows = must + optional
    columns = [m.region for m in rows if m.region is not None]
    if len(set(columns)) != len(columns):
        raise ValueError("two managers hold the same region: the roster is inconsistent")
    missing = sorted(c for c in columns if c not in regions)
    if missing:
        raise ValueError(f"regions without a location: {missing}")
    col_of = {region: j for j, region in enumerate(columns)}
    n = len(rows)

    # Forbidden cells: a return within the last N postings (the current one included) — but an
    # optional mover may stay where they are, which is not a return.
    allowed = np.ones((n, n), dtype=bool)
    window = policy.no_return_postings
    for i, m in enumerate(rows):
        recent = list(history.get(m.manager_id, ()))[-window:] if window else []
        for region in recent:
            j = col_of.get(region)
            if j is not None:
                allowed[i, j] = False
        if m.manager_id in must_ids:
            allowed[i, i] = False
        else:
            allowed[i, i] = True

    reasons, culprits = _explain_infeasibility(rows, columns, allowed, must_ids, history, window)
    if reasons:
        return Infeasible(as_of, reasons, culprits, due)

    region_points = _points([regions[c] for c in columns])
    home_km = _km_matrix(_points([m.home_base for m in rows]), region_points)
    move_km = _km_matrix(region_points, region_points)  # row i's current region is column i
    dependants = np.array([m.dependants for m in rows], dtype=float)[:, None]
    early_days = np.array(
        [0.0 if m.manager_id in must_ids else _days_early(m, as_of, policy) for m in rows], dtype=float
    )[:, None]
    distance_cost = policy.home_km_cost * home_km + policy.move_km_cost * move_km
    family_cost = policy.family_km_cost_per_dependant * dependants * move_km
    early_cost = np.broadcast_to(policy.early_move_cost_per_day * early_days, (n, n)).copy()
    cost = distance_cost + family_cost + early_cost
    np.fill_diagonal(cost, 0.0)  # staying costs nothing (only optional movers may stay)
    row_ind, col_ind = linear_sum_assignment(np.where(allowed, cost, np.inf))

    dues = {d.manager_id: d for d in due.due}
    moves: list[Move] = []
    for i, j in zip(row_ind.tolist(), col_ind.tolist(), strict=True):
        if i == j:
            continue
        m = rows[i]
        if m.manager_id in must_ids:
            d = dues[m.manager_id]
            why = f"due since {d.due_at:%Y-%m-%d} ({d.overdue_days} days overdue)"
            if d.past_max:
                why += ", past the maximum tenure"
        else:
            why = f"not yet due ({int(early_days[i, 0])} days early), moved so that the plan works"
        family = f"; household of {m.dependants} moves (+{family_cost[i, j]:.1f})" if m.dependants else ""
        explanation = (
            f"{m.manager_id}: {why}; {columns[i]} → {columns[j]}, {move_km[i, j]:.0f} km away, "
            f"{home_km[i, j]:.0f} km from home base (+{distance_cost[i, j]:.1f}){family}"
        )
        if early_cost[i, j]:
            explanation += f"; early move (+{early_cost[i, j]:.1f})"
        moves.append(
            Move(
                manager_id=m.manager_id,
                from_region=columns[i],
                to_region=columns[j],
                home_km=round(float(home_km[i, j]), 1),
                move_km=round(float(move_km[i, j]), 1),
                distance_cost=round(float(distance_cost[i, j]), 2),
                family_cost=round(float(family_cost[i, j]), 2),
                early_cost=round(float(early_cost[i, j]), 2),
                cost=round(float(cost[i, j]), 2),
                explanation=explanation,
            )
        )
    moves.sort(key=lambda mv: mv.manager_id)
    return Plan(as_of, tuple(moves), staying, round(sum(mv.cost for mv in moves), 2), due)


def _days_early(m: ManagerRecord, as_of: datetime, policy: RotationPolicy) -> float:
    assert m.since is not None
    return float(max(0, (due_at(m.since, policy) - as_of).days))


def _explain_infeasibility(
    rows: Sequence[ManagerRecord],
    columns: Sequence[str],
    allowed: np.ndarray,
    must_ids: set[str],
    history: Mapping[str, Sequence[str]],
    window: int,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Why no assignment exists (empty if one does): first who has no open region at all,
    else a group of managers who between them may take fewer regions than they are (Hall)."""
    open_regions = ", ".join(sorted(columns))
    stuck = [i for i in range(len(rows)) if not allowed[i].any()]
    if stuck:
        reasons = []
        for i in stuck:
            m = rows[i]
            # Only someone who must move can be stuck: anyone else may stay.
            recent = list(history.get(m.manager_id, ()))[-window:] if window else []
            held = [r for r in recent if r != m.region]
            why = f"{m.region} is their own region"
            if held:
                why += f" and they held {', '.join(held)} within their last {window} postings"
            reasons.append(
                f"{m.manager_id} must move from {m.region}, but every open region ({open_regions}) "
                f"is forbidden: {why}"
            )
        return tuple(reasons), tuple(rows[i].manager_id for i in stuck)
    match = maximum_bipartite_matching(csr_matrix(allowed.astype(np.int8)), perm_type="column")
    unmatched = [i for i in range(len(rows)) if match[i] < 0]
    if not unmatched:
        return (), ()
    row_of_col = {int(c): r for r, c in enumerate(match.tolist()) if c >= 0}
    # Alternating search from one unplaced manager: the managers reached can go only to the
    # regions reached, and there is one region fewer than managers.
    group, regions_reached, frontier = {unmatched[0]}, set(), [unmatched[0]]
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(allowed[i]).tolist():
            if j in regions_reached:
                continue
            regions_reached.add(j)
            r = row_of_col.get(j)
            if r is not None and r not in group:
                group.add(r)
                frontier.append(r)
    names = sorted(rows[i].manager_id for i in group)
    reached = sorted(columns[j] for j in regions_reached)
    reason = (
        f"{len(names)} managers ({', '.join(names)}) may between them go only to "
        f"{len(reached)} regions ({', '.join(reached)}): the no-return rule over the last {window} "
        "postings leaves one of them nowhere to go"
    )
    return (reason,), tuple(names)
