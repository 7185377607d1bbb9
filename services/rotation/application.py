"""The rotation service's application: regions, managers, due lists, plans, deferrals and the moves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from services.rotation.domain.due import DueList, due_list
from services.rotation.domain.manager import Manager
from services.rotation.domain.plan import APPROVED, PROPOSED, RotationPlan
from services.rotation.domain.region import Region
from services.rotation.domain.solver import Infeasible, Move, Plan, Stay, solve_rotation
from services.rotation.domain.values import GeoPoint, require_aware, require_planner, require_self_or_planner
from services.rotation.policy import RotationPolicy
from services.rotation.read_models import HistoryEntry, ManagerView, PlanView, RegionView, Roster
from shared.application import DataclassAsDict, ReadModel, ServiceApplication
from shared.domain import Conflict, Meta, NotFound, RuleViolated

A = TypeVar("A", bound=Aggregate)

SCHEDULER_ID = "scheduler"  # the actor of what the clock does


class RotationInfeasible(RuleViolated):
    """No rotation plan exists: `details["reasons"]` says why, naming managers and regions."""

    code = "rotation_infeasible"


class RotationApplication(ServiceApplication):
    extra_transcodings = (
        DataclassAsDict(GeoPoint, "rotation_geo_point"),
        DataclassAsDict(Move, "rotation_move"),
        DataclassAsDict(Stay, "rotation_stay"),
    )

    def __init__(self, env: Any = None, policy: RotationPolicy | None = None) -> None:
        self.policy = policy or RotationPolicy()
        super().__init__(env)

    def construct_read_models(self) -> Sequence[ReadModel]:
        self.roster = Roster()
        return (self.roster,)

    def _get(self, cls: type[A], aggregate_id: UUID, what: str, field: str) -> A:
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} not found", field=field) from None
        assert isinstance(aggregate, cls)
        return aggregate

    def _manager(self, manager_id: str) -> Manager:
        return self._get(Manager, Manager.create_id(manager_id), f"manager {manager_id}", "manager_id")

    def _plan(self, plan_id: UUID) -> RotationPlan:
        return self._get(RotationPlan, plan_id, f"rotation plan {plan_id}", "plan_id")

    def _exists(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    # --- regions and managers ------------------------------------------------------------

    def open_region(self, code: str, name: str, lat: float, lon: float, meta: Meta) -> UUID:
        if self._exists(Region.create_id(code)):
            raise Conflict(f"region {code} is already open", field="code")
        region = Region(code=code, name=name, location=GeoPoint(lat, lon), meta=meta)
        self.save(region)
        return region.id

    def register_manager(
        self,
        manager_id: str,
        name: str,
        level: str,
        home_lat: float,
        home_lon: float,
        meta: Meta,
        dependants: int = 0,
    ) -> UUID:
        if self._exists(Manager.create_id(manager_id)):
            raise Conflict(f"manager {manager_id} is already registered", field="manager_id")
        manager = Manager(
            manager_id=manager_id,
            name=name,
            level=level,
            home_base=GeoPoint(home_lat, home_lon),
            dependants=dependants,
            meta=meta,
        )
        self.save(manager)
        return manager.id

    def record_past_posting(
        self, manager_id: str, region: str, start: datetime, end: datetime, meta: Meta
    ) -> None:
        manager = self._manager(manager_id)
        manager.record_past_posting(region=region, start=start, end=end, meta=meta)
        self.save(manager)

    def appoint_manager(
        self, manager_id: str, region: str, meta: Meta, since: datetime | None = None
    ) -> None:
        """Fill a vacant region with a manager who has no posting (a backdated `since` onboards one)."""
        require_planner(meta, "appoint a manager")
        if not self._exists(Region.create_id(region)):
            raise NotFound(f"region {region} not found", field="region")
        with self.reading():
            holder = self.roster.region_manager.get(region)
        if holder is not None:
            raise Conflict(
                f"{region} is managed by {holder}: move managers by a rotation plan", field="region"
            )
        manager = self._manager(manager_id)
        manager.appoint(manager_id=manager_id, region=region, since=since or meta.at, meta=meta)
        self.save(manager)

    # --- hardship and declines -------------------------------------------------------------

    def request_deferral(self, manager_id: str, reason: str, until: datetime, meta: Meta) -> None:
        manager = self._manager(manager_id)
        manager.request_deferral(
            reason=reason, until=until, max_days=self.policy.max_deferral_days, meta=meta
        )
        self.save(manager)

    def approve_deferral(self, manager_id: str, meta: Meta) -> tuple[UUID, ...]:
        """Approve the waiting request; open plans that would move the manager are withdrawn.

        Returns the ids of the plans withdrawn.
        """
        manager = self._manager(manager_id)
        manager.approve_deferral(meta)
        plans = self._open_plans_moving(manager_id)
        for plan in plans:
            plan.withdraw(reason=f"{manager_id} was granted a deferral", meta=meta)
        self.save(manager, *plans)
        return tuple(plan.id for plan in plans)

    def reject_deferral(self, manager_id: str, reason: str, meta: Meta) -> None:
        manager = self._manager(manager_id)
        manager.reject_deferral(reason=reason, meta=meta)
        self.save(manager)

    def decline_rotation(self, manager_id: str, plan_id: UUID, reason: str, meta: Meta) -> None:
        """The manager declines their move: recorded in their history, and the plan is withdrawn
        (every region must keep a manager, so the rest of the chain cannot go ahead as planned)."""
        plan = self._plan(plan_id)
        move = plan.move_of(manager_id)
        if move is None:
            raise RuleViolated(f"plan {plan_id} does not move {manager_id}", field="manager_id")
        if not plan.is_open:
            raise Conflict(f"plan {plan_id} is {plan.status.replace('_', ' ')}: there is nothing to decline")
        manager = self._manager(manager_id)
        manager.decline_rotation(plan_id=plan_id, offered_region=move.to_region, reason=reason, meta=meta)
        plan.withdraw(reason=f"{manager_id} declined the move to {move.to_region}", meta=meta)
        self.save(manager, plan)

    def _open_plans_moving(self, manager_id: str) -> list[RotationPlan]:
        with self.reading():
            ids = [
                p.plan_id
                for p in self.roster.open_plans()
                if any(m.manager_id == manager_id for m in p.moves)
            ]
        return [self._plan(plan_id) for plan_id in ids]

    # --- plans -------------------------------------------------------------------------------

    def preview_plan(self, as_of: datetime) -> Plan | Infeasible:
        """Solve without storing anything: the moves with their costs, or why none exists."""
        require_aware(as_of, "as_of")
        with self.reading():
            managers, regions, history = self.roster.planning_data(self.policy)
        return solve_rotation(managers, regions, history, as_of, self.policy)

    def solve(self, as_of: datetime) -> Plan:
        """Like `preview_plan`, but no feasible plan is an error that carries the reasons."""
        result = self.preview_plan(as_of)
        if isinstance(result, Infeasible):
            raise RotationInfeasible(
                "no rotation plan is possible: " + "; ".join(result.reasons),
                reasons=list(result.reasons),
                manager_ids=list(result.manager_ids),
            )
        return result

    def propose_plan(
        self, meta: Meta, as_of: datetime | None = None, effective_at: datetime | None = None
    ) -> UUID:
        """Solve and store a plan for everyone due; a plan still waiting for approval is superseded."""
        require_planner(meta, "plan a rotation")
        as_of = as_of or meta.at
        effective_at = effective_at or as_of + timedelta(days=self.policy.notice_days)
        with self.reading():
            open_plans = self.roster.open_plans()
        approved = [p for p in open_plans if p.status == APPROVED]
        if approved:
            raise Conflict(
                f"plan {approved[0].plan_id} is approved and waits for {approved[0].effective_at:%Y-%m-%d}: "
                "withdraw it before planning again"
            )
        result = self.solve(as_of)
        if not result.moves:
            raise RuleViolated(f"nobody is due for rotation on {as_of:%Y-%m-%d}", field="as_of")
        plan_id = uuid.uuid4()
        plan = RotationPlan(
            plan_id=plan_id,
            as_of=as_of,
            effective_at=effective_at,
            moves=result.moves,
            staying=result.staying,
            total_cost=result.total_cost,
            meta=meta,
        )
        superseded = [self._plan(p.plan_id) for p in open_plans if p.status == PROPOSED]
        for old in superseded:
            old.withdraw(reason=f"superseded by plan {plan_id}", meta=meta)
        self.save(plan, *superseded)
        return plan.id

    def approve_plan(self, plan_id: UUID, meta: Meta) -> None:
        require_planner(meta, "approve a rotation plan")
        plan = self._plan(plan_id)
        stale = self._why_stale(plan, meta.at)
        if stale:
            raise Conflict(f"the plan no longer fits: {stale}; make a new plan")
        plan.approve(meta)
        self.save(plan)

    def withdraw_plan(self, plan_id: UUID, reason: str, meta: Meta) -> None:
        require_planner(meta, "withdraw a rotation plan")
        plan = self._plan(plan_id)
        plan.withdraw(reason=reason, meta=meta)
        self.save(plan)

    def _why_stale(self, plan: RotationPlan, at: datetime) -> str:
        for move in plan.moves:
            manager = self._manager(move.manager_id)
            if manager.region != move.from_region:
                return f"{move.manager_id} is no longer in {move.from_region}"
            if manager.deferred_at(at):
                return f"{move.manager_id} is deferred"
        return ""

    def carry_out_due_moves(self, now: datetime) -> tuple[UUID, ...]:
        """Called by the scheduler: every approved plan whose date has come moves its managers,
        all of a plan's moves in one save. A plan that no longer fits is withdrawn instead.

        Returns the ids of the plans carried out.
        """
        require_aware(now, "now")
        with self.reading():
            due = sorted(
                (p for p in self.roster.plans.values() if p.status == APPROVED and p.effective_at <= now),
                key=lambda p: p.effective_at,
            )
        carried_out: list[UUID] = []
        for view in due:
            meta = Meta(
                SCHEDULER_ID, "system", now, correlation_id=str(view.plan_id), causation_id=str(view.plan_id)
            )
            plan = self._plan(view.plan_id)
            stale = self._why_stale(plan, now)
            if stale:
                plan.withdraw(reason=f"not carried out: {stale}", meta=meta)
                self.save(plan)
                continue
            managers = []
            for move in plan.moves:
                manager = self._manager(move.manager_id)
                manager.rotate(
                    manager_id=move.manager_id,
                    from_region=move.from_region,
                    to_region=move.to_region,
                    effective_at=plan.effective_at,
                    plan_id=plan.id,
                    meta=meta,
                )
                managers.append(manager)
            plan.carry_out(meta)
            self.save(*managers, plan)  # the moves first, then the plan's closing note
            carried_out.append(plan.id)
        return tuple(carried_out)

    # --- queries -------------------------------------------------------------------------------

    def due_list(self, as_of: datetime) -> DueList:
        require_aware(as_of, "as_of")
        with self.reading():
            managers, _, _ = self.roster.planning_data(self.policy)
        return due_list(managers, as_of, self.policy)

    def regions(self) -> tuple[RegionView, ...]:
        with self.reading():
            return tuple(sorted(self.roster.regions.values(), key=lambda r: r.code))

    def region(self, code: str) -> RegionView:
        with self.reading():
            region = self.roster.regions.get(code)
        if region is None:
            raise NotFound(f"region {code} not found", field="region")
        return region

    def manager_of(self, region: str) -> str | None:
        return self.region(region).manager_id

    def manager(self, manager_id: str) -> ManagerView:
        with self.reading():
            row = self.roster.managers.get(manager_id)
            view = row.view() if row is not None else None
        if view is None:
            raise NotFound(f"manager {manager_id} not found", field="manager_id")
        return view

    def history(self, manager_id: str, *, viewer_id: str, viewer_role: str) -> tuple[HistoryEntry, ...]:
        """A manager sees their own history; hr and admin see anyone's."""
        require_self_or_planner(viewer_id, viewer_role, manager_id, "see this history")
        return self.manager(manager_id).history

    def managers(self) -> tuple[ManagerView, ...]:
        with self.reading():
            views = [m.view() for m in self.roster.managers.values()]
        return tuple(sorted(views, key=lambda v: v.manager_id))

    def offers_to(self, manager_id: str) -> tuple[tuple[PlanView, Move], ...]:
        """The moves open plans have for one manager (what they may still decline)."""
        with self.reading():
            plans = sorted(self.roster.open_plans(), key=lambda p: (p.effective_at, str(p.plan_id)))
        return tuple((plan, move) for plan in plans for move in plan.moves if move.manager_id == manager_id)

    def deferral_requests(self) -> tuple[ManagerView, ...]:
        """Managers whose deferral request waits for hr/admin."""
        with self.reading():
            views = [
                m.view()
                for m in self.roster.managers.values()
                if m.deferral is not None and m.deferral.status == "requested"
            ]
        return tuple(sorted(views, key=lambda v: v.manager_id))

    def plan(self, plan_id: UUID) -> PlanView:
        with self.reading():
            plan = self.roster.plans.get(plan_id)
        if plan is None:
            raise NotFound(f"rotation plan {plan_id} not found", field="plan_id")
        return plan

    def plans(self, status: str | None = None) -> tuple[PlanView, ...]:
        with self.reading():
            plans = [p for p in self.roster.plans.values() if status is None or p.status == status]
        return tuple(sorted(plans, key=lambda p: (p.as_of, str(p.plan_id))))
