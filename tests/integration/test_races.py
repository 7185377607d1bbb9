"""Two commands racing on one aggregate, with real concurrency, over HTTP into the leads app:
the region's manager and an admin assigning one pool lead, and two swaps into one private pool at
its cap. Each pair is made to race for real (both commands have read before either writes); one
wins, the other gets 409 naming the aggregate and the version it now stands at, and the state is
never corrupt — on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.leads.application import LeadsApplication
from services.leads.bootstrap import spec
from services.leads.config import LeadsSettings
from services.leads.domain.rep import Rep
from services.leads.domain.values import Address, NewLead
from shared.clock import MovableClock
from shared.domain import Meta
from shared.service import ServiceContext, build_service
from shared.settings import ServiceSettings
from shared.web import create_app
from tests.unit.leads.given import Topic, appoint

NOW = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Hangzhou
PAIRS = 8  # every pair is a real race (see RacingLeads), so a few make the point on each store
CAP = 2
ADDRESS = Address("1 Wensan Road", "Hangzhou", 30.2741, 120.1551)


class RacingLeads(LeadsApplication):
    """The leads application, holding the first save of each of two racing commands at a barrier:
    both have read the aggregate before either writes, every time, not by luck."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = threading.Lock()
        self.race: threading.Barrier | None = None
        self.arrived = 0  # commands that reached their save while the race was on

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        with self._gate:
            race = self.race if self.arrived < 2 else None  # a retry after the race runs freely
            if race is not None:
                self.arrived += 1
        if race is not None:
            race.wait(timeout=10)
        return super().save(*objs, **kwargs)

    def racing(self) -> threading.Barrier:
        with self._gate:
            self.arrived = 0
            self.race = threading.Barrier(2)
            return self.race


@dataclass
class Leads:
    context: ServiceContext[Any]
    client: httpx.AsyncClient
    names: int = 0

    @property
    def app(self) -> RacingLeads:
        application = self.context.application
        assert isinstance(application, RacingLeads)
        return application

    def as_(self, actor_id: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.context.tokens.issue(actor_id, role)}"}

    def admin(self) -> Meta:
        return Meta("admin-1", "admin", NOW)

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}-{self.names}"

    def hire(self, cap: int = 20) -> str:
        rep_id = self.fresh("rep")
        self.app.register_rep(
            rep_id, rep_id.title(), "hangzhou", date(2025, 1, 6), self.admin(), private_pool_cap=cap
        )
        return rep_id

    def pool_lead(self) -> str:
        new = NewLead(self.fresh("Company"), "hangzhou", ADDRESS, 70.0, "trade-fair")
        return str(self.app.register_lead(new, self.admin()))

    def assigned(self, rep_id: str) -> str:
        lead_id = self.pool_lead()
        self.app.assign_lead(lead_id, rep_id, self.admin())
        return lead_id

    def version(self, aggregate_id: str) -> int:
        last = self.app.recorder.select_events(UUID(aggregate_id), desc=True, limit=1)
        return last[0].originator_version if last else 0

    def stored(self, aggregate_id: str) -> list[str]:
        return [type(e).__name__ for e in self.app.events.get(UUID(aggregate_id))]

    async def race(self, *calls: tuple[str, dict[str, Any], dict[str, str]]) -> list[httpx.Response]:
        barrier = self.app.racing()
        try:
            responses = await asyncio.gather(*(self.client.post(p, json=b, headers=h) for p, b, h in calls))
        finally:
            self.app.race = None
        assert self.app.arrived == 2 and not barrier.broken, (
            "both commands must have read before either saved"
        )
        return list(responses)


@pytest.fixture(params=["sqlite", "postgres"])
async def leads(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Leads]:
    store: dict[str, Any] = {"store": request.param}
    if request.param == "postgres":
        store["postgres_dbname"] = request.getfixturevalue("postgres_dbname")
    settings = LeadsSettings(  # the relay is not run here: no reader process to make RacingLeads in
        environment="test",
        data_dir=tmp_path,
        clock="movable",
        topic_prefix="races",
        relay_reader="thread",
        **store,
    )

    def make(settings: ServiceSettings, env: dict[str, str]) -> RacingLeads:
        assert isinstance(settings, LeadsSettings)
        return RacingLeads(env, policy=settings.policy)

    context = build_service(replace(spec(), make_application=make), settings, MovableClock(NOW))
    app = create_app(context)  # no lifespan: no relay or consumers, only the HTTP routes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://leads") as client:
        racing = Leads(context, client)
        assert appoint(Topic(racing.app, "rotation"), "mgr-hz", "hangzhou", NOW - timedelta(days=30))
        try:
            yield racing
        finally:
            context.application.close()


