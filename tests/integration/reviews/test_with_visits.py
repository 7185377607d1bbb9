"""Issue 5 across services: the visits and reviews services run in-process on one clock and one
set of topics. A rep logs a visit to a lead they did not own, qc confirms the flag as a fabrication
in visits, a red-line case opens in reviews, and hr confirming it makes the quarter non-promotable.

The leads service is not wired yet: its real envelopes (RepRegistered, LeadRegistered,
LeadAssigned) are produced onto the leads topic, which both services consume."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from services.reviews.bootstrap import spec as reviews_spec
from services.visits.bootstrap import spec as visits_spec
from services.visits.config import VisitsSettings
from shared.clock import MovableClock
from shared.events.leads import LeadAssigned, LeadRegistered
from tests.integration.reviews.support import (
    Source,
    consumed,
    publish,
    rep_registered,
    reviews_settings,
    walk_to_calibrated,
)
from tests.support.kafka_helpers import eventually, eventually_async
from tests.support.services import SIMULATION_START, running_service, service_settings

HANGZHOU = {"lat": 30.2741, "lon": 120.1551}


async def test_a_fabrication_qc_confirms_in_visits_becomes_a_red_line_that_blocks_promotion(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    clock = MovableClock(SIMULATION_START)
    visits_settings = service_settings(
        VisitsSettings, kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path / "visits"
    )
    settings = reviews_settings(
        kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path / "reviews"
    )
    async with (
        running_service(visits_spec(), visits_settings, clock) as visits,
        running_service(reviews_spec(), settings, clock) as reviews,
    ):
        # The leads service's facts: two reps, and a lead that belongs to rep-2 since yesterday.
        yesterday = SIMULATION_START - timedelta(days=1)
        lead = Source("leads", "Lead", "lead-acme")
        registered = LeadRegistered(
            lead_id="lead-acme",
            company_name="Acme Trading",
            company_key="acme-trading",
            region="hangzhou",
            address_line="1 West Lake Rd",
            city="Hangzhou",
            customer_lat=HANGZHOU["lat"],
            customer_lon=HANGZHOU["lon"],
            score=0.8,
            source="fair",
            registered_at=yesterday,
        )
        assigned = LeadAssigned(
            lead_id="lead-acme",
            rep_id="rep-2",
            region="hangzhou",
            assigned_at=yesterday,
            follow_up_deadline=yesterday + timedelta(hours=48),
        )
        leads_topic = f"{topic_prefix}.leads"
        reps = [
            Source("leads", "Rep", f"rep-{r}").envelope(rep_registered(r, "hangzhou", yesterday), yesterday)
            for r in ("rep-1", "rep-2")
        ]
        landed = await publish(
            kafka_bootstrap,
            leads_topic,
            *reps,
            lead.envelope(registered, yesterday),
            lead.envelope(assigned, yesterday),
        )
        for svc in (visits, reviews):
            for partition, offset in landed:
                await eventually(
                    consumed(svc, leads_topic, partition, offset), what=f"{svc.context.spec.name} read leads"
                )

        # rep-1 claims a visit this morning to a customer rep-2 owned at that moment.
        logged = await visits.client.post(
            "/visits",
            json={
                "lead_id": "lead-acme",
                "visited_at": (SIMULATION_START - timedelta(minutes=45)).isoformat(),
                "position": HANGZHOU,
                "checkin": {"position": HANGZHOU, "photo_hash": "sha256-0123456789abcdef"},
            },
            headers=visits.token("rep-1", "rep"),
        )
        assert logged.status_code == 201, logged.text
        visit_id = logged.json()["id"]

        qc = visits.token("qc-1", "qc")
        flags = (await visits.client.get("/flags?rep_id=rep-1", headers=qc)).json()
        [not_the_owner] = [f for f in flags if f["rule"] == "not_the_owner"]
        confirmed = await visits.client.post(
            f"/flags/{not_the_owner['flag_id']}/confirmation",
            json={"reason": "rep-2 owned Acme; Acme says only rep-2 came", "fabrication": True},
            headers=qc,
        )
        assert confirmed.status_code == 200, confirmed.text

        # The reviews service hears of it through the visits topic and opens a case for a person.
        hr = reviews.token("hr-1", "hr")

        async def case_opened() -> bool:
            return len((await reviews.client.get("/red-line-cases?rep_id=rep-1", headers=hr)).json()) == 1

        await eventually_async(case_opened, what="a red-line case opened from the visits service")
        [case] = (await reviews.client.get("/red-line-cases?rep_id=rep-1", headers=hr)).json()
        assert (case["status"], case["source"], case["visit_id"]) == (
            "open",
            "fabrication_confirmed",
            visit_id,
        )
        assert {"kind": "flag", "ref": not_the_owner["flag_id"], "note": ""} in case["evidence"]
        assert {e["ref"] for e in case["evidence"] if e["kind"] == "event"} >= set(
            not_the_owner["evidence"]
        ) - {visit_id}
        results = await reviews.client.get("/reps/rep-1/results?quarter=2026Q1", headers=hr)
        assert results.json()["visits"] == 0  # a fabricated visit is no result

        created = await reviews.client.post(
            "/reviews", json={"rep_id": "rep-1", "quarter": "2026Q1"}, headers=hr
        )
        review_id = created.json()["id"]
        await walk_to_calibrated(reviews, review_id)
        decided = await reviews.client.post(
            f"/red-line-cases/{case['case_id']}/decision",
            json={"decision": "confirmed", "reason": "qc's evidence and the customer agree"},
            headers=hr,
        )
        assert decided.status_code == 200 and decided.json()["marked_review_ids"] == [review_id]
        completed = await reviews.client.post(f"/reviews/{review_id}/completion", headers=hr)
        outcome = completed.json()["outcome"]
        assert (outcome["category"], outcome["red_line"], outcome["promotable"]) == ("red_line", True, False)
        assert outcome["bonus_eligible"] is False
