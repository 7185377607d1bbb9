"""The visits service over HTTP with the real broker, on SQLite and on PostgreSQL: logging and
correcting visits, who sees what, the QC desk, weekly summaries, ownership and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.clock import MovableClock
from tests.integration.visits.support import (
    PHOTO,
    LeadsTopicWriter,
    consumed,
    lead_id,
    running_visits,
    visits_settings,
)
from tests.support.kafka_helpers import eventually_async, read_topic
from tests.support.services import SIMULATION_START, RunningService

NOW = SIMULATION_START + timedelta(hours=4)  # Monday 12:00 UTC
HANGZHOU = (30.2741, 120.1551)
NINGBO = (29.8683, 121.5440)
L1, L2, L3 = lead_id("api-1"), lead_id("api-2"), lead_id("api-3")


@dataclass
class World:
    svc: RunningService
    clock: MovableClock
    topic_prefix: str
    kafka: str
    assigned: dict[str, str]  # lead → the event id of its assignment
    registered: dict[str, str]  # lead → the event id of its registration (the customer's address)

    def as_(self, actor: str, role: str, region: str | None = None) -> dict[str, str]:
        return self.svc.token(actor, role, region)

    async def log(self, rep: str, lead: str, *, hours_ago: float = 0.5, **body: Any) -> str:
        response = await self.svc.client.post(
            "/visits",
            json=visit_body(lead, NOW - timedelta(hours=hours_ago), **body),
            headers=self.as_(rep, "rep"),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def visit_body(lead: str, when: datetime, **extra: Any) -> dict[str, Any]:
    lat, lon = NINGBO if lead == L3 else HANGZHOU
    body: dict[str, Any] = {
        "lead_id": lead,
        "visited_at": when.isoformat(),
        "position": {"lat": lat, "lon": lon},
        "checkin": {"position": {"lat": lat, "lon": lon, "accuracy_m": 10}, "photo_hash": PHOTO},
        "notes": "met the buyer",
    }
    body.update(extra)
    return body


@pytest.fixture(params=["sqlite", "postgres"])
async def world(
    request: pytest.FixtureRequest, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> AsyncIterator[World]:
    store: dict[str, Any] = {"store": request.param}
    if request.param == "postgres":
        store["postgres_dbname"] = request.getfixturevalue("postgres_dbname")
    settings = visits_settings(kafka_bootstrap, topic_prefix, tmp_path, **store)
    clock = MovableClock(NOW)
    async with (
        running_visits(settings, clock) as svc,
        LeadsTopicWriter(kafka_bootstrap, topic_prefix) as leads,
    ):
        before = NOW - timedelta(days=2)
        assigned: dict[str, str] = {}
        registered: dict[str, str] = {}
        for lead, rep, region, where in (
            (L1, "rep-a", "hangzhou", HANGZHOU),
            (L2, "rep-b", "hangzhou", HANGZHOU),
            (L3, "rep-c", "ningbo", NINGBO),
        ):
            registered[lead] = await leads.registered(lead, region, where, before)
            assigned[lead] = await leads.assigned(lead, rep, region, before + timedelta(hours=1))
        await consumed(svc.application, f"{topic_prefix}.visits", leads)
        yield World(svc, clock, topic_prefix, kafka_bootstrap, assigned, registered)


class TestVisitsApi:
    async def test_a_rep_logs_a_visit_as_themself_and_it_goes_on_the_visits_topic(self, world: World) -> None:
        visit_id = await world.log("rep-a", L1, client_ref="phone-1")
        again = await world.svc.client.post(
            "/visits",
            json=visit_body(L1, NOW - timedelta(hours=0.5), client_ref="phone-1"),
            headers=world.as_("rep-a", "rep"),
        )
        assert again.status_code == 201 and again.json()["id"] == visit_id  # a retry logs nothing new
        mine = (await world.svc.client.get(f"/visits/{visit_id}", headers=world.as_("rep-a", "rep"))).json()
        assert mine["rep_id"] == "rep-a" and mine["region"] == "hangzhou"
        assert mine["recorded_at"].startswith(NOW.isoformat()[:19])  # the server's clock, not the phone's

        def logged(records: list[Any]) -> list[dict[str, Any]]:
            return [e for e in (orjson.loads(r.value) for r in records) if e["event_type"] == "VisitLogged"]

        records = await read_topic(
            world.kafka, f"{world.topic_prefix}.visits", until=lambda rs: bool(logged(rs))
        )
        (envelope,) = logged(records)
        assert envelope["payload"]["visit_id"] == visit_id and envelope["payload"]["rep_id"] == "rep-a"
        assert (envelope["actor_id"], envelope["actor_role"]) == ("rep-a", "rep")

    async def test_a_retried_visit_gets_the_first_answer_with_a_client_ref_or_an_idempotency_key(
        self, world: World
    ) -> None:
        rep = world.as_("rep-a", "rep")
        by_ref = visit_body(L1, NOW - timedelta(hours=1), client_ref="phone-2")
        first = await world.svc.client.post("/visits", json=by_ref, headers=rep)
        world.clock.advance(timedelta(minutes=5))
        again = await world.svc.client.post("/visits", json=by_ref, headers=rep)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()  # the time it was first recorded, not the retry's

        keyed = {**rep, "Idempotency-Key": "visit-3"}
        body = visit_body(L1, NOW - timedelta(minutes=10))
        answer = await world.svc.client.post("/visits", json=body, headers=keyed)
        stored = world.svc.application.recorder.max_notification_id()
        world.clock.advance(timedelta(minutes=5))
        replayed = await world.svc.client.post("/visits", json=body, headers=keyed)
        assert answer.status_code == replayed.status_code == 201 and replayed.json() == answer.json()
        assert replayed.headers["Idempotent-Replayed"] == "true" and "x-request-id" in replayed.headers
        assert world.svc.application.recorder.max_notification_id() == stored
        other = visit_body(L1, NOW - timedelta(minutes=8))
        reused = await world.svc.client.post("/visits", json=other, headers=keyed)
        assert reused.status_code == 422 and reused.json()["field"] == "Idempotency-Key"

    async def test_bad_input_is_a_4xx_that_names_the_field(self, world: World) -> None:
        rep = world.as_("rep-a", "rep")
        cases: list[tuple[dict[str, Any], int, str]] = [
            (visit_body(L1, NOW, rep_id="rep-b"), 422, "body.rep_id"),  # never from the body
            (visit_body(L1, NOW + timedelta(hours=1)), 422, "visited_at"),
            (visit_body(L1, NOW, position={"lat": 91, "lon": 0}), 422, "body.position.lat"),
            (visit_body(L1, NOW, checkin={"photo_hash": "x"}), 422, "body.checkin.photo_hash"),
            ({**visit_body(L1, NOW), "visited_at": "2026-03-02T09:00:00"}, 422, "body.visited_at"),
            (visit_body(lead_id("nobody-knows"), NOW), 404, "lead_id"),
            (visit_body(L1, NOW, left_at=(NOW - timedelta(hours=2)).isoformat()), 422, "left_at"),
        ]
        for body, status, field in cases:
            response = await world.svc.client.post("/visits", json=body, headers=rep)
            assert response.status_code == status, (field, response.text)
            answer = response.json()
            named = answer.get("field") or answer["fields"][0]["field"]
            assert named == field, answer
        nothing = await world.svc.client.get("/visits", headers=world.as_("qc-1", "qc"))
        assert nothing.json() == []

    async def test_every_route_needs_a_token_and_the_right_role(self, world: World) -> None:
        client = world.svc.client
        assert (await client.post("/visits", json=visit_body(L1, NOW))).status_code == 401
        assert (await client.get("/flags")).status_code == 401
        assert (await client.get(f"/audit/leads/{L1}")).status_code == 401
        manager = world.as_("m-1", "manager", "hangzhou")
        assert (await client.post("/visits", json=visit_body(L1, NOW), headers=manager)).status_code == 403
        assert (await client.get("/visits", headers=world.as_("hr-1", "hr"))).status_code == 403
        assert (await client.get("/flags", headers=world.as_("rep-a", "rep"))).status_code == 403
        no_region = await client.get("/visits", headers=world.as_("m-2", "manager"))
        assert no_region.status_code == 403 and "region" in no_region.json()["message"]
        rep_asks = await client.get(
            f"/leads/{L2}/ownership",
            params={"rep_id": "rep-b", "at": NOW.isoformat()},
            headers=world.as_("rep-a", "rep"),
        )
        assert rep_asks.status_code == 403
        assert (await client.get("/audit/reps/rep-b", headers=world.as_("rep-a", "rep"))).status_code == 403
        summarise = await client.post(
            "/minor-breaches/summaries", json={"week_start": "2026-02-23"}, headers=manager
        )
        assert summarise.status_code == 403

    async def test_reps_see_only_their_own_visits_and_managers_only_their_region(self, world: World) -> None:
        a = await world.log("rep-a", L1)
        await world.log("rep-b", L2)
        c = await world.log("rep-c", L3, hours_ago=1)
        client = world.svc.client
        mine = (await client.get("/visits", headers=world.as_("rep-a", "rep"))).json()
        assert [v["visit_id"] for v in mine] == [a]
        assert (await client.get(f"/visits/{c}", headers=world.as_("rep-a", "rep"))).status_code == 403
        widened = await client.get("/visits", params={"rep_id": "rep-b"}, headers=world.as_("rep-a", "rep"))
        assert widened.status_code == 403 and widened.json()["field"] == "rep_id"
        hangzhou = world.as_("m-hz", "manager", "hangzhou")
        regional = (await client.get("/visits", headers=hangzhou)).json()
        assert {v["rep_id"] for v in regional} == {"rep-a", "rep-b"}
        assert (await client.get(f"/visits/{c}", headers=hangzhou)).status_code == 403
        assert (await client.get("/visits", params={"region": "ningbo"}, headers=hangzhou)).status_code == 403
        everyone = (await client.get("/visits", headers=world.as_("ops-1", "ops"))).json()
        assert len(everyone) == 3 and all(v["flag_ids"] is not None for v in everyone)

    async def test_qc_decides_flags_and_nobody_reads_or_decides_flags_about_themselves(
        self, world: World
    ) -> None:
        # rep-a visits rep-b's lead: not the owner, with the assignment as proof.
        visit_id = await world.log("rep-a", L2)
        client = world.svc.client
        qc = world.as_("qc-1", "qc")
        (flag,) = (await client.get("/flags", params={"rep_id": "rep-a"}, headers=qc)).json()
        assert flag["rule"] == "not_the_owner" and flag["visit_id"] == visit_id
        assert world.assigned[L2] in flag["evidence"]
        assert (await client.get("/flags", params={"rule": "no_such_rule"}, headers=qc)).status_code == 422
        manager = world.as_("m-hz", "manager", "hangzhou")
        assert [f["flag_id"] for f in (await client.get("/flags", headers=manager)).json()] == [
            flag["flag_id"]
        ]
        assert (await client.get("/flags", headers=world.as_("m-nb", "manager", "ningbo"))).json() == []
        # Someone in qc who is the rep concerned sees nothing and decides nothing about themselves.
        themself = world.as_("rep-a", "qc")
        assert (await client.get("/flags", headers=themself)).json() == []
        assert (await client.get(f"/flags/{flag['flag_id']}", headers=themself)).status_code == 403
        own = await client.post(
            f"/flags/{flag['flag_id']}/dismissal", json={"reason": "fine"}, headers=themself
        )
        assert own.status_code == 403
        by_manager = await client.post(
            f"/flags/{flag['flag_id']}/confirmation",
            json={"reason": "x", "fabrication": False},
            headers=manager,
        )
        assert by_manager.status_code == 403
        no_reason = await client.post(f"/flags/{flag['flag_id']}/dismissal", json={"reason": " "}, headers=qc)
        assert no_reason.status_code == 422 and no_reason.json()["fields"][0]["field"] == "body.reason"
        dismissed = await client.post(
            f"/flags/{flag['flag_id']}/dismissal", json={"reason": "covering for rep-b, agreed"}, headers=qc
        )
        assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
        twice = await client.post(f"/flags/{flag['flag_id']}/dismissal", json={"reason": "again"}, headers=qc)
        assert twice.status_code == 409
        seen_by_rep = (await client.get(f"/visits/{visit_id}", headers=world.as_("rep-a", "rep"))).json()
        assert seen_by_rep["flag_ids"] is None

    async def test_a_correction_is_a_new_event_and_the_visit_is_judged_again(self, world: World) -> None:
        visit_id = await world.log("rep-a", L1)
        client = world.svc.client
        far = {"lat": HANGZHOU[0] + 0.2, "lon": HANGZHOU[1]}  # ~22 km away
        others = await client.post(
            f"/visits/{visit_id}/corrections",
            json={"reason": "typo", "notes": "x"},
            headers=world.as_("rep-b", "rep"),
        )
        assert others.status_code == 403
        empty = await client.post(
            f"/visits/{visit_id}/corrections", json={"notes": "x"}, headers=world.as_("rep-a", "rep")
        )
        assert empty.status_code == 422 and empty.json()["fields"][0]["field"] == "body.reason"
        world.clock.advance(timedelta(minutes=10))
        corrected = await client.post(
            f"/visits/{visit_id}/corrections",
            json={
                "reason": "wrong time",
                "visited_at": (NOW - timedelta(hours=3)).isoformat(),
                "position": far,
            },
            headers=world.as_("rep-a", "rep"),
        )
        assert corrected.status_code == 201, corrected.text
        view = corrected.json()
        assert view["flag_ids"] is None and view["corrections"][0]["changed"] == ["visited_at", "position"]
        trail = (await client.get(f"/audit/leads/{L1}", headers=world.as_("ops-1", "ops"))).json()
        kinds = [e["event_type"] for e in trail]
        assert (
            kinds[:2] == ["LeadRegistered", "LeadAssigned"]
            and "VisitLogged" in kinds
            and "VisitCorrected" in kinds
        )

    async def test_late_entries_are_summarised_weekly_for_the_regions_manager(self, world: World) -> None:
        late = await world.log("rep-a", L1, hours_ago=30)  # a minor breach, not a flag
        await world.log("rep-c", L3, hours_ago=30)
        client = world.svc.client
        manager = world.as_("m-hz", "manager", "hangzhou")
        assert (await client.get("/flags", headers=world.as_("qc-1", "qc"))).json() == []
        (breach,) = (await client.get("/minor-breaches", headers=manager)).json()
        assert (breach["visit_id"], breach["rule"], breach["summarised"]) == (late, "late_entry", False)
        world.clock.set(NOW + timedelta(days=7))  # the next Monday: the weekly job runs
        summaries: list[dict[str, Any]] = []

        async def summarised() -> bool:
            summaries[:] = (await client.get("/minor-breaches/summaries", headers=manager)).json()
            return bool(summaries)

        await eventually_async(summarised, what="the weekly summary")
        (summary,) = summaries
        assert summary["rep_id"] == "rep-a" and summary["regions"] == ["hangzhou"]
        assert [b["visit_id"] for b in summary["breaches"]] == [late]
        ningbo = (
            await client.get("/minor-breaches/summaries", headers=world.as_("m-nb", "manager", "ningbo"))
        ).json()
        assert [s["rep_id"] for s in ningbo] == ["rep-c"]
        rerun = await client.post(
            "/minor-breaches/summaries",
            json={"week_start": summary["week_start"]},
            headers=world.as_("ops-1", "ops"),
        )
        assert rerun.status_code == 200 and rerun.json()["rep_ids"] == []  # once per week
        not_monday = await client.post(
            "/minor-breaches/summaries", json={"week_start": "2026-03-03"}, headers=world.as_("ops-1", "ops")
        )
        assert not_monday.status_code == 422 and not_monday.json()["fields"][0]["field"] == "body.week_start"

    async def test_investigators_ask_who_owned_a_lead_when(self, world: World) -> None:
        client = world.svc.client
        qc = world.as_("qc-1", "qc")
        asked = await client.get(
            f"/leads/{L2}/ownership", params={"rep_id": "rep-b", "at": NOW.isoformat()}, headers=qc
        )
        assert asked.status_code == 200
        assert asked.json()["owned"] is True and asked.json()["evidence"] == [world.assigned[L2]]
        before = await client.get(
            f"/leads/{L2}/ownership",
            params={"rep_id": "rep-b", "at": (NOW - timedelta(days=3)).isoformat()},
            headers=qc,
        )
        assert before.json()["owned"] is False
        (period,) = (await client.get(f"/leads/{L2}/owners", headers=qc)).json()
        assert (period["rep_id"], period["began_by"], period["ended_at"]) == (
            "rep-b",
            world.assigned[L2],
            None,
        )
        elsewhere = await client.get(f"/leads/{L3}/owners", headers=world.as_("m-hz", "manager", "hangzhou"))
        assert elsewhere.status_code == 403
        unknown = await client.get(f"/leads/{lead_id('nobody')}/owners", headers=qc)
        assert unknown.status_code == 404 and unknown.json()["field"] == "lead_id"

    async def test_a_check_in_far_from_the_customers_registered_address_is_flagged_with_it(
        self, world: World
    ) -> None:
        far = {"lat": HANGZHOU[0] + 0.01, "lon": HANGZHOU[1], "accuracy_m": 20}  # ~1.1 km off
        visit_id = await world.log("rep-a", L1, checkin={"position": far, "photo_hash": PHOTO})
        (flag,) = (await world.svc.client.get("/flags", headers=world.as_("qc-1", "qc"))).json()
        assert (flag["visit_id"], flag["rule"], flag["severity"]) == (
            visit_id,
            "far_from_customer",
            "moderate",
        )
        assert flag["evidence"] == [visit_id, world.registered[L1]]
        assert "m from the customer's address" in flag["reason"]
