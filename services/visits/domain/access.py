"""Who may see and do what in the visits service: pure rules over the caller's id, role and region.

Reps see only their own visits and never a flag about themselves; a manager sees their region
(the token's region claim); quality control, ops and admin see everything; only qc decides flags.
Nobody, in any role, reads flags about themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain import Forbidden

READ_ALL = frozenset({"qc", "ops", "admin"})
DECIDERS = frozenset({"qc"})
LOOK_BACK_REQUESTERS = frozenset({"qc", "admin"})
SUMMARY_RUNNERS = frozenset({"ops", "admin"})


@dataclass(frozen=True)
class Scope:
    """What one caller may read: fixed filters (None: any), and whether flags are shown."""

    viewer_id: str
    rep_id: str | None = None  # a rep: only themself
    region: str | None = None  # a manager: only their region
    sees_flags: bool = True

    def flags_shown_for(self, rep_id: str) -> bool:
        """Flags about a visit are shown unless the viewer may not see flags, or they are its rep."""
        return self.sees_flags and rep_id != self.viewer_id

    def allows(self, *, rep_id: str | None = None, region: str | None = None) -> bool:
        return (self.rep_id is None or rep_id == self.rep_id) and (
            self.region is None or region == self.region
        )

    def narrow(self, *, rep_id: str | None, region: str | None) -> tuple[str | None, str | None]:
        """The filters a query runs with: the caller's own, and theirs may not be widened."""
        if self.rep_id is not None and rep_id not in (None, self.rep_id):
            raise Forbidden("a rep sees only their own visits", field="rep_id")
        if self.region is not None and region not in (None, self.region):
            raise Forbidden(f"a manager sees only their region ({self.region})", field="region")
        return (self.rep_id or rep_id), (self.region or region)


def _manager_region(region: str | None) -> str:
    if not region:
        raise Forbidden("a manager's token must name their region")
    return region


def visit_scope(actor_id: str, role: str, region: str | None) -> Scope:
    """Who reads visits: a rep their own (without flags), a manager their region, qc/ops/admin all."""
    if role == "rep":
        return Scope(actor_id, rep_id=actor_id, sees_flags=False)
    if role == "manager":
        return Scope(actor_id, region=_manager_region(region))
    if role in READ_ALL:
        return Scope(actor_id)
    raise Forbidden(f"role '{role}' does not read visits")


def desk_scope(actor_id: str, role: str, region: str | None) -> Scope:
    """Who reads flags, minor breaches, ownership and audit trails: managers (their region), qc,
    ops and admin. Reps never read flags; hr works from the red-line cases in reviews."""
    if role == "manager":
        return Scope(actor_id, region=_manager_region(region))
    if role in READ_ALL:
        return Scope(actor_id)
    raise Forbidden(f"role '{role}' does not read the quality-control desk")


def require_role(role: str, allowed: frozenset[str], doing: str) -> None:
    if role not in allowed:
        raise Forbidden(f"role '{role}' may not {doing} (needs one of: {', '.join(sorted(allowed))})")
