"""The leads API over HTTP with the real broker, on SQLite and on PostgreSQL: who may do what,
input that is refused and why, and the apps' queries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.clock import MovableClock
from shared.domain import stable_id
from shared.events.catalog import Published, envelope_bytes
from shared.events.rotation import ManagerAppointed
from shared.kafka import ensure_topics, make_producer
from tests.support.kafka_helpers import eventually_async
from tests.support.services import RunningService

from .support import SMALL, admin, company, hire, leads_settings, local, ok, running_leads, stock

START = local(0, 9)  # Monday 09:00 in Hangzhou
# The scheduled daily run stays out of the way (23:00): these tests deal by hand.
POLICY = replace(SMALL, daily_distribution_hour=23)


async def announce_manager(svc: RunningService, manager_id: str, region: str, since: datetime) -> None:
    """What the rotation service says when it appoints a manager: its real envelope on its topic
    (the rotation service's own run is in test_region_rights_follow_rotation)."""
    settings = svc.context.settings
    topic = settings.topic("rotation")
    value = envelope_bytes(
        Published(ManagerAppointed(manager_id=manager_id, region=region, appointed_at=since), "Manager"),
        aggregate_id=stable_id("test-manager", manager_id),
        aggregate_version=1,
        meta={"actor_id": "hr-1", "actor_role": "hr", "at": since},
        recorded_at=since,
    )
    await ensure_topics(settings.kafka_bootstrap_servers, [topic], settings.topic_partitions)
    producer = make_producer(settings.kafka_bootstrap_servers, client_id="test-rotation")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, value=value, key=str(stable_id("test-manager", manager_id)).encode()
        )
    finally:
        await producer.stop()

    async def known() -> bool:
        view = ok(await svc.client.get(f"/regions/{region}", headers=admin(svc)))
        return bool(view["manager_id"] == manager_id)

    await eventually_async(known, what=f"{manager_id} known as {region}'s manager")