def lost_race(response: httpx.Response, leads: Leads, contested: set[str]) -> None:
    """The loser's answer: 409, naming one of the contested aggregates and where it stands now."""
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "conflict", body
    details = body.get("details") or {}
    assert details.get("aggregate_id") in contested, body
    assert details.get("current_version") == leads.version(details["aggregate_id"]), body
    assert details.get("expected_version", 0) < details["current_version"], body


async def test_two_managers_assigning_one_lead_one_wins_and_the_lead_has_one_owner(leads: Leads) -> None:
    manager, admin = leads.as_("mgr-hz", "manager"), leads.as_("admin-1", "admin")
    first, second = leads.hire(), leads.hire()
    won = {first: 0, second: 0}
    for _ in range(PAIRS):
        lead_id = leads.pool_lead()
        path = f"/leads/{lead_id}/assignment"
        answers = await leads.race((path, {"rep_id": first}, manager), (path, {"rep_id": second}, admin))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        winner = first if answers[0].status_code == 200 else second
        lost_race(next(a for a in answers if a.status_code == 409), leads, {lead_id})
        won[winner] += 1

        lead = (await leads.client.get(f"/leads/{lead_id}", headers=admin)).json()
        assert (lead["status"], lead["owner_id"]) == ("assigned", winner)
        assert [(o["rep_id"], o["until"]) for o in lead["owners"]] == [(winner, None)]
        assert leads.stored(lead_id) == ["Registered", "Assigned"]
    # Only the winners' assignments count against the day's quota.
    for rep_id, count in won.items():
        bench = (await leads.client.get(f"/reps/{rep_id}/workbench", headers=admin)).json()
        assert bench["assigned_today"] == count == len(bench["assigned"])


async def test_two_swaps_into_a_private_pool_at_its_cap_one_wins_and_the_cap_holds(leads: Leads) -> None:
    for pair in range(PAIRS):
        rep_id = leads.hire(cap=CAP)
        private = [leads.assigned(rep_id) for _ in range(CAP)]
        for lead_id in private:
            leads.app.keep_private(lead_id, rep_id, Meta(rep_id, "rep", NOW))
        candidates = [leads.assigned(rep_id) for _ in range(2)]
        # Both give back the same private lead, or each a different one.
        returned = [private[0], private[0] if pair % 2 == 0 else private[1]]
        rep = leads.as_(rep_id, "rep")
        answers = await leads.race(
            *(
                (f"/leads/{lead}/private", {"return_lead_id": back}, rep)
                for lead, back in zip(candidates, returned, strict=True)
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        win = next(i for i, a in enumerate(answers) if a.status_code == 200)
        kept, gave_back = candidates[win], returned[win]
        lost_race(answers[1 - win], leads, {str(Rep.create_id(rep_id)), *returned})

        record = (await leads.client.get(f"/reps/{rep_id}", headers=rep)).json()
        bench = (await leads.client.get(f"/reps/{rep_id}/workbench", headers=rep)).json()
        assert record["private_leads"] == CAP == len(bench["private_pool"])
        assert {card["lead_id"] for card in bench["private_pool"]} == {kept, *(set(private) - {gave_back})}
        assert {card["lead_id"] for card in bench["assigned"]} == {candidates[1 - win]}
        back = (await leads.client.get(f"/leads/{gave_back}", headers=leads.as_("admin-1", "admin"))).json()
        assert (back["status"], back["owner_id"], back["owners"][-1]["ended_by"]) == (
            "pool",
            None,
            "released",
        )
        # The rep's record holds the keeps up to the cap and exactly one swap, nothing of the loser's.
        assert leads.stored(str(Rep.create_id(rep_id))) == ["Registered"] + ["PrivateLeadKept"] * (CAP + 1)
