"""Visits and leads in one process, on one clock and one topic prefix: a visit the owner logs in
the visits service reaches the leads service as VisitLogged and counts as the lead's follow-up;
a colleague's visit to it does not."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from services.visits.bootstrap import spec as visits_spec
from services.visits.config import VisitsSettings
from shared.clock import MovableClock
from tests.support.kafka_helpers import eventually_async
from tests.support.services import RunningService, running_service, service_settings

from .support import (
    SMALL,
    admin,
    everything_on,
    hire,
    leads_settings,
    local,
    of_type,
    ok,
    running_leads,
    stock,
)

POLICY = replace(SMALL, daily_distribution_hour=23)
START = local(0, 9)
PHOTO = "sha256:" + "ab" * 32


def visit(lead_id: str, minutes_ago: int, clock: MovableClock) -> dict[str, Any]:
    at_customer = {"lat": 30.27, "lon": 120.15, "accuracy_m": 10}  # the address stock() gives
    return {
        "lead_id": lead_id,
        "visited_at": (clock.now() - timedelta(minutes=minutes_ago)).isoformat(),
        "position": at_customer,
        "checkin": {"position": at_customer, "photo_hash": PHOTO},
    }


async def known_to_visits(visits: RunningService, lead_id: str, rep_id: str) -> None:
    async def owned() -> bool:
        response = await visits.client.get(f"/leads/{lead_id}/owners", headers=visits.token("qc-1", "qc"))
        return response.status_code == 200 and any(p["rep_id"] == rep_id for p in response.json())

    await eventually_async(owned, what=f"visits knows {rep_id} owns {lead_id}")


async def test_a_visit_logged_by_the_owner_is_the_leads_follow_up(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    clock = MovableClock(START)
    visits_settings = service_settings(
        VisitsSettings, kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path / "visits"
    )
    async with (
        running_leads(
            leads_settings(kafka_bootstrap, topic_prefix, tmp_path / "leads", POLICY), clock
        ) as leads,
        running_service(visits_spec(), visits_settings, clock) as visits,
    ):
        await hire(leads, "r1")
        await hire(leads, "r2")
        lead_id, other_id = await stock(leads, 2)
        ok(
            await leads.client.post(
                f"/leads/{lead_id}/assignment", json={"rep_id": "r1"}, headers=admin(leads)
            )
        )
        ok(
            await leads.client.post(
                f"/leads/{other_id}/assignment", json={"rep_id": "r2"}, headers=admin(leads)
            )
        )
        assigned = ok(await leads.client.get(f"/leads/{lead_id}", headers=admin(leads)))
        await known_to_visits(visits, lead_id, "r1")

        clock.set(START + timedelta(hours=3))
        logged = ok(
            await visits.client.post(
                "/visits", json=visit(lead_id, 60, clock), headers=visits.token("r1", "rep")
            ),
            201,
        )
        # A colleague's visit to r1's lead is for the visits service to judge; it is no follow-up.
        ok(
            await visits.client.post(
                "/visits", json=visit(lead_id, 30, clock), headers=visits.token("r2", "rep")
            ),
            201,
        )

        async def followed_up() -> bool:
            lead = ok(await leads.client.get(f"/leads/{lead_id}", headers=leads.token("r1", "rep")))
            return bool(lead["follow_ups"] == 1)

        await eventually_async(followed_up, what="the visit recorded as a follow-up")
        lead = ok(await leads.client.get(f"/leads/{lead_id}", headers=leads.token("r1", "rep")))
        visited_at = START + timedelta(hours=2)
        assert datetime.fromisoformat(lead["deadline"]) == visited_at + POLICY.follow_up_window
        assert lead["deadline"] != assigned["deadline"]

        records = await everything_on(leads)
        ((envelope, followed),) = of_type(records, "LeadFollowedUp")
        assert (followed.rep_id, followed.channel, followed.visit_id) == ("r1", "visit", logged["id"])
        assert followed.followed_up_at == visited_at
        assert envelope.actor_id == "r1"  # the visit's author, as the visits service said
