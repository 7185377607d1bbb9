"""A simulated week over HTTP with the real broker, the clock moved morning and evening: one rep
never follows up and loses leads to colleagues, one follows up everything, one keeps leads by
swapping at the private pool's cap; the topic holds exactly the expected events."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from shared.clock import MovableClock
from tests.support.services import RunningService

from .support import (
    MONDAY,
    admin,
    events,
    everything_on,
    hire,
    leads_settings,
    local,
    of_type,
    ok,
    running_leads,
    stock,
    tick_with_the_clock,
)

DAYS = 7  # Monday to Sunday; quota 3 a day, private pool cap 2, 36 h to follow up, warned 6 h before
REPS = ("idle", "busy", "keeper")


async def morning(svc: RunningService, clock: MovableClock, day: int) -> None:
    """09:00: the clock's jobs warn, reclaim and deal; then the keeper keeps one of today's leads."""
    clock.set(local(day, 9))
    await tick_with_the_clock(svc)
    region = ok(await svc.client.get("/regions/hangzhou", headers=admin(svc)))
    assert region["last_distribution"]["day"] == (MONDAY + timedelta(days=day)).isoformat()
    keeper = svc.token("keeper", "rep")
    bench = ok(await svc.client.get("/reps/keeper/workbench", headers=keeper))
    newest = max(bench["assigned"], key=lambda card: (card["owner_since"], card["score"]))
    body = {}
    if len(bench["private_pool"]) >= bench["private_pool_cap"]:
        oldest = min(bench["private_pool"], key=lambda card: card["owner_since"])
        body = {"return_lead_id": oldest["lead_id"]}
    ok(await svc.client.post(f"/leads/{newest['lead_id']}/private", json=body, headers=keeper))


async def evening(svc: RunningService, clock: MovableClock, day: int) -> None:
    """18:00: busy and keeper follow up every lead they hold assigned; idle does nothing."""
    clock.set(local(day, 18))
    for rep_id in ("busy", "keeper"):
        token = svc.token(rep_id, "rep")
        bench = ok(await svc.client.get(f"/reps/{rep_id}/workbench", headers=token))
        for card in bench["assigned"]:
            ok(await svc.client.post(f"/leads/{card['lead_id']}/follow-ups", json={}, headers=token), 201)
    await tick_with_the_clock(svc)


async def test_a_week_where_the_idle_rep_loses_leads_to_colleagues_and_the_keeper_swaps(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    clock = MovableClock(local(0, 6))  # Monday, before the daily run's hour
    async with running_leads(leads_settings(kafka_bootstrap, topic_prefix, tmp_path), clock) as svc:
        for rep_id in REPS:
            await hire(svc, rep_id)
        await stock(svc, 70)  # more than the week's 63 assignments: the pool never runs dry
        for day in range(DAYS):
            await morning(svc, clock, day)
            await evening(svc, clock, day)
        records = await everything_on(svc)

        counts = Counter(envelope.event_type for envelope, _ in events(records))
        assert counts == {
            "RepRegistered": 3,
            "LeadRegistered": 70,
            "LeadsDistributed": DAYS,
            "LeadAssigned": 3 * 3 * DAYS,
            # busy holds 3 more each day, keeper 2 more (one kept private): Σ 3d + Σ 2d
            "LeadFollowedUp": 3 * 28 + 2 * 28,
            # idle's leads of day d: warned at 18:00 the next day, reclaimed the morning after
            "FollowUpDue": 3 * (DAYS - 1),
            "LeadReclaimed": 3 * (DAYS - 2),
            "LeadKeptPrivate": DAYS,
            "LeadReleased": DAYS - 2,  # a swap each day from the third on
        }

        for envelope, warned in of_type(records, "FollowUpDue"):
            assert warned.rep_id == "idle" and warned.pool == "assigned"
            assert (envelope.actor_id, envelope.actor_role) == ("scheduler", "system")
        reclaimed = of_type(records, "LeadReclaimed")
        assert {(e.rep_id, e.reason) for _, e in reclaimed} == {("idle", "follow_up_overdue")}
        assert {(env.actor_id, env.actor_role) for env, _ in reclaimed} == {("scheduler", "system")}

        # Lost leads go to colleagues, never straight back to the rep who lost them.
        lost = {e.lead_id: e.reclaimed_at for _, e in reclaimed}
        later = [
            e
            for _, e in of_type(records, "LeadAssigned")
            if e.lead_id in lost and e.assigned_at > lost[e.lead_id]
        ]
        assert later and {e.rep_id for e in later} <= {"busy", "keeper"}
        lead_id = next(iter(lost))
        history = ok(await svc.client.get(f"/leads/{lead_id}", headers=admin(svc)))["owners"]
        assert (history[0]["rep_id"], history[0]["ended_by"], history[0]["reason"]) == (
            "idle",
            "reclaimed",
            "follow_up_overdue",
        )

        # The keeper kept one a day, returning the oldest once at the cap: both in one step.
        kept = sorted((e for _, e in of_type(records, "LeadKeptPrivate")), key=lambda e: e.kept_at)
        released = [e for _, e in of_type(records, "LeadReleased")]
        assert {(e.rep_id, e.reason, e.from_pool) for e in released} == {
            ("keeper", "swapped_for_private", "private")
        }
        swaps = {e.lead_id: e.returned_lead_id for e in kept if e.returned_lead_id}
        assert {e.swapped_for_lead_id: e.lead_id for e in released} == swaps
        keeper = ok(await svc.client.get("/reps/keeper/workbench", headers=svc.token("keeper", "rep")))
        assert len(keeper["private_pool"]) == 2
        assert {c["lead_id"] for c in keeper["private_pool"]} == {e.lead_id for e in kept[-2:]}

        busy = ok(await svc.client.get("/reps/busy/workbench", headers=svc.token("busy", "rep")))
        assert len(busy["assigned"]) == 3 * DAYS and not any(c["warned"] for c in busy["assigned"])
        idle = ok(await svc.client.get("/reps/idle/workbench", headers=svc.token("idle", "rep")))
        assert len(idle["assigned"]) == 6  # Saturday's and Sunday's, not yet overdue
