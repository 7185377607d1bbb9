"""What the rotation service tells the others: stored domain events → public integration events."""

from __future__ import annotations

from typing import Any

from services.rotation.domain.manager import Manager
from services.rotation.domain.plan import RotationPlan
from services.rotation.domain.region import Region
from shared.events.catalog import Published
from shared.events.rotation import (
    ManagerAppointed,
    ManagerRotated,
    PlannedMove,
    RegionOpened,
    RotationApproved,
    RotationDeclined,
    RotationDeferred,
    RotationPlanned,
)


def _kind(domain_event: Any) -> str:
    return type(domain_event).__qualname__


def to_integration(domain_event: Any) -> Published | None:
    """The public form of one stored event, or None for what stays inside the service
    (registrations, past postings, deferral requests and rejections, withdrawals, carry-outs)."""
    kind, e = _kind(domain_event), domain_event
    if kind == "Region.Opened":
        return Published(
            RegionOpened(
                region=e.code, name=e.name, lat=e.location.lat, lon=e.location.lon, opened_at=e.meta.at
            ),
            Region.__name__,
        )
    if kind == "Manager.Appointed":
        return Published(
            ManagerAppointed(manager_id=e.manager_id, region=e.region, appointed_at=e.since),
            Manager.__name__,
        )
    if kind == "Manager.Rotated":
        return Published(
            ManagerRotated(
                manager_id=e.manager_id,
                from_region=e.from_region,
                to_region=e.to_region,
                effective_at=e.effective_at,
                plan_id=str(e.plan_id),
            ),
            Manager.__name__,
        )
    if kind == "Manager.DeferralApproved":
        return Published(
            RotationDeferred(
                manager_id=e.manager_id,
                region=e.region,
                until=e.until,
                approved_by=e.meta.actor_id,
                approved_at=e.meta.at,
            ),
            Manager.__name__,
        )
    if kind == "Manager.RotationDeclined":
        return Published(
            RotationDeclined(
                manager_id=e.manager_id,
                plan_id=str(e.plan_id),
                region=e.region,
                offered_region=e.offered_region,
                declined_at=e.meta.at,
            ),
            Manager.__name__,
        )
    if kind == "RotationPlan.Planned":
        return Published(
            RotationPlanned(
                plan_id=str(e.originator_id),
                as_of=e.as_of,
                effective_at=e.effective_at,
                moves=[
                    PlannedMove(
                        manager_id=m.manager_id, from_region=m.from_region, to_region=m.to_region, cost=m.cost
                    )
                    for m in e.moves
                ],
                staying_manager_ids=[s.manager_id for s in e.staying],
                total_cost=e.total_cost,
                planned_by=e.meta.actor_id,
            ),
            RotationPlan.__name__,
        )
    if kind == "RotationPlan.Approved":
        return Published(
            RotationApproved(
                plan_id=str(e.originator_id),
                approved_by=e.meta.actor_id,
                approved_at=e.meta.at,
                effective_at=e.effective_at,
            ),
            RotationPlan.__name__,
        )
    return None
