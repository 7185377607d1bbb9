"""Issue 5's story with the real broker: a fabricated visit confirmed by qc in the visits service
opens a red-line case here; hr confirming it makes that rep's quarter non-promotable.

The visits service's events arrive as its real envelopes on its topic (VisitLogged and
FabricationConfirmed from shared.events.visits, keyed by the rep's visit log)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.reviews.bootstrap import spec
from shared.clock import MovableClock
from tests.integration.reviews.support import (
    consumed,
    fabrication_confirmed,
    given_conversion,
    given_reps,
    publish,
    reviews_settings,
    visit_log,
    visit_logged,
    walk_to_calibrated,
)
from tests.support.kafka_helpers import eventually, eventually_async, read_topic
from tests.support.services import SIMULATION_START, running_service

Q1 = "2026Q1"
QC = ("qc-1", "qc")


async def review_of(client: httpx.AsyncClient, rep_id: str, headers: dict[str, str]) -> dict[str, Any]:
    history = await client.get(f"/reps/{rep_id}/reviews", headers=headers)
    assert history.status_code == 200, history.text
    review: dict[str, Any] = history.json()["reviews"][0]
    return review


async def test_a_fabrication_confirmed_by_qc_opens_a_case_and_hr_confirming_it_blocks_promotion(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = reviews_settings(kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path)
    async with running_service(spec(), settings, MovableClock(SIMULATION_START)) as svc:
        client, hr = svc.client, svc.token("hr-1", "hr")
        await given_reps(svc, "hangzhou", "rep-1", "rep-2", at=SIMULATION_START)
        for rep_id in ("rep-1", "rep-2"):
            await given_conversion(svc, f"lead-{rep_id}", rep_id, "hangzhou", SIMULATION_START)

        # The visits service: two visits each, then qc confirms rep-1's third as fabricated.
        day = SIMULATION_START - timedelta(days=10)
        rep_1_log, rep_2_log = visit_log("rep-1"), visit_log("rep-2")
        fabricated = fabrication_confirmed("v-13", "rep-1", "hangzhou", day, confirmed_at=SIMULATION_START)
        logged = [(rep_1_log, "rep-1", v) for v in ("v-11", "v-12", "v-13")]
        logged += [(rep_2_log, "rep-2", v) for v in ("v-21", "v-22")]
        envelopes = [log.envelope(visit_logged(v, rep_id, day, "hangzhou"), day) for log, rep_id, v in logged]
        envelopes.append(rep_1_log.envelope(fabricated, SIMULATION_START, actor=QC))
        await publish(kafka_bootstrap, f"{topic_prefix}.visits", *envelopes)
        # The relay re-sends after a crash: the same event again is still one case.
        [(partition, offset)] = await publish(kafka_bootstrap, f"{topic_prefix}.visits", envelopes[-1])
        await eventually(consumed(svc, f"{topic_prefix}.visits", partition, offset), what="the resent event")

        async def case_opened() -> bool:
            return len((await client.get("/red-line-cases", headers=hr)).json()) == 1

        await eventually_async(case_opened, what="a red-line case opened from FabricationConfirmed")
        [case] = (await client.get("/red-line-cases?status=open", headers=hr)).json()
        assert (case["rep_id"], case["region"], case["rule_code"]) == (
            "rep-1",
            "hangzhou",
            "fabricated_visit",
        )
        assert case["source"] == "fabrication_confirmed" and case["visit_id"] == "v-13"
        assert {"kind": "visit", "ref": "v-13", "note": ""} in case["evidence"]
        assert {"kind": "flag", "ref": "flag-v-13", "note": ""} in case["evidence"]

        async def results_counted() -> bool:
            rep_2 = await client.get("/reps/rep-2/results?quarter=2026Q1", headers=hr)
            return bool(rep_2.json()["visits"] == 2)

        await eventually_async(results_counted, what="rep-2's visits counted")
        rep_1 = (await client.get("/reps/rep-1/results?quarter=2026Q1", headers=hr)).json()
        assert (rep_1["conversions"], rep_1["visits"]) == (1, 2)  # the fabricated visit does not count

        manager = svc.token("mgr-hz", "manager", region="hangzhou")
        opened = await client.post(
            "/reviews/quarters", json={"region": "hangzhou", "quarter": Q1}, headers=manager
        )
        assert opened.status_code == 201
        review_1 = (await review_of(client, "rep-1", hr))["review_id"]
        review_2 = (await review_of(client, "rep-2", hr))["review_id"]
        for review_id in (review_1, review_2):
            await walk_to_calibrated(svc, review_id)

        # qc may open and see cases, but only a person from hr decides one.
        decision = {"decision": "confirmed", "reason": "the customer and the check-in both say so"}
        qc_decides = await client.post(
            f"/red-line-cases/{case['case_id']}/decision", json=decision, headers=svc.token(*QC)
        )
        assert qc_decides.status_code == 403
        decided = await client.post(f"/red-line-cases/{case['case_id']}/decision", json=decision, headers=hr)
        assert decided.status_code == 200, decided.text
        assert decided.json()["marked_review_ids"] == [review_1]

        outcomes = {}
        for rep_id, review_id in (("rep-1", review_1), ("rep-2", review_2)):
            completed = await client.post(f"/reviews/{review_id}/completion", headers=hr)
            assert completed.status_code == 200, completed.text
            outcomes[rep_id] = completed.json()["outcome"]
        assert outcomes["rep-2"]["category"] == "star" and outcomes["rep-2"]["promotable"] is True
        red = outcomes["rep-1"]
        assert (red["category"], red["band"], red["red_line"]) == ("red_line", "C", True)
        assert red["promotable"] is False and red["bonus_eligible"] is False
        assert red["value_scores"] == outcomes["rep-2"]["value_scores"]  # same marks: the red line decides

        # The rep sees their own record; the region's distribution shows one red line.
        own = await client.get("/reps/rep-1/reviews", headers=svc.token("rep-1", "rep"))
        assert own.json()["red_line_cases"][0]["status"] == "confirmed"
        spread = (await client.get("/regions/hangzhou/distribution?quarter=2026Q1", headers=manager)).json()
        assert spread["by_category"] == {"red_line": 1, "star": 1}
        assert (spread["red_lines"], spread["promotable"]) == (1, 1)

        def kinds(records: Any) -> list[str]:
            return [orjson.loads(r.value)["event_type"] for r in records]

        records = await read_topic(
            kafka_bootstrap,
            f"{topic_prefix}.reviews",
            until=lambda rs: kinds(rs).count("ReviewCompleted") == 2,
        )
        published = [orjson.loads(r.value) for r in records]
        assert kinds(records).count("RedLineCaseOpened") == 1
        [case_decided] = [e for e in published if e["event_type"] == "RedLineCaseDecided"]
        assert case_decided["payload"]["decision"] == "confirmed" and case_decided["actor_id"] == "hr-1"
        [marked] = [e for e in published if e["event_type"] == "ReviewRedLineMarked"]
        assert marked["aggregate_id"] == review_1 and marked["payload"]["case_id"] == case["case_id"]
        completed_1 = next(
            e for e in published if e["event_type"] == "ReviewCompleted" and e["aggregate_id"] == review_1
        )
        assert completed_1["payload"]["outcome"]["promotable"] is False
        assert completed_1["payload"]["visits"] == 2


async def test_a_case_confirmed_after_completion_revises_the_outcome_and_a_dismissed_one_changes_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = reviews_settings(kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path)
    clock = MovableClock(SIMULATION_START)
    async with running_service(spec(), settings, clock) as svc:
        client, hr, qc = svc.client, svc.token("hr-1", "hr"), svc.token(*QC)
        await given_reps(svc, "hangzhou", "rep-1", at=SIMULATION_START)
        await given_conversion(svc, "lead-1", "rep-1", "hangzhou", SIMULATION_START)
        created = await client.post("/reviews", json={"rep_id": "rep-1", "quarter": Q1}, headers=hr)
        review_id = created.json()["id"]
        await walk_to_calibrated(svc, review_id)
        await client.post(f"/reviews/{review_id}/completion", headers=hr)

        def by_hand(rule_code: str) -> dict[str, Any]:
            return {
                "rep_id": "rep-1",
                "rule_code": rule_code,
                "evidence": [
                    {"kind": "document", "ref": "bank-transfer-2026-02-11.pdf", "note": "paid for Acme"}
                ],
                "description": "paid a customer's annual fee from their own account",
            }

        rep_opens = await client.post(
            "/red-line-cases", json=by_hand("advance_payment"), headers=svc.token("rep-2", "rep")
        )
        assert rep_opens.status_code == 403
        no_evidence = await client.post(
            "/red-line-cases", json={**by_hand("advance_payment"), "evidence": []}, headers=qc
        )
        assert no_evidence.status_code == 422 and no_evidence.json()["fields"][0]["field"] == "body.evidence"
        not_a_rule = await client.post("/red-line-cases", json=by_hand("late_to_meetings"), headers=qc)
        assert not_a_rule.status_code == 422 and not_a_rule.json()["field"] == "rule_code"
        first = await client.post("/red-line-cases", json=by_hand("advance_payment"), headers=qc)
        clock.advance(timedelta(hours=1))  # another moment: another case
        second = await client.post("/red-line-cases", json=by_hand("exam_cheating"), headers=qc)
        assert first.status_code == second.status_code == 201

        dismissed = await client.post(
            f"/red-line-cases/{first.json()['id']}/decision",
            json={"decision": "dismissed", "reason": "the customer repaid it themself"},
            headers=hr,
        )
        assert dismissed.status_code == 200 and dismissed.json()["marked_review_ids"] == []
        assert (await review_of(client, "rep-1", hr))["outcome"]["promotable"] is True
        again = await client.post(
            f"/red-line-cases/{first.json()['id']}/decision",
            json={"decision": "confirmed", "reason": "changed my mind"},
            headers=hr,
        )
        assert again.status_code == 409

        confirmed = await client.post(
            f"/red-line-cases/{second.json()['id']}/decision",
            json={"decision": "confirmed", "reason": "the exam log shows two sessions"},
            headers=hr,
        )
        assert confirmed.json()["marked_review_ids"] == [review_id]
        review = await review_of(client, "rep-1", hr)
        assert review["stage"] == "completed" and review["outcome"]["category"] == "red_line"
        assert review["outcome"]["promotable"] is False and review["red_line_case_ids"] == [
            second.json()["id"]
        ]
