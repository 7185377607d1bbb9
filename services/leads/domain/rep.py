"""A sales rep: region, role, status, daily quota, and the private pool they keep under its cap."""

from __future__ import annotations

import copy
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.leads.domain.values import SALES_ROLES, check_quota, require_text
from shared.domain import Conflict, Meta, RuleViolated, direct_events, stable_id


@direct_events
class Rep(Aggregate):
    """The consistency boundary of a private pool: its cap holds even when two keeps race."""

    @staticmethod
    def create_id(rep_id: str) -> UUID:
        return stable_id("rep", rep_id)

    @event("Registered")
    def __init__(
        self,
        rep_id: str,
        name: str,
        region: str,
        role: str,
        joined_on: date,
        daily_quota: int,
        private_pool_cap: int,
        quota_min: int,
        quota_max: int,
        max_private_pool_cap: int,
        meta: Meta,
    ) -> None:
        self.rep_id = require_text(rep_id, "rep_id", "the rep id")
        self.name = require_text(name, "name", "the rep's name")
        self.region = require_text(region, "region", "the region")
        if role not in SALES_ROLES:
            raise RuleViolated(f"role must be one of {', '.join(SALES_ROLES)}", field="role")
        self.role = role
        self.joined_on = joined_on
        check_quota(daily_quota, quota_min, quota_max)
        self.daily_quota = daily_quota
        _check_cap(private_pool_cap, max_private_pool_cap)
        self.private_pool_cap = private_pool_cap
        self.active = True
        self.private_leads: tuple[str, ...] = ()

    def clone(self) -> Rep:
        twin = copy.copy(self)
        twin._pending_events = []
        return twin

    def _require_active(self, doing: str) -> None:
        if not self.active:
            raise RuleViolated(f"cannot {doing}: {self.rep_id} is inactive", field="rep_id")

    # --- capacity and status ---------------------------------------------------------------

    @event("QuotaSet")
    def set_daily_quota(self, daily_quota: int, quota_min: int, quota_max: int, meta: Meta) -> None:
        check_quota(daily_quota, quota_min, quota_max)
        self.daily_quota = daily_quota

    @event("PrivatePoolCapSet")
    def set_private_pool_cap(self, private_pool_cap: int, max_cap: int, meta: Meta) -> None:
        _check_cap(private_pool_cap, max_cap)
        # Lowering the cap below the pool's size keeps what is there; keeping more needs swaps.
        self.private_pool_cap = private_pool_cap

    def deactivate(self, reason: str, meta: Meta) -> None:
        self._deactivated(rep_id=self.rep_id, reason=reason, meta=meta)

    @event("Deactivated")
    def _deactivated(self, rep_id: str, reason: str, meta: Meta) -> None:
        if not self.active:
            raise Conflict(f"{self.rep_id} is already inactive", field="rep_id")
        require_text(reason, "reason", "the reason for deactivating a rep")
        self.active = False
        self.private_leads = ()  # their leads go back to the pool with them

    def reactivate(self, meta: Meta) -> None:
        self._reactivated(rep_id=self.rep_id, meta=meta)

    @event("Reactivated")
    def _reactivated(self, rep_id: str, meta: Meta) -> None:
        if self.active:
            raise Conflict(f"{self.rep_id} is already active", field="rep_id")
        self.active = True

    # --- the private pool -------------------------------------------------------------------

    def needs_return(self) -> bool:
        """Keeping one more lead needs one returned: the pool is at (or above) its cap."""
        return len(self.private_leads) >= self.private_pool_cap

    @event("PrivateLeadKept")
    def keep_private(self, lead_id: str, returning_lead_id: str | None, meta: Meta) -> None:
        self._require_active("keep a lead private")
        if lead_id in self.private_leads:
            raise Conflict("the lead is already in the private pool", field="lead_id")
        if returning_lead_id is not None:
            if returning_lead_id == lead_id:
                raise RuleViolated("a lead cannot be swapped for itself", field="return_lead_id")
            if returning_lead_id not in self.private_leads:
                raise RuleViolated(
                    "the lead named to return is not in the private pool", field="return_lead_id"
                )
        elif self.needs_return():
            raise RuleViolated(
                f"the private pool is full ({len(self.private_leads)} of {self.private_pool_cap}): "
                "name a lead to return to keep this one",
                field="return_lead_id",
            )
        kept = tuple(lead for lead in self.private_leads if lead != returning_lead_id)
        self.private_leads = (*kept, lead_id)

    def lead_left(self, lead_id: str, why: str, meta: Meta) -> bool:
        """A private lead was released, reclaimed, converted or closed; False if it was not here."""
        if lead_id not in self.private_leads:
            return False
        self._private_lead_left(lead_id=lead_id, why=why, meta=meta)
        return True

    @event("PrivateLeadLeft")
    def _private_lead_left(self, lead_id: str, why: str, meta: Meta) -> None:
        self.private_leads = tuple(lead for lead in self.private_leads if lead != lead_id)


def _check_cap(cap: int, max_cap: int) -> None:
    if not 0 <= cap <= max_cap:
        raise RuleViolated(f"a private pool cap of {cap} is outside 0–{max_cap}", field="private_pool_cap")
