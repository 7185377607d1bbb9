"""The seed's story end to end with the real broker: one honest visit, then visits typed in in the
evening to leads the rep did not own. Each fabricated visit is found with the events that prove it;
an honest rep's busy day raises nothing. Then the store is rebuilt from the topics: same flags.

The leads side is the leads service's real envelopes put on its topic (services/leads has no
runnable spec yet): LeadRegistered, LeadAssigned, LeadReclaimed from shared.events.leads.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.visits.application import VisitsApplication
from services.visits.rebuild import rebuild_from_topics
from shared.clock import MovableClock
from shared.relay import read_outgoing
from shared.replay_processes import SPLIT_FROM
from tests.integration.visits.support import (
    PHOTO,
    LeadsTopicWriter,
    consumed,
    lead_id,
    running_visits,
    visits_settings,
)
from tests.support.kafka_helpers import eventually, read_topic
from tests.support.services import SIMULATION_START, RunningService
from tests.support.stores import sqlite_env

T0 = SIMULATION_START.replace(hour=0)  # Monday 2 March 2026, 00:00 UTC
REGION = "hangzhou"
# Customers around Hangzhou, a few kilometres apart.
PLACES = {
    "A": (30.2741, 120.1551),
    "B": (30.2900, 120.1700),
    "C": (30.2600, 120.1900),
    "D": (30.2450, 120.1650),
    "W1": (30.2800, 120.1200),
    "W2": (30.3000, 120.1300),
    "W3": (30.3100, 120.1600),
    "W4": (30.2950, 120.1900),
    "W5": (30.2700, 120.2000),
}


def at(hour: float, day: int = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


def near(place: str) -> dict[str, float]:
    lat, lon = PLACES[place]
    return {"lat": lat + 0.0003, "lon": lon, "accuracy_m": 15.0}  # ~35 m away, as a phone sees it


def of_type(records: list[Any], kind: str) -> list[dict[str, Any]]:
    """The envelopes of one event type among records read off a topic."""
    return [e for e in (orjson.loads(r.value) for r in records) if e["event_type"] == kind]


@dataclass
class Story:
    leads: dict[str, str] = field(default_factory=dict)  # place → lead id
    proof: dict[str, str] = field(default_factory=dict)  # what proves the fabricated visits
    visits: dict[str, str] = field(default_factory=dict)  # place → visit id


async def play_seed_story(svc: RunningService, writer: LeadsTopicWriter, clock: MovableClock) -> Story:
    story = Story(leads={place: lead_id(place) for place in PLACES})
    leads = story.leads
    registered = {
        place: await writer.registered(lead, REGION, PLACES[place], at(9, day=-10))
        for place, lead in leads.items()
    }
    story.proof["C"] = registered["C"]  # and nothing since: C is in the pool
    # Liu owns A; B belongs to Zhang; C was never given to anyone; D was taken back from Liu.
    await writer.assigned(leads["A"], "rep-liu", REGION, at(8, day=-1))
    story.proof["B"] = await writer.assigned(leads["B"], "rep-zhang", REGION, at(8, day=-1))
    await writer.assigned(leads["D"], "rep-liu", REGION, at(8, day=-6))
    story.proof["D"] = await writer.reclaimed(leads["D"], "rep-liu", REGION, at(8, day=-3))
    for place in ("W1", "W2", "W3", "W4", "W5"):
        await writer.assigned(leads[place], "rep-wang", REGION, at(8, day=-1))
    await consumed(svc.application, f"{svc.context.settings.topic_prefix}.visits", writer)

    liu, wang = svc.token("rep-liu", "rep"), svc.token("rep-wang", "rep")

    async def log(token: dict[str, str], place: str, began: float, body: dict[str, object]) -> str:
        response = await svc.client.post(
            "/visits",
            json={"lead_id": leads[place], "visited_at": at(began).isoformat(), **body},
            headers=token,
        )
        assert response.status_code == 201, response.text
        visit_id: str = response.json()["id"]
        story.visits[place] = visit_id
        return visit_id

    # An honest busy day: five visits, each logged as the rep leaves, with check-in and photo.
    for n, (place, began) in enumerate((("W1", 9), ("W2", 10.5), ("W3", 12), ("W4", 14), ("W5", 15.5))):
        clock.set(at(began + 0.8))
        await log(
            wang,
            place,
            began,
            {
                "left_at": at(began + 0.75).isoformat(),
                "position": near(place),
                "checkin": {"position": near(place), "photo_hash": f"sha256:{n:064d}"},
                "notes": "met the buyer",
            },
        )
        if place == "W1":
            # Liu's one real visit, logged from the customer's office.
            await log(
                liu,
                "A",
                9,
                {
                    "position": near("A"),
                    "checkin": {"position": near("A"), "photo_hash": PHOTO},
                    "notes": "demo",
                },
            )
    # Evening: "a few customers from the system", typed in minutes apart, claimed across the day.
    for minutes, (place, began) in zip((0, 3, 6), (("B", 10.5), ("C", 13), ("D", 15.5)), strict=True):
        clock.set(at(19) + timedelta(minutes=minutes))
        lat, lon = PLACES[place]
        await log(liu, place, began, {"position": {"lat": lat, "lon": lon}, "notes": "follow-up"})
    return story


@pytest.fixture
async def service(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[RunningService]:
    settings = visits_settings(kafka_bootstrap, topic_prefix, tmp_path)
    async with running_visits(settings, MovableClock(T0 + timedelta(hours=8))) as svc:
        yield svc


async def test_the_evening_bulk_entry_is_found_with_its_evidence_and_the_honest_day_raises_nothing(
    service: RunningService, kafka_bootstrap: str, topic_prefix: str
) -> None:
    svc = service
    clock = svc.context.clock
    assert isinstance(clock, MovableClock)
    async with LeadsTopicWriter(kafka_bootstrap, topic_prefix) as writer:
        story = await play_seed_story(svc, writer, clock)
    visits, leads = story.visits, story.leads
    qc = svc.token("qc-1", "qc")

    flags = (await svc.client.get("/flags", params={"rep_id": "rep-liu"}, headers=qc)).json()
    found = {(f["visit_id"], f["rule"]) for f in flags}
    fabricated = [visits[p] for p in ("B", "C", "D")]
    assert found == {
        (v, rule) for v in fabricated for rule in ("not_the_owner", "bulk_entry", "missing_checkin_evidence")
    }
    # The honest visit and the honest day: nothing.
    assert all(f["visit_id"] != visits["A"] for f in flags)
    assert (await svc.client.get("/flags", params={"rep_id": "rep-wang"}, headers=qc)).json() == []
    assert (await svc.client.get("/minor-breaches", params={"rep_id": "rep-wang"}, headers=qc)).json() == []

    # Each not-the-owner flag names the leads event that proves it.
    ownership = {f["visit_id"]: f for f in flags if f["rule"] == "not_the_owner"}
    assert story.proof["B"] in ownership[visits["B"]]["evidence"]  # Zhang's assignment
    assert story.proof["D"] in ownership[visits["D"]]["evidence"]  # the reclaim from Liu
    assert "rep-zhang" in ownership[visits["B"]]["reason"]
    assert "reclaimed" in ownership[visits["D"]]["reason"]
    assert "never given" in ownership[visits["C"]]["reason"]
    assert story.proof["C"] in ownership[visits["C"]]["evidence"]  # registered, then nothing: the pool
    bulk = next(f for f in flags if f["rule"] == "bulk_entry" and f["visit_id"] == visits["C"])
    assert set(bulk["evidence"]) == set(fabricated)

    # ... and that evidence is really on the topics: leads events by id, visits as VisitLogged.
    leads_ids = {
        orjson.loads(r.value)["event_id"]
        for r in await read_topic(
            kafka_bootstrap, f"{topic_prefix}.leads", until=lambda rs: len(rs) >= writer.sent
        )
    }
    evidence = {e for f in ownership.values() for e in f["evidence"]} - set(fabricated)
    assert evidence and evidence <= leads_ids

    published = await read_topic(
        kafka_bootstrap, f"{topic_prefix}.visits", until=lambda rs: len(of_type(rs, "VisitFlagged")) >= 9
    )
    on_topic = {
        (e["payload"]["flag_id"], tuple(e["payload"]["evidence_event_ids"]))
        for e in of_type(published, "VisitFlagged")
    }
    assert on_topic == {(f["flag_id"], tuple(f["evidence"])) for f in flags}
    logged = of_type(published, "VisitLogged")
    assert {e["payload"]["rep_id"] for e in logged} == {"rep-liu", "rep-wang"}

    # Liu sees his visits, never the flags about them.
    liu = svc.token("rep-liu", "rep")
    mine = (await svc.client.get("/visits", headers=liu)).json()
    assert {v["visit_id"] for v in mine} == {visits[p] for p in "ABCD"}
    assert all(v["flag_ids"] is None and v["fabrication_confirmed"] is None for v in mine)
    assert (await svc.client.get("/flags", headers=liu)).status_code == 403

    # qc confirms: a red line for the reviews service, and a look-back over Liu's whole record.
    flag_b = ownership[visits["B"]]["flag_id"]
    decided = await svc.client.post(
        f"/flags/{flag_b}/confirmation",
        json={"reason": "the customer never met him; lead held by Zhang", "fabrication": True},
        headers=qc,
    )
    assert decided.status_code == 200, decided.text
    look_back_id = decided.json()["look_back_id"]
    assert decided.json()["flag"]["status"] == "confirmed"
    look_back = (await svc.client.get(f"/look-backs/{look_back_id}", headers=qc)).json()
    assert look_back["visits_examined"] == 4
    assert {f["visit_id"] for f in look_back["findings"]} == {visits["C"], visits["D"]}
    red_line = await read_topic(
        kafka_bootstrap, f"{topic_prefix}.visits", until=lambda rs: bool(of_type(rs, "FabricationConfirmed"))
    )
    confirmed = of_type(red_line, "FabricationConfirmed")[0]
    assert (
        confirmed["payload"]["rep_id"] == "rep-liu"
        and story.proof["B"] in confirmed["payload"]["evidence_event_ids"]
    )

    # Every message sent so far, most of them handed over to the relay by the saves that stored
    # them, is byte for byte what reading the store back gives.
    relay = svc.context.relay
    stored, _ = await asyncio.to_thread(read_outgoing, svc.context.application, relay.translate, 0, 100_000)
    topic = f"{topic_prefix}.visits"
    sent = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= len(stored))
    assert sorted((r.key, r.value) for r in sent) == sorted((o.key, o.value) for o in stored)
    assert relay.metrics.relay_handed_over.labels(relay.topic)._value.get() > len(stored) / 2

    # The investigator's view: the reclaim, the visits and the flags, in the order they happened.
    trail = (await svc.client.get("/audit/reps/rep-liu", headers=svc.token("ops-1", "ops"))).json()
    kinds = [e["event_type"] for e in trail]
    assert kinds.index("LeadReclaimed") < kinds.index("VisitLogged") < kinds.index("VisitFlagged")
    assert "FabricationConfirmed" in kinds and leads["D"] in {e["lead_id"] for e in trail}


async def decided_and_published(svc: RunningService, kafka_bootstrap: str, topic_prefix: str) -> str:
    """The seed story, C's flag confirmed and D's dismissed by QC, everything on the topics: C's
    flag (not the owner)."""
    clock = svc.context.clock
    assert isinstance(clock, MovableClock)
    async with LeadsTopicWriter(kafka_bootstrap, topic_prefix) as writer:
        story = await play_seed_story(svc, writer, clock)
    qc = svc.token("qc-1", "qc")
    flags = (await svc.client.get("/flags", params={"rep_id": "rep-liu"}, headers=qc)).json()
    flag_c = next(
        f["flag_id"] for f in flags if f["visit_id"] == story.visits["C"] and f["rule"] == "not_the_owner"
    )
    flag_d = next(
        f["flag_id"]
        for f in flags
        if f["visit_id"] == story.visits["D"] and f["rule"] == "missing_checkin_evidence"
    )
    clock.advance(timedelta(hours=15))
    assert (
        await svc.client.post(
            f"/flags/{flag_c}/confirmation", json={"reason": "pool lead", "fabrication": True}, headers=qc
        )
    ).status_code == 200
    assert (
        await svc.client.post(
            f"/flags/{flag_d}/dismissal", json={"reason": "phone broken that day"}, headers=qc
        )
    ).status_code == 200
    application = svc.application
    relay = svc.context.relay
    await eventually(
        lambda: relay.published_position() >= (application.recorder.max_notification_id() or 0),
        what="all published",
    )
    return str(flag_c)


@pytest.mark.parametrize(
    ("processes", "split_from", "split"),
    [(1, 0, 1), (3, 0, 3), (3, SPLIT_FROM, 1)],
    ids=["in-one-process", "a-process-a-partition", "too-small-to-split"],
)
async def test_rebuilt_from_the_topics_from_offset_zero_the_store_has_the_same_flags(
    service: RunningService,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    processes: int,
    split_from: int,
    split: int,
) -> None:
    await decided_and_published(service, kafka_bootstrap, topic_prefix)
    original: VisitsApplication = service.application

    rebuilt = VisitsApplication(
        sqlite_env(tmp_path / "rebuilt.sqlite"),
        policy=original.policy,
    )
    try:
        report = await rebuild_from_topics(
            rebuilt,
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix,
            group_id=f"{topic_prefix}.visits.rebuild",
            processes=processes,
            split_from=split_from,
            timeout=60,
        )
        assert report.divergences == []
        assert report.processes == split  # each of the three partitions in a process of its own, or here
        before = original.list_flags(limit=1000)
        after = rebuilt.list_flags(limit=1000)
        assert before and after == before  # ids, rules, reasons, evidence, decisions: all of it
        assert rebuilt.look_backs() == original.look_backs()
        assert rebuilt.list_visits(limit=1000) == original.list_visits(limit=1000)
    finally:
        rebuilt.close()


async def test_a_rebuild_under_another_policy_names_what_its_rules_did_not_derive_split_or_not(
    service: RunningService, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    flag_c = await decided_and_published(service, kafka_bootstrap, topic_prefix)
    original: VisitsApplication = service.application
    policy = dataclasses.replace(original.policy, disabled_rules=frozenset({"not_the_owner"}))
    divergences = []
    for processes in (1, 3):
        rebuilt = VisitsApplication(sqlite_env(tmp_path / f"rebuilt-{processes}.sqlite"), policy=policy)
        try:
            report = await rebuild_from_topics(
                rebuilt,
                bootstrap_servers=kafka_bootstrap,
                topic_prefix=topic_prefix,
                group_id=f"{topic_prefix}.visits.rebuild.{processes}",
                processes=processes,
                split_from=0,
                timeout=60,
            )
        finally:
            rebuilt.close()
        assert report.processes == processes
        divergences.append(sorted(report.divergences))
    in_one, split = divergences
    assert any(f"flag {flag_c} was not derived again" in d for d in in_one), in_one
    assert split == in_one  # the processes' reports, gathered: the same as one process's
