"""Who may do what in the leads service: a pure check the application and the API share."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from shared.domain import Forbidden, Meta

# Actions, named as the application's commands and queries are.
REGISTER_REP = "register_rep"
MANAGE_REP = "manage_rep"  # quota, cap, deactivate, reactivate
REGISTER_LEAD = "register_lead"
ASSIGN = "assign"
DISTRIBUTE = "distribute"
RECLAIM = "reclaim"  # the follow-up clock: warnings and reclaims
FOLLOW_UP = "follow_up"
KEEP_PRIVATE = "keep_private"
RELEASE = "release"
CONVERT = "convert"
CLOSE = "close"
VIEW_LEAD = "view_lead"
VIEW_REP = "view_rep"  # a rep's workbench
VIEW_REGION = "view_region"

# A rep acts only as themself, on their own leads.
REP_ACTIONS = frozenset({FOLLOW_UP, KEEP_PRIVATE, RELEASE, CONVERT, CLOSE, VIEW_LEAD, VIEW_REP})
# A manager acts in their own region, but never records a rep's own work for them.
MANAGER_ACTIONS = frozenset(
    {REGISTER_REP, MANAGE_REP, REGISTER_LEAD, ASSIGN, DISTRIBUTE, RECLAIM, RELEASE, CONVERT, CLOSE}
    | {VIEW_LEAD, VIEW_REP, VIEW_REGION}
)
# The scheduler and importers.
SYSTEM_ACTIONS = frozenset({REGISTER_LEAD, DISTRIBUTE, RECLAIM, VIEW_LEAD, VIEW_REP, VIEW_REGION})
# Quality control, HR and ops read; they do not work leads.
READER_ROLES = frozenset({"qc", "hr", "ops"})
READ_ACTIONS = frozenset({VIEW_LEAD, VIEW_REP, VIEW_REGION})
# HR also keeps the roster: who is a rep, their quota and cap, who is active.
HR_ACTIONS = READ_ACTIONS | {REGISTER_REP, MANAGE_REP}


@dataclass(frozen=True)
class Target:
    """What an action is about: the region it happens in and, for a lead or rep, whose it is."""

    region: str | None  # None: every region (e.g. a distribution for all)
    owner_id: str | None = None  # the rep who owns the lead, or the rep acted on


def may_act(
    actor_id: str, actor_role: str, action: str, target: Target, managed_regions: Collection[str]
) -> bool:
    """Rep only on their own leads and as themself; manager in their region(s); admin everywhere."""
    if actor_role == "admin":
        return True
    if actor_role == "system":
        return action in SYSTEM_ACTIONS
    if actor_role == "hr":
        return action in HR_ACTIONS
    if actor_role in READER_ROLES:
        return action in READ_ACTIONS
    if actor_role == "manager":
        return action in MANAGER_ACTIONS and target.region is not None and target.region in managed_regions
    if actor_role == "rep":
        return action in REP_ACTIONS and target.owner_id is not None and target.owner_id == actor_id
    return False


def require_may_act(meta: Meta, action: str, target: Target, managed_regions: Collection[str]) -> None:
    if not may_act(meta.actor_id, meta.actor_role, action, target, managed_regions):
        where = f" in {target.region}" if target.region else " in every region"
        raise Forbidden(f"{meta.actor_role} {meta.actor_id} may not {action.replace('_', ' ')}{where}")
