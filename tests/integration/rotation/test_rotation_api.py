"""The rotation service over HTTP, on SQLite and on PostgreSQL: who may do what, the due list,
plans under the no-return rule, deferrals, declines, and the answers to bad or impossible requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.rotation.support import DUE_SINCE, FRESH_SINCE, NOW, ok, staff
from tests.support.services import RunningService

THREE_DUE = {
    "ann": ("hangzhou", DUE_SINCE),
    "bob": ("shanghai", DUE_SINCE),
    "cat": ("nanjing", DUE_SINCE),
}


def moves(plan: dict[str, Any]) -> dict[str, str]:
    return {m["manager_id"]: m["to_region"] for m in plan["moves"]}


class TestRotationOverHttp:
    @pytest.fixture(params=["sqlite", "postgres"])
    def store(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        if request.param == "sqlite":
            return {"store": "sqlite"}
        return {"store": "postgres", "postgres_dbname": request.getfixturevalue("postgres_dbname")}

    async def test_hr_staffs_the_regions_and_everyone_signed_in_sees_who_manages_where(
        self, rotation: RunningService
    ) -> None:
        await staff(rotation, THREE_DUE)
        regions = ok(await rotation.client.get("/regions", headers=rotation.token("r-1", "rep")))
        assert [(r["code"], r["manager_id"]) for r in regions] == [
            ("hangzhou", "ann"),
            ("nanjing", "cat"),
            ("shanghai", "bob"),
        ]
        one = ok(await rotation.client.get("/regions/hangzhou", headers=rotation.token("q-1", "qc")))
        assert one["location"] == {"lat": 30.27, "lon": 120.15}
        assert datetime.fromisoformat(one["since"]) == DUE_SINCE
        missing = await rotation.client.get("/regions/lhasa", headers=rotation.token("hr-1", "hr"))
        assert missing.status_code == 404 and missing.json()["field"] == "region"

    async def test_a_manager_sees_only_their_own_record_and_history_and_hr_sees_anyones(
        self, rotation: RunningService
    ) -> None:
        await staff(rotation, THREE_DUE)
        ann = rotation.token("ann", "manager", region="hangzhou")
        own = ok(await rotation.client.get("/managers/ann", headers=ann))
        assert own["region"] == "hangzhou" and own["postings"][0]["how"] == "appointed"
        history = ok(await rotation.client.get("/managers/ann/history", headers=ann))
        assert [h["kind"] for h in history] == ["appointed"]
        for path in ("/managers/bob", "/managers/bob/history", "/managers", "/due", "/plans"):
            refused = await rotation.client.get(path, headers=ann)
            assert refused.status_code == 403, path
        rep = rotation.token("ann", "rep")  # the same id in another role is not the manager
        assert (await rotation.client.get("/managers/ann", headers=rep)).status_code == 403
        assert (await rotation.client.get("/managers/ann")).status_code == 401
        hr_view = ok(await rotation.client.get("/managers/bob/history", headers=rotation.token("hr-1", "hr")))
        assert hr_view[0]["region"] == "shanghai"

    async def test_the_due_list_turns_on_the_day_tenure_reaches_six_months(
        self, rotation: RunningService
    ) -> None:
        since = datetime(2025, 8, 15, 9, tzinfo=UTC)
        await staff(
            rotation,
            {"ann": ("hangzhou", since), "bob": ("shanghai", datetime(2025, 2, 1, 9, tzinfo=UTC))},
        )
        hr = rotation.token("hr-1", "hr")

        async def due_on(as_of: datetime) -> dict[str, Any]:
            answer: dict[str, Any] = ok(
                await rotation.client.get("/due", params={"as_of": as_of.isoformat()}, headers=hr)
            )
            return answer

        before = await due_on(datetime(2026, 2, 15, 8, 59, 59, tzinfo=UTC))
        assert [d["manager_id"] for d in before["due"]] == ["bob"]
        on_the_day = await due_on(datetime(2026, 2, 15, 9, tzinfo=UTC))
        ann = next(d for d in on_the_day["due"] if d["manager_id"] == "ann")
        assert ann["overdue_days"] == 0 and not ann["past_max"]
        assert [r["region"] for r in on_the_day["at_risk"]] == ["shanghai"]  # bob: a year and more
        assert on_the_day["at_risk"][0]["past_max_by_days"] == 14
        now = ok(await rotation.client.get("/due", headers=hr))  # as of the service's clock
        assert datetime.fromisoformat(now["as_of"]) == NOW

    async def test_a_plan_never_sends_a_manager_back_to_a_region_they_held_recently(
        self, rotation: RunningService
    ) -> None:
        await staff(rotation, THREE_DUE, past=[("ann", "nanjing")])
        hr = rotation.token("hr-1", "hr")
        preview = ok(await rotation.client.get("/plans/preview", headers=hr))
        assert moves(preview) == {"ann": "shanghai", "bob": "nanjing", "cat": "hangzhou"}
        assert all(m["explanation"] and m["cost"] >= 0 for m in preview["moves"])
        created = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)
        plan = ok(await rotation.client.get(f"/plans/{created['id']}", headers=hr))
        assert plan["status"] == "proposed" and moves(plan) == moves(preview)
        assert datetime.fromisoformat(plan["effective_at"]) == NOW + timedelta(days=30)
        offers = ok(await rotation.client.get("/managers/ann", headers=rotation.token("ann", "manager")))
        assert [(o["plan_id"], o["move"]["to_region"]) for o in offers["offers"]] == [
            (created["id"], "shanghai")
        ]

    async def test_an_approved_deferral_takes_the_manager_out_of_the_plan(
        self, rotation: RunningService
    ) -> None:
        await staff(rotation, THREE_DUE)
        hr = rotation.token("hr-1", "hr")
        first = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
        ann = rotation.token("ann", "manager", region="hangzhou")
        until = (NOW + timedelta(days=120)).isoformat()
        body = {"reason": "a parent in hospital", "until": until}
        assert (
            await rotation.client.post("/managers/bob/deferral", json=body, headers=ann)
        ).status_code == 403
        asked = ok(await rotation.client.post("/managers/ann/deferral", json=body, headers=ann))
        assert asked["deferral"]["status"] == "requested"
        waiting = ok(await rotation.client.get("/deferral-requests", headers=hr))
        assert [m["manager_id"] for m in waiting] == ["ann"]
        refused = await rotation.client.post("/managers/ann/deferral/approval", headers=ann)
        assert refused.status_code == 403  # nobody approves their own hardship
        decision = ok(await rotation.client.post("/managers/ann/deferral/approval", headers=hr))
        assert decision["withdrawn_plan_ids"] == [first]
        assert decision["manager"]["deferral"]["status"] == "approved"
        second = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
        plan = ok(await rotation.client.get(f"/plans/{second}", headers=hr))
        assert moves(plan) == {"bob": "nanjing", "cat": "shanghai"}
        assert [(s["manager_id"], s["reason"].split(" until")[0]) for s in plan["staying"]] == [
            ("ann", "deferred (hardship)")
        ]

    async def test_a_rejected_deferral_keeps_the_manager_due(self, rotation: RunningService) -> None:
        await staff(rotation, THREE_DUE)
        hr = rotation.token("hr-1", "hr")
        body = {"reason": "prefer to stay", "until": (NOW + timedelta(days=60)).isoformat()}
        ok(
            await rotation.client.post(
                "/managers/ann/deferral", json=body, headers=rotation.token("ann", "manager")
            )
        )
        rejected = ok(
            await rotation.client.post(
                "/managers/ann/deferral/rejection", json={"reason": "no hardship"}, headers=hr
            )
        )
        assert rejected["deferral"]["status"] == "rejected"
        assert "ann" in moves(ok(await rotation.client.get("/plans/preview", headers=hr)))

    async def test_an_impossible_plan_answers_422_with_the_reasons(self, rotation: RunningService) -> None:
        # ann is due, but the only other region's manager arrived a month ago: nowhere to send her.
        await staff(rotation, {"ann": ("hangzhou", DUE_SINCE), "dan": ("shanghai", FRESH_SINCE)})
        hr = rotation.token("hr-1", "hr")
        for response in (
            await rotation.client.get("/plans/preview", headers=hr),
            await rotation.client.post("/plans", json={}, headers=hr),
        ):
            assert response.status_code == 422
            answer = response.json()
            assert answer["error"] == "rotation_infeasible"
            assert answer["details"]["reasons"] and "ann" in answer["details"]["manager_ids"]
            assert any("ann" in reason for reason in answer["details"]["reasons"])
        assert ok(await rotation.client.get("/plans", headers=hr)) == []

    async def test_a_declined_move_is_in_the_managers_history_and_withdraws_the_plan(
        self, rotation: RunningService
    ) -> None:
        await staff(rotation, THREE_DUE)
        hr = rotation.token("hr-1", "hr")
        plan_id = ok(await rotation.client.post("/plans", json={}, headers=hr), 201)["id"]
        body = {"plan_id": plan_id, "reason": "my child starts school here"}
        bob = rotation.token("bob", "manager", region="shanghai")
        assert (
            await rotation.client.post("/managers/ann/declines", json=body, headers=bob)
        ).status_code == 403
        ann = rotation.token("ann", "manager", region="hangzhou")
        declined = ok(await rotation.client.post("/managers/ann/declines", json=body, headers=ann))
        assert declined["declines"][0]["reason"] == "my child starts school here"
        history = ok(await rotation.client.get("/managers/ann/history", headers=ann))
        assert history[-1]["kind"] == "rotation_declined"
        plan = ok(await rotation.client.get(f"/plans/{plan_id}", headers=hr))
        assert plan["status"] == "withdrawn" and "ann declined" in plan["withdrawn_because"]
        again = await rotation.client.post("/managers/ann/declines", json=body, headers=ann)
        assert again.status_code == 409

    async def test_bad_input_is_a_422_naming_the_field_and_the_wrong_role_a_403(
        self, rotation: RunningService
    ) -> None:
        hr = rotation.token("hr-1", "hr")
        cases: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None, str]] = [
            (
                "post",
                "/regions",
                {"code": "Bad Code", "name": "x", "location": {"lat": 1, "lon": 1}},
                None,
                "body.code",
            ),
            (
                "post",
                "/regions",
                {"code": "x", "name": "x", "location": {"lat": 91, "lon": 1}},
                None,
                "body.location.lat",
            ),
            (
                "post",
                "/managers",
                {"manager_id": "m", "name": "M", "level": "regional"},
                None,
                "body.home_base",
            ),
            ("get", "/due", None, {"as_of": "2026-01-01T00:00:00"}, "query.as_of"),  # no timezone
            ("get", "/due", None, {"as_of": "9999-01-01T00:00:00Z"}, "query.as_of"),
            ("post", "/plans", {"effective_at": "soon"}, None, "body.effective_at"),
            ("get", "/plans/not-a-uuid", None, None, "path.plan_id"),
        ]
        for method, path, body, params, field in cases:
            response = await rotation.client.request(method, path, json=body, params=params, headers=hr)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["fields"][0]["field"] == field, (path, response.json())
        await staff(rotation, {"ann": ("hangzhou", DUE_SINCE)})
        region = {"code": "wuhan", "name": "Wuhan", "location": {"lat": 30.59, "lon": 114.31}}
        for role in ("rep", "manager", "qc", "ops"):
            who = rotation.token("someone", role)
            assert (await rotation.client.post("/regions", json=region, headers=who)).status_code == 403
            assert (await rotation.client.post("/plans", json={}, headers=who)).status_code == 403
        assert (await rotation.client.post("/regions", json=region)).status_code == 401
        ok(await rotation.client.post("/regions", json=region, headers=rotation.token("a-1", "admin")), 201)
        twice = await rotation.client.post("/regions", json=region, headers=hr)
        assert twice.status_code == 409 and twice.json()["field"] == "code"
