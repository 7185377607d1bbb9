"""What the rotation service tells the others, read back from the real topic: an approved plan's
ManagerRotated comes on its effective date (the clock's), never before, and every public event
of the service reaches the topic in its versioned envelope."""

from __future__ import annotations

from datetime import timedelta

from shared.clock import MovableClock
from shared.events.rotation import ManagerRotated
from tests.integration.rotation.support import DUE_SINCE, NOW, of_type, ok, staff, tick_with_the_clock
from tests.support.kafka_helpers import eventually_async, read_topic
from tests.support.services import RunningService

THREE_DUE = {
    "ann": ("hangzhou", DUE_SINCE),
    "bob": ("shanghai", DUE_SINCE),
    "cat": ("nanjing", DUE_SINCE),
}


def topic(svc: RunningService) -> str:
    return svc.context.settings.topic("rotation")


async def test_an_approved_plan_emits_manager_rotated_on_its_effective_date_and_not_before(
    rotation: RunningService, clock: MovableClock
) -> None:
    await staff(rotation, THREE_DUE)
    hr = rotation.token("hr-1", "hr")
    effective_at = NOW + timedelta(days=30)
    plan_id = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
    approved = ok(await rotation.client.post(f"/plans/{plan_id}/approval", headers=hr))
    planned = {m["manager_id"]: (m["from_region"], m["to_region"]) for m in approved["moves"]}
    assert len(planned) == 3

    runs = rotation.context.scheduler.runs["carry_out_due_moves"]
    clock.set(effective_at - timedelta(hours=1))
    await tick_with_the_clock(rotation)
    assert rotation.context.scheduler.runs["carry_out_due_moves"] > runs  # it looked, an hour early
    assert ok(await rotation.client.get(f"/plans/{plan_id}", headers=hr))["status"] == "approved"
    records = await read_topic(
        rotation.context.settings.kafka_bootstrap_servers,
        topic(rotation),
        until=lambda rs: bool(of_type(rs, "RotationApproved")),
    )
    assert of_type(records, "ManagerRotated") == []

    clock.set(effective_at)

    async def carried_out() -> bool:
        plan = ok(await rotation.client.get(f"/plans/{plan_id}", headers=hr))
        return bool(plan["status"] == "carried_out")

    await eventually_async(carried_out, what="the plan carried out")
    records = await read_topic(
        rotation.context.settings.kafka_bootstrap_servers,
        topic(rotation),
        until=lambda rs: len(of_type(rs, "ManagerRotated")) == 3,
    )
    rotated = of_type(records, "ManagerRotated")
    assert {e.manager_id: (e.from_region, e.to_region) for _, e in rotated} == planned
    for envelope, event in rotated:
        assert isinstance(event, ManagerRotated)
        assert event.effective_at == effective_at and event.plan_id == plan_id
        assert (envelope.actor_id, envelope.actor_role) == ("scheduler", "system")
        assert envelope.occurred_at == effective_at
        assert records[0].key is not None  # keyed by the manager, so one manager's moves stay in order
    keys = {r.key.decode() for r in records if r.key is not None}
    assert {envelope.aggregate_id for envelope, _ in rotated} <= keys
    regions = ok(await rotation.client.get("/regions", headers=hr))
    assert {r["code"]: r["manager_id"] for r in regions} == {to: m for m, (_, to) in planned.items()}
    history = ok(await rotation.client.get("/managers/ann/history", headers=rotation.token("ann", "manager")))
    assert history[-1]["kind"] == "rotated" and history[-1]["region"] == planned["ann"][1]


async def test_every_public_rotation_event_reaches_the_topic_in_its_envelope(
    rotation: RunningService, clock: MovableClock
) -> None:
    await staff(rotation, {**THREE_DUE, "dan": ("wuhan", DUE_SINCE)})
    hr = rotation.token("hr-1", "hr")
    plan_id = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
    decline = {"plan_id": plan_id, "reason": "family"}
    ok(
        await rotation.client.post(
            "/managers/dan/declines", json=decline, headers=rotation.token("dan", "manager")
        )
    )
    deferral = {"reason": "surgery", "until": (NOW + timedelta(days=90)).isoformat()}
    ok(
        await rotation.client.post(
            "/managers/ann/deferral", json=deferral, headers=rotation.token("ann", "manager")
        )
    )
    ok(await rotation.client.post("/managers/ann/deferral/approval", headers=hr))
    plan_id = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
    ok(await rotation.client.post(f"/plans/{plan_id}/approval", headers=hr))
    wanted = {
        "RegionOpened": 4,
        "ManagerAppointed": 4,
        "RotationPlanned": 2,
        "RotationDeclined": 1,
        "RotationDeferred": 1,
        "RotationApproved": 1,
    }
    records = await read_topic(
        rotation.context.settings.kafka_bootstrap_servers,
        topic(rotation),
        until=lambda rs: all(len(of_type(rs, t)) >= n for t, n in wanted.items()),
    )
    counts = {t: len(of_type(records, t)) for t in wanted}
    assert counts == wanted
    ((declined_envelope, declined),) = of_type(records, "RotationDeclined")
    assert (declined.manager_id, declined.region) == ("dan", "wuhan")
    assert (declined_envelope.actor_id, declined_envelope.actor_role) == ("dan", "manager")
    assert "reason" not in declined_envelope.payload  # a private matter stays in the rotation service
    ((_, deferred),) = of_type(records, "RotationDeferred")
    assert (deferred.manager_id, deferred.approved_by) == ("ann", "hr-1")
    assert "reason" not in of_type(records, "RotationDeferred")[0][0].payload
