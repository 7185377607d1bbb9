"""The review cycle over HTTP, on SQLite and on PostgreSQL, with the real broker: who may do what,
what bad input gets, and what the reviews topic carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from services.reviews.bootstrap import spec
from shared.clock import MovableClock
from tests.integration.reviews.support import evidence, given_conversion, given_reps, reviews_settings
from tests.support.kafka_helpers import read_topic
from tests.support.services import SIMULATION_START, RunningService, running_service

Q1 = "2026Q1"


def events(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def types(records: list[ConsumerRecord]) -> list[str]:
    return [e["event_type"] for e in events(records)]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {"store": "sqlite"}
    return {"store": "postgres", "postgres_dbname": request.getfixturevalue("postgres_dbname")}


@pytest.fixture
async def reviews(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, store: dict[str, str]
) -> AsyncIterator[RunningService]:
    settings = reviews_settings(kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path, **store)
    async with running_service(spec(), settings, MovableClock(SIMULATION_START)) as svc:
        await given_reps(svc, "hangzhou", "rep-1", "rep-2", at=SIMULATION_START)
        await given_reps(svc, "ningbo", "rep-9", at=SIMULATION_START)
        yield svc


class TestReviewCycleOverHttp:
    """Runs on SQLite and on PostgreSQL (the `store` fixture)."""

    async def test_a_quarter_goes_from_opening_to_an_outcome_on_the_reviews_topic(
        self, reviews: RunningService, kafka_bootstrap: str, topic_prefix: str
    ) -> None:
        client = reviews.client
        manager = reviews.token("mgr-hz", "manager", region="hangzhou")
        hr = reviews.token("hr-1", "hr")
        await given_conversion(reviews, "lead-1", "rep-1", "hangzhou", SIMULATION_START)

        opened = await client.post(
            "/reviews/quarters", json={"region": "hangzhou", "quarter": Q1}, headers=manager
        )
        assert opened.status_code == 201, opened.text
        assert len(opened.json()["review_ids"]) == 2
        again = await client.post(
            "/reviews/quarters", json={"region": "hangzhou", "quarter": Q1}, headers=manager
        )
        assert again.status_code == 201 and again.json()["review_ids"] == []

        mine = (await client.get("/reps/rep-1/reviews", headers=reviews.token("rep-1", "rep"))).json()
        review_id = mine["reviews"][0]["review_id"]
        rep_1 = reviews.token("rep-1", "rep")
        calibration = {"adjustments": [{"value": "embrace_change", "score": 4}], "reason": "well documented"}
        steps: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
            ("self-assessment", {"evidence": evidence(4, 4, 4, 4, 4, 4)}, rep_1, "self_assessed"),
            ("manager-assessment", {"evidence": evidence(4, 4, 3, 5, 4, 4)}, manager, "manager_assessing"),
            (
                "performance-rating",
                {"rating": 5, "comment": "closed the biggest deal"},
                manager,
                "ready_for_calibration",
            ),
            ("calibration", calibration, hr, "calibrated"),
        ]
        for step, body, headers, stage in steps:
            response = await client.post(f"/reviews/{review_id}/{step}", json=body, headers=headers)
            assert response.status_code == 200, (step, response.text)
            assert response.json()["stage"] == stage

        completed = await client.post(f"/reviews/{review_id}/completion", headers=hr)
        assert completed.status_code == 200, completed.text
        outcome = completed.json()["outcome"]
        assert outcome["value_scores"]["embrace_change"] == 4
        assert (outcome["band"], outcome["category"], outcome["promotable"]) == ("A", "star", True)

        # Nobody edits a completed review; hr's correction is a new event with a new outcome.
        late = await client.post(
            f"/reviews/{review_id}/self-assessment",
            json={"evidence": evidence(5, 5, 5, 5, 5, 5)},
            headers=reviews.token("rep-1", "rep"),
        )
        assert late.status_code == 409
        corrected = await client.post(
            f"/reviews/{review_id}/corrections",
            json={"adjustments": [{"value": "integrity", "score": 1}], "reason": "appeal upheld a complaint"},
            headers=hr,
        )
        assert corrected.status_code == 200 and corrected.json()["corrections"] == 1

        records = await read_topic(
            kafka_bootstrap, f"{topic_prefix}.reviews", until=lambda rs: "ReviewCorrected" in types(rs)
        )
        # One review's events share its key, so they stay in order; the two reviews interleave.
        of_review = [e["event_type"] for e in events(records) if e["aggregate_id"] == review_id]
        assert types(records).count("ReviewOpened") == 2
        assert of_review == [
            "ReviewOpened",
            "SelfAssessed",
            "ManagerAssessed",
            "PerformanceRated",
            "ReviewCalibrated",
            "ReviewCompleted",
            "ReviewCorrected",
        ]
        done = next(e for e in events(records) if e["event_type"] == "ReviewCompleted")
        assert done["aggregate_id"] == review_id and done["actor_id"] == "hr-1"
        assert done["payload"]["conversions"] == 1 and done["payload"]["outcome"]["band"] == "A"
        assert {r.key.decode() for r in records if b'"rep-1"' in r.value} == {review_id}

    async def test_reps_see_and_write_only_their_own_and_managers_act_only_in_their_region(
        self, reviews: RunningService
    ) -> None:
        client = reviews.client
        hz_manager = reviews.token("mgr-hz", "manager", region="hangzhou")
        nb_manager = reviews.token("mgr-nb", "manager", region="ningbo")
        rep_1, rep_2 = reviews.token("rep-1", "rep"), reviews.token("rep-2", "rep")

        refused = await client.post(
            "/reviews/quarters", json={"region": "hangzhou", "quarter": Q1}, headers=nb_manager
        )
        assert refused.status_code == 403 and "ningbo" in refused.json()["message"]
        assert (
            await client.post("/reviews", json={"rep_id": "rep-1", "quarter": Q1}, headers=rep_1)
        ).status_code == 403
        created = await client.post("/reviews", json={"rep_id": "rep-1", "quarter": Q1}, headers=hz_manager)
        assert created.status_code == 201
        review_id = created.json()["id"]
        twice = await client.post("/reviews", json={"rep_id": "rep-1", "quarter": Q1}, headers=hz_manager)
        assert twice.status_code == 409

        assert (await client.get(f"/reviews/{review_id}")).status_code == 401
        assert (await client.get(f"/reviews/{review_id}", headers=rep_1)).status_code == 200
        assert (await client.get(f"/reviews/{review_id}", headers=rep_2)).status_code == 403
        assert (await client.get(f"/reviews/{review_id}", headers=nb_manager)).status_code == 403
        assert (
            await client.get(f"/reviews/{review_id}", headers=reviews.token("qc-1", "qc"))
        ).status_code == 200
        assert (await client.get("/reps/rep-1/reviews", headers=rep_2)).status_code == 403
        assert (await client.get("/reps/rep-1/reviews", headers=nb_manager)).status_code == 403
        assert (await client.get("/reps/rep-1/results?quarter=2026Q1", headers=rep_2)).status_code == 403
        region = "/reviews?region=hangzhou&quarter=2026Q1"
        assert (await client.get(region, headers=rep_1)).status_code == 403
        assert (await client.get(region, headers=nb_manager)).status_code == 403
        assert [v["rep_id"] for v in (await client.get(region, headers=hz_manager)).json()] == ["rep-1"]

        # The rep is whoever the token says: rep-2 cannot write rep-1's self-assessment.
        body = {"evidence": evidence(3, 3, 3, 3, 3, 3)}
        assert (
            await client.post(f"/reviews/{review_id}/self-assessment", json=body, headers=rep_2)
        ).status_code == 403
        assert (
            await client.post(f"/reviews/{review_id}/manager-assessment", json=body, headers=nb_manager)
        ).status_code == 403
        assert (
            await client.post(f"/reviews/{review_id}/manager-assessment", json=body, headers=rep_1)
        ).status_code == 403
        rating = {"rating": 3, "comment": "steady quarter overall"}
        assert (
            await client.post(f"/reviews/{review_id}/performance-rating", json=rating, headers=nb_manager)
        ).status_code == 403
        calibration = {"reason": "looks right"}
        assert (
            await client.post(f"/reviews/{review_id}/calibration", json=calibration, headers=hz_manager)
        ).status_code == 403
        assert (await client.post(f"/reviews/{review_id}/completion", headers=rep_1)).status_code == 403
        own = await client.post(f"/reviews/{review_id}/self-assessment", json=body, headers=rep_1)
        assert own.status_code == 200 and own.json()["self_scores"]["teamwork"] == 3
        examples = await client.get(f"/reviews/{review_id}/evidence", headers=rep_1)
        assert len(examples.json()["self_assessment"]) == 18
        others = await client.get(f"/reviews/{review_id}/evidence", headers=rep_2)
        assert others.status_code == 403


async def test_bad_input_is_refused_with_the_field_it_concerns(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = reviews_settings(kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path)
    async with running_service(spec(), settings, MovableClock(SIMULATION_START)) as svc:
        await given_reps(svc, "hangzhou", "rep-1", at=SIMULATION_START)
        client, manager = svc.client, svc.token("mgr-hz", "manager", region="hangzhou")
        rep = svc.token("rep-1", "rep")
        bad_quarter = await client.post(
            "/reviews", json={"rep_id": "rep-1", "quarter": "2026Q5"}, headers=manager
        )
        assert bad_quarter.status_code == 422 and bad_quarter.json()["fields"][0]["field"] == "body.quarter"
        future = await client.post("/reviews", json={"rep_id": "rep-1", "quarter": "2026Q3"}, headers=manager)
        assert future.status_code == 422 and future.json()["field"] == "quarter"
        unknown = await client.post("/reviews", json={"rep_id": "rep-404", "quarter": Q1}, headers=manager)
        assert unknown.status_code == 404 and unknown.json()["field"] == "rep_id"
        review_id = (
            await client.post("/reviews", json={"rep_id": "rep-1", "quarter": Q1}, headers=manager)
        ).json()["id"]

        def with_item(**change: Any) -> dict[str, Any]:
            return {
                "evidence": [{"value": "integrity", "level": 1, "example": "returned a deposit", **change}]
            }

        cases: list[tuple[dict[str, Any], str]] = [
            (with_item(level=6), "body.evidence.0.level"),
            (with_item(value="loyalty"), "body.evidence.0.value"),
            (with_item(example=""), "body.evidence.0.example"),
            ({"evidence": [], "rep_id": "rep-2"}, "body.rep_id"),  # the rep is the token's, never the body's
        ]
        for body, field in cases:
            response = await client.post(f"/reviews/{review_id}/self-assessment", json=body, headers=rep)
            assert response.status_code == 422, body
            assert response.json()["fields"][0]["field"] == field
        # A point without a real example is refused by the domain (policy: at least 10 characters).
        short = await client.post(
            f"/reviews/{review_id}/self-assessment", json=with_item(example="ok"), headers=rep
        )
        assert short.status_code == 422 and short.json()["field"] == "evidence[0].example"
        rating = await client.post(
            f"/reviews/{review_id}/performance-rating", json={"rating": 0, "comment": "x"}, headers=manager
        )
        assert rating.status_code == 422 and rating.json()["fields"][0]["field"] == "body.rating"
        not_an_id = await client.get("/reviews/not-a-uuid", headers=manager)
        assert not_an_id.status_code == 422 and not_an_id.json()["fields"][0]["field"] == "path.review_id"
        no_quarter = await client.get("/regions/hangzhou/distribution", headers=manager)
        assert no_quarter.status_code == 422 and no_quarter.json()["fields"][0]["field"] == "query.quarter"