class TestLeadsApi:
    @pytest.fixture(params=["sqlite", "postgres"])
    def store(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        if request.param == "sqlite":
            return {"store": "sqlite"}
        return {"store": "postgres", "postgres_dbname": request.getfixturevalue("postgres_dbname")}

    @pytest.fixture
    async def svc(
        self, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, store: dict[str, Any]
    ) -> AsyncIterator[RunningService]:
        settings = leads_settings(kafka_bootstrap, topic_prefix, tmp_path, POLICY, **store)
        async with running_leads(settings, MovableClock(START)) as running:
            yield running

    async def test_leads_join_the_pool_once_and_a_duplicate_names_the_lead_it_already_is(
        self, svc: RunningService
    ) -> None:
        created = ok(await svc.client.post("/leads", json=company(1), headers=admin(svc)), 201)
        again = {**company(1), "company_name": "COMPANY  hangzhou 001."}
        duplicate = await svc.client.post("/leads", json=again, headers=admin(svc))
        assert duplicate.status_code == 409
        assert duplicate.json()["details"]["existing_lead_id"] == created["id"]
        imported = ok(
            await svc.client.post(
                "/leads/imports", json={"leads": [company(1), company(2), company(2)]}, headers=admin(svc)
            ),
            201,
        )
        assert len(imported["registered"]) == 1
        assert [(d["index"], d["existing_lead_id"]) for d in imported["duplicates"]] == [
            (0, created["id"]),
            (2, imported["registered"][0]),
        ]
        pool = ok(await svc.client.get("/pool", headers=svc.token("r1", "rep")))
        assert pool == [
            {
                "region": "hangzhou",
                "counts": {"pool": 2, "assigned": 0, "private": 0, "converted": 0, "closed": 0},
            }
        ]
        lead = ok(await svc.client.get(f"/leads/{created['id']}", headers=svc.token("qc-1", "qc")))
        assert (lead["status"], lead["owners"], lead["lat"]) == ("pool", [], 30.27)

    async def test_bad_input_is_a_422_naming_the_field_and_no_token_is_a_401(
        self, svc: RunningService
    ) -> None:
        for body, field in [
            ({**company(1), "score": 120}, "body.score"),
            ({**company(1), "region": "Hang Zhou"}, "body.region"),
            ({**company(1), "address": {"line": "x", "city": "y", "lat": 91, "lon": 0}}, "body.address.lat"),
        ]:
            refused = await svc.client.post("/leads", json=body, headers=admin(svc))
            assert refused.status_code == 422 and refused.json()["fields"][0]["field"] == field
        punctuation = await svc.client.post(
            "/leads", json={**company(1), "company_name": "..."}, headers=admin(svc)
        )
        assert punctuation.status_code == 422 and punctuation.json()["field"] == "company_name"
        await hire(svc, "r1")
        quota = await svc.client.put("/reps/r1/quota", json={"daily_quota": 9}, headers=admin(svc))
        assert quota.status_code == 422 and quota.json()["field"] == "daily_quota"  # outside the band 1–5
        bad_id = await svc.client.get("/leads/not-a-uuid", headers=admin(svc))
        assert bad_id.status_code == 422 and bad_id.json()["fields"][0]["field"] == "path.lead_id"
        assert (await svc.client.get("/reps/r1/workbench")).status_code == 401
        assert (await svc.client.post("/leads", json=company(1))).status_code == 401

    async def test_a_rep_acts_only_as_themself_on_their_own_leads(self, svc: RunningService) -> None:
        for rep_id in ("r1", "r2"):
            await hire(svc, rep_id)
        (lead_id, other_id) = await stock(svc, 2)
        ok(await svc.client.post(f"/leads/{lead_id}/assignment", json={"rep_id": "r1"}, headers=admin(svc)))
        ok(await svc.client.post(f"/leads/{other_id}/assignment", json={"rep_id": "r2"}, headers=admin(svc)))
        r1, r2 = svc.token("r1", "rep"), svc.token("r2", "rep")
        # Someone else's lead, workbench or record: 403, whatever the body says.
        assert (await svc.client.post(f"/leads/{lead_id}/follow-ups", json={}, headers=r2)).status_code == 403
        assert (await svc.client.post(f"/leads/{lead_id}/private", json={}, headers=r2)).status_code == 403
        assert (await svc.client.post(f"/leads/{lead_id}/conversion", json={}, headers=r2)).status_code == 403
        assert (await svc.client.get(f"/leads/{lead_id}", headers=r2)).status_code == 403
        assert (await svc.client.get("/reps/r1/workbench", headers=r2)).status_code == 403
        assert (await svc.client.get("/reps/r1", headers=r2)).status_code == 403
        extra = await svc.client.post(f"/leads/{lead_id}/follow-ups", json={"rep_id": "r1"}, headers=r2)
        assert extra.status_code == 422  # the rep comes from the token, never from the body
        # A rep does not deal, assign, register or read the pool's best leads.
        assert (
            await svc.client.post("/distributions", json={"region": "hangzhou"}, headers=r1)
        ).status_code == 403
        assert (
            await svc.client.post(f"/leads/{other_id}/assignment", json={"rep_id": "r1"}, headers=r1)
        ).status_code == 403
        assert (await svc.client.post("/leads", json=company(9), headers=r1)).status_code == 403
        assert (await svc.client.get("/pool/hangzhou/leads", headers=r1)).status_code == 403
        assert (await svc.client.get("/regions/hangzhou", headers=r1)).status_code == 403
        # Their own: followed up, converted; they see only their own stretch of the history.
        followed = ok(
            await svc.client.post(f"/leads/{lead_id}/follow-ups", json={"channel": "visit"}, headers=r1), 201
        )
        assert followed["follow_ups"] == 1
        bench = ok(await svc.client.get("/reps/r1/workbench", headers=r1))
        assert [c["lead_id"] for c in bench["assigned"]] == [lead_id]
        assert (bench["assigned_today"], bench["quota_left_today"]) == (1, 2)
        converted = ok(
            await svc.client.post(f"/leads/{lead_id}/conversion", json={"note": "won"}, headers=r1)
        )
        assert converted["status"] == "converted" and [o["rep_id"] for o in converted["owners"]] == ["r1"]

    async def test_a_manager_acts_in_the_region_rotation_gave_them_not_the_one_their_token_names(
        self, svc: RunningService
    ) -> None:
        await hire(svc, "r1")
        await hire(svc, "n1", region="ningbo")
        (lead_id,) = await stock(svc, 1)
        (ningbo_lead,) = await stock(svc, 1, region="ningbo")
        await announce_manager(svc, "m1", "hangzhou", START - timedelta(days=30))
        m1 = svc.token("m1", "manager", region="ningbo")  # the claim is not what decides
        assigned = ok(
            await svc.client.post(f"/leads/{lead_id}/assignment", json={"rep_id": "r1"}, headers=m1)
        )
        assert assigned["owner_id"] == "r1"
        refused = await svc.client.post(f"/leads/{ningbo_lead}/assignment", json={"rep_id": "n1"}, headers=m1)
        assert refused.status_code == 403
        assert (
            await svc.client.post("/distributions", json={"region": "ningbo"}, headers=m1)
        ).status_code == 403
        assert (
            await svc.client.post("/distributions", json={}, headers=m1)
        ).status_code == 403  # every region
        assert (await svc.client.get("/reps/n1/workbench", headers=m1)).status_code == 403
        ok(await svc.client.put("/reps/r1/quota", json={"daily_quota": 5}, headers=m1))
        assert (
            await svc.client.put("/reps/n1/quota", json={"daily_quota": 5}, headers=m1)
        ).status_code == 403
        view = ok(await svc.client.get("/regions/hangzhou", headers=m1))
        assert view["manager_id"] == "m1" and [r["rep_id"] for r in view["reps"]] == ["r1"]
        assert ok(await svc.client.get("/reps/r1/workbench", headers=m1))["quota_left_today"] == 4
        lead = ok(await svc.client.get(f"/leads/{lead_id}", headers=m1))
        assert [o["rep_id"] for o in lead["owners"]] == ["r1"]

    async def test_distribution_deals_best_first_and_fairly_and_reports_the_spread(
        self, svc: RunningService
    ) -> None:
        await hire(svc, "veteran", joined_on="2020-01-06")
        await hire(svc, "newcomer")
        await stock(svc, 5)
        ran = ok(
            await svc.client.post("/distributions", json={"region": "hangzhou"}, headers=admin(svc)), 201
        )
        assert (ran["reps"], ran["leads_available"], ran["quota_asked"], ran["assigned"]) == (2, 5, 6, 5)
        assert ran["per_rep"] == {"newcomer": 3, "veteran": 2} and ran["spread"]["fair"]
        newcomer = ok(await svc.client.get("/reps/newcomer/workbench", headers=svc.token("newcomer", "rep")))
        assert (
            max(c["score"] for c in newcomer["assigned"]) == 90
        )  # the best lead went first, to the newcomer
        view = ok(await svc.client.get("/regions/hangzhou", headers=svc.token("ops-1", "ops")))
        assert view["last_distribution"]["assigned"] == 5 and view["counts"]["assigned"] == 5

    async def test_the_private_pool_swaps_at_its_cap_and_a_release_returns_a_lead_with_its_reason(
        self, svc: RunningService
    ) -> None:
        await hire(svc, "r1", private_pool_cap=1)
        await stock(svc, 3)
        ok(await svc.client.post("/distributions", json={"region": "hangzhou"}, headers=admin(svc)), 201)
        r1 = svc.token("r1", "rep")
        first, second, third = (
            c["lead_id"] for c in ok(await svc.client.get("/reps/r1/workbench", headers=r1))["assigned"]
        )
        ok(await svc.client.post(f"/leads/{first}/private", json={}, headers=r1))
        full = await svc.client.post(f"/leads/{second}/private", json={}, headers=r1)
        assert full.status_code == 422 and full.json()["field"] == "return_lead_id"
        swapped = ok(
            await svc.client.post(f"/leads/{second}/private", json={"return_lead_id": first}, headers=r1)
        )
        assert swapped["status"] == "private"
        returned = ok(await svc.client.get(f"/leads/{first}", headers=admin(svc)))
        assert (returned["status"], returned["owners"][-1]["reason"]) == ("pool", "swapped_for_private")
        released = ok(
            await svc.client.post(f"/leads/{third}/release", json={"reason": "wrong number"}, headers=r1)
        )
        assert released["status"] == "pool" and released["owners"][-1]["reason"] == "wrong number"
        no_reason = await svc.client.post(f"/leads/{second}/release", json={"reason": ""}, headers=r1)
        assert no_reason.status_code == 422 and no_reason.json()["fields"][0]["field"] == "body.reason"

    async def test_hr_keeps_the_roster_and_a_deactivated_rep_gives_back_what_they_held(
        self, svc: RunningService
    ) -> None:
        hr = svc.token("hr-1", "hr")
        body = {"rep_id": "r1", "name": "Li", "region": "hangzhou", "joined_on": "2025-01-06"}
        created = ok(await svc.client.post("/reps", json=body, headers=hr), 201)
        assert created["rep_id"] == "r1"
        assert (await svc.client.post("/reps", json=body, headers=hr)).status_code == 409
        await stock(svc, 2)
        ok(await svc.client.post("/distributions", json={"region": "hangzhou"}, headers=admin(svc)), 201)
        assert (
            ok(await svc.client.put("/reps/r1/private-pool-cap", json={"private_pool_cap": 4}, headers=hr))[
                "private_pool_cap"
            ]
            == 4
        )
        gone = ok(await svc.client.post("/reps/r1/deactivation", json={"reason": "left"}, headers=hr))
        assert gone["rep"]["active"] is False and len(gone["reclaimed_lead_ids"]) == 2
        assert ok(await svc.client.get("/pool?region=hangzhou", headers=hr))[0]["counts"]["pool"] == 2
        ran = ok(
            await svc.client.post("/distributions", json={"region": "hangzhou"}, headers=admin(svc)), 201
        )
        assert ran["assigned"] == 0  # inactive reps get nothing
        back = ok(await svc.client.post("/reps/r1/reactivation", headers=hr))
        assert back["active"] is True
        assert (await svc.client.post("/distributions", json={}, headers=hr)).status_code == 403
