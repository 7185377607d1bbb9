"""The red-line rule list as data that hr edits over HTTP, the case desk's views by role, and the
scheduler opening a quarter's reviews when the clock reaches the review window."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson

from services.reviews.bootstrap import spec
from shared.clock import MovableClock
from tests.integration.reviews.support import given_reps, reviews_settings
from tests.support.kafka_helpers import eventually, eventually_async, read_topic
from tests.support.services import SIMULATION_START, running_service


async def test_hr_keeps_the_red_line_list_and_every_role_sees_only_its_cases(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = reviews_settings(kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path)
    async with running_service(spec(), settings, MovableClock(SIMULATION_START)) as svc:
        client, hr, rep_1 = svc.client, svc.token("hr-1", "hr"), svc.token("rep-1", "rep")
        await given_reps(svc, "hangzhou", "rep-1", at=SIMULATION_START)
        await given_reps(svc, "ningbo", "rep-9", at=SIMULATION_START)

        seeded = await client.get("/red-line-rules", headers=rep_1)
        assert {r["code"] for r in seeded.json()} >= {"fabricated_visit", "advance_payment", "exam_cheating"}
        rule = {"code": "data_leak", "name": "Leaking customer data", "name_zh": "泄露客户信息"}
        assert (await client.post("/red-line-rules", json=rule, headers=rep_1)).status_code == 403
        bad_code = await client.post("/red-line-rules", json={**rule, "code": "Data Leak"}, headers=hr)
        assert bad_code.status_code == 422 and bad_code.json()["fields"][0]["field"] == "body.code"
        assert (await client.post("/red-line-rules", json=rule, headers=hr)).status_code == 201
        assert (await client.post("/red-line-rules", json=rule, headers=hr)).status_code == 409
        retired = await client.post(
            "/red-line-rules/false_promise/retirement", json={"reason": "cut back to six"}, headers=hr
        )
        assert retired.status_code == 200
        assert "data_leak" in {r["code"] for r in retired.json()}
        assert "false_promise" not in {r["code"] for r in retired.json()}
        unknown = await client.post("/red-line-rules/nope/retirement", json={"reason": "x"}, headers=hr)
        assert unknown.status_code == 404

        qc = svc.token("qc-1", "qc")
        for rep_id in ("rep-1", "rep-9"):
            opened = await client.post(
                "/red-line-cases",
                json={
                    "rep_id": rep_id,
                    "rule_code": "data_leak",
                    "evidence": [{"kind": "url", "ref": "https://audit.example/leak/17"}],
                    "description": "customer list sent to a competitor",
                },
                headers=qc,
            )
            assert opened.status_code == 201, opened.text
        retired_rule = await client.post(
            "/red-line-cases",
            json={
                "rep_id": "rep-1",
                "rule_code": "false_promise",
                "evidence": [{"kind": "event", "ref": "e-1"}],
                "description": "promised a feature",
            },
            headers=qc,
        )
        assert retired_rule.status_code == 422 and "retired" in retired_rule.json()["message"]

        def reps_seen(response: httpx.Response) -> list[str]:
            return sorted(case["rep_id"] for case in response.json())

        assert reps_seen(await client.get("/red-line-cases", headers=qc)) == ["rep-1", "rep-9"]
        assert reps_seen(await client.get("/red-line-cases", headers=rep_1)) == ["rep-1"]
        hz = svc.token("mgr-hz", "manager", region="hangzhou")
        assert reps_seen(await client.get("/red-line-cases", headers=hz)) == ["rep-1"]
        assert (await client.get("/red-line-cases?region=ningbo", headers=hz)).status_code == 403
        assert (await client.get("/red-line-cases?rep_id=rep-9", headers=rep_1)).status_code == 403
        [ningbo_case] = (await client.get("/red-line-cases?rep_id=rep-9", headers=hr)).json()
        assert (await client.get(f"/red-line-cases/{ningbo_case['case_id']}", headers=hz)).status_code == 403
        assert (
            await client.get(f"/red-line-cases/{ningbo_case['case_id']}", headers=rep_1)
        ).status_code == 403
        assert (await client.get(f"/red-line-cases/{ningbo_case['case_id']}", headers=hr)).status_code == 200


async def test_the_scheduler_opens_every_active_reps_review_when_the_review_window_comes(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = reviews_settings(kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path)
    async with running_service(spec(), settings, MovableClock(SIMULATION_START)) as svc:
        client, hr, ops = svc.client, svc.token("hr-1", "hr"), svc.token("ops-1", "ops")
        await given_reps(svc, "hangzhou", "rep-1", "rep-2", at=SIMULATION_START)
        await given_reps(svc, "ningbo", "rep-9", at=SIMULATION_START)

        async def opened(region: str, count: int) -> bool:
            response = await client.get(f"/reviews?region={region}&quarter=2026Q1", headers=hr)
            return len(response.json()) == count

        # 2 March is four weeks before the quarter ends: nothing is due yet.
        await eventually(lambda: svc.context.scheduler.runs["open_due_reviews"] >= 1, what="a first run")
        assert await opened("hangzhou", 0)
        window = datetime(2026, 3, 31, tzinfo=SIMULATION_START.tzinfo) - timedelta(days=13)
        moved = await client.post("/_clock", json={"to": window.isoformat()}, headers=ops)
        assert moved.status_code == 200
        await eventually_async(lambda: opened("hangzhou", 2), what="hangzhou's reviews opened")
        await eventually_async(lambda: opened("ningbo", 1), what="ningbo's review opened")

        # A rep who joins later gets theirs on the next run, and nobody gets a second one.
        await given_reps(svc, "ningbo", "rep-10", at=window)
        await client.post("/_clock", json={"advance_seconds": 3600}, headers=ops)
        await eventually_async(lambda: opened("ningbo", 2), what="the newcomer's review opened")

        records = await read_topic(
            kafka_bootstrap, f"{topic_prefix}.reviews", until=lambda rs: len(rs) >= 4, timeout=15
        )
        envelopes = [orjson.loads(r.value) for r in records]
        assert len(envelopes) == 4
        assert {(e["actor_id"], e["actor_role"]) for e in envelopes} == {("scheduler", "system")}
        assert sorted(e["payload"]["rep_id"] for e in envelopes) == ["rep-1", "rep-10", "rep-2", "rep-9"]
