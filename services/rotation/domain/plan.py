"""The RotationPlan aggregate: a solved plan, proposed, approved by hr/admin, then carried out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.rotation.domain.solver import Move, Stay
from services.rotation.domain.values import require_aware, require_planner, require_text
from shared.domain import Conflict, Meta, RuleViolated, direct_events

PROPOSED, APPROVED, CARRIED_OUT, WITHDRAWN = "proposed", "approved", "carried_out", "withdrawn"
OPEN = (PROPOSED, APPROVED)


@direct_events
class RotationPlan(Aggregate):
    @staticmethod
    def create_id(plan_id: UUID) -> UUID:
        return plan_id

    @event("Planned")
    def __init__(
        self,
        plan_id: UUID,
        as_of: datetime,
        effective_at: datetime,
        moves: Sequence[Move],
        staying: Sequence[Stay],
        total_cost: float,
        meta: Meta,
    ) -> None:
        require_planner(meta, "plan a rotation")
        require_aware(effective_at, "effective_at")
        if not moves:
            raise RuleViolated("a rotation plan needs at least one move: nobody is due", field="as_of")
        if effective_at < meta.at:
            raise RuleViolated("the moves cannot take effect before the plan is made", field="effective_at")
        movers = [m.manager_id for m in moves]
        if len(set(movers)) != len(movers) or len({m.to_region for m in moves}) != len(moves):
            raise RuleViolated("a plan moves each manager once and fills each region once")
        self.as_of = as_of
        self.effective_at = effective_at
        self.moves = tuple(moves)
        self.staying = tuple(staying)
        self.total_cost = total_cost
        self.status = PROPOSED
        self.planned_by = meta.actor_id
        self.approved_by = ""
        self.withdrawn_because = ""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def move_of(self, manager_id: str) -> Move | None:
        return next((m for m in self.moves if m.manager_id == manager_id), None)

    def approve(self, meta: Meta) -> None:
        self._approved(self.effective_at, meta)

    @event("Approved")
    def _approved(self, effective_at: datetime, meta: Meta) -> None:
        """Carries the effective date so the public RotationApproved is self-contained."""
        require_planner(meta, "approve a rotation plan")
        if effective_at != self.effective_at:
            raise Conflict("the plan's effective date changed")
        if self.status != PROPOSED:
            raise Conflict(f"the plan is {self.status.replace('_', ' ')}, not waiting for approval")
        if meta.at > self.effective_at:
            raise RuleViolated(
                f"the plan's effective date {self.effective_at:%Y-%m-%d} has passed: make a new plan"
            )
        self.status = APPROVED
        self.approved_by = meta.actor_id

    @event("Withdrawn")
    def withdraw(self, reason: str, meta: Meta) -> None:
        """Withdrawn by hr, or because a manager in it declined or was deferred."""
        if not self.is_open:
            raise Conflict(f"the plan is {self.status.replace('_', ' ')} and can no longer be withdrawn")
        self.withdrawn_because = require_text(reason, "reason")
        self.status = WITHDRAWN

    @event("CarriedOut")
    def carry_out(self, meta: Meta) -> None:
        if self.status != APPROVED:
            raise Conflict(f"only an approved plan is carried out (this one is {self.status})")
        if meta.at < self.effective_at:
            raise RuleViolated(f"the moves wait until {self.effective_at:%Y-%m-%d %H:%M}")
        self.status = CARRIED_OUT
