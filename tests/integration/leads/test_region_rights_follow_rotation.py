"""Rotation and leads in one process, on one clock and one topic prefix: an approved plan's
ManagerRotated, on its effective date, moves a region's distribution rights from the old manager
to the new one; the leads service learns it only from the rotation topic."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from services.rotation.bootstrap import spec as rotation_spec
from services.rotation.config import RotationSettings
from shared.clock import MovableClock
from tests.integration.rotation.support import DUE_SINCE, NOW, staff
from tests.support.kafka_helpers import eventually_async
from tests.support.services import RunningService, running_service, service_settings

from .support import SMALL, admin, hire, leads_settings, ok, running_leads, stock

# NOW is 16:00 in Hangzhou; the scheduled daily run (23:00) stays out of the way.
POLICY = replace(SMALL, daily_distribution_hour=23)


async def manages(leads: RunningService, region: str, manager_id: str, at: datetime) -> None:
    async def known() -> bool:
        view = ok(await leads.client.get(f"/regions/{region}", headers=admin(leads)))
        return bool(view["manager_id"] == manager_id)

    await eventually_async(known, what=f"leads knows {manager_id} manages {region} at {at}")


async def distribute(leads: RunningService, manager_id: str, region: str) -> int:
    token = leads.token(manager_id, "manager", region=region)  # the claim decides nothing
    response = await leads.client.post("/distributions", json={"region": region}, headers=token)
    return response.status_code


async def test_an_approved_rotation_moves_distribution_rights_on_its_effective_date(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    clock = MovableClock(NOW)
    rotation_settings = service_settings(
        RotationSettings, kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path / "rotation"
    )
    leads_config = leads_settings(kafka_bootstrap, topic_prefix, tmp_path / "leads", POLICY)
    async with (
        running_service(rotation_spec(), rotation_settings, clock) as rotation,
        running_leads(leads_config, clock) as leads,
    ):
        await staff(rotation, {"ann": ("hangzhou", DUE_SINCE), "bob": ("shanghai", DUE_SINCE)})
        for region in ("hangzhou", "shanghai"):
            await hire(leads, f"rep-{region}", region=region)
            await stock(leads, 10, region=region)
        await manages(leads, "hangzhou", "ann", NOW)
        await manages(leads, "shanghai", "bob", NOW)
        assert await distribute(leads, "ann", "hangzhou") == 201
        assert await distribute(leads, "bob", "hangzhou") == 403

        hr = rotation.token("hr-1", "hr")
        plan_id = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
        approved = ok(await rotation.client.post(f"/plans/{plan_id}/approval", headers=hr))
        moves = {m["manager_id"]: (m["from_region"], m["to_region"]) for m in approved["moves"]}
        assert moves == {"ann": ("hangzhou", "shanghai"), "bob": ("shanghai", "hangzhou")}
        effective_at = datetime.fromisoformat(approved["effective_at"])

        # The day before, nothing has moved: the plan alone gives no rights.
        clock.set(effective_at - timedelta(days=1))
        assert await distribute(leads, "bob", "hangzhou") == 403
        assert await distribute(leads, "ann", "hangzhou") == 201

        clock.set(effective_at)
        await manages(leads, "hangzhou", "bob", effective_at)
        await manages(leads, "shanghai", "ann", effective_at)
        assert await distribute(leads, "ann", "hangzhou") == 403
        assert await distribute(leads, "bob", "hangzhou") == 201
        assert await distribute(leads, "ann", "shanghai") == 201
        view = ok(await leads.client.get("/regions/hangzhou", headers=leads.token("bob", "manager")))
        assert view["manager_id"] == "bob"
        assert (
            await leads.client.get("/regions/hangzhou", headers=leads.token("ann", "manager"))
        ).status_code == 403
