"""`ironarmy replay` and `ironarmy audit` against the whole system, with data made over HTTP: every
service's rebuilt state equals the live one, a store that lacks events is reported as different,
and the audit trail of a rep or a lead is the cross-service timeline with its evidence."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner, Result

from shared.auth import TokenAuthority
from shared.cli import app as cli
from shared.cli.processes import System
from shared.settings import ServiceSettings
from tests.support.kafka_helpers import eventually_blocking

PHOTO = "sha256:" + "cd" * 32
WHERE = {"lat": 30.27, "lon": 120.15}  # the customers' address, and where honest visits happen


class Gateway:
    def __init__(self, system: System) -> None:
        self.url = f"http://127.0.0.1:{system.gateway_port}"
        settings = ServiceSettings()
        self.tokens = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer)

    def call(self, method: str, path: str, actor: str, role: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens.issue(actor, role)}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def ok(self, method: str, path: str, actor: str, role: str, **kwargs: Any) -> Any:
        response = self.call(method, path, actor, role, **kwargs)
        assert response.status_code in (200, 201), (method, path, response.status_code, response.text)
        return response.json()


@dataclass(frozen=True)
class Story:
    region: str
    honest_rep: str  # logs a visit to their own lead
    other_rep: str  # owns the lead the honest rep also "visited"
    leads: list[str]
    honest_visit: str
    fabricated_visit: str
    fabrication_flag: str
    started: datetime  # wall clock: Kafka's timestamps


@pytest.fixture(scope="module")
def story(system: System) -> Story:
    """A region, a manager, two reps and three leads; one honest visit, one to a colleague's
    lead that qc confirms as fabricated (a red-line case in reviews), and a quarter's review."""
    started = datetime.now(UTC) - timedelta(seconds=5)
    gw = Gateway(system)
    tag = uuid.uuid4().hex[:6]
    region, liu, chen = f"r{tag}", f"rep-liu-{tag}", f"rep-chen-{tag}"
    gw.ok("POST", "/rotation/regions", "hr-1", "hr", json={"code": region, "name": region, "location": WHERE})
    manager = f"mgr-{tag}"
    gw.ok(
        "POST",
        "/rotation/managers",
        "hr-1",
        "hr",
        json={"manager_id": manager, "name": "Wang", "level": "regional", "home_base": WHERE},
    )
    # Not appointed: a posted manager would join the rotation plans other tests of this system make.
    for rep in (liu, chen):
        body = {"rep_id": rep, "name": rep, "region": region, "joined_on": "2025-01-06"}
        gw.ok("POST", "/leads/reps", "hr-1", "hr", json=body)
    leads = [
        gw.ok(
            "POST",
            "/leads/leads",
            "admin-1",
            "admin",
            json={
                "company_name": f"Company {tag} {i}",
                "region": region,
                "address": {"line": f"{i} West Lake Road", "city": "Hangzhou", **WHERE},
                "score": 60 + i,
                "source": "trade-fair",
            },
        )["id"]
        for i in range(3)
    ]
    gw.ok("POST", f"/leads/leads/{leads[0]}/assignment", "admin-1", "admin", json={"rep_id": liu})
    gw.ok("POST", f"/leads/leads/{leads[1]}/assignment", "admin-1", "admin", json={"rep_id": chen})
    # Every service's clock two hours past the latest of them, so visits come after assignments.
    services = ("leads", "visits", "reviews", "rotation")
    latest = max(
        datetime.fromisoformat(gw.ok("GET", f"/{s}/_clock", "ops-1", "ops")["now"]) for s in services
    )
    now = latest + timedelta(hours=2)
    for service in services:
        gw.ok("POST", f"/{service}/_clock", "ops-1", "ops", json={"to": now.isoformat()})
    eventually_blocking(
        "visits knows the leads",
        lambda: all(
            gw.call("GET", f"/visits/leads/{lead}/owners", "qc-1", "qc").status_code == 200 for lead in leads
        ),
    )
    honest = gw.ok(
        "POST",
        "/visits/visits",
        liu,
        "rep",
        json={
            "lead_id": leads[0],
            "visited_at": (now - timedelta(minutes=60)).isoformat(),
            "left_at": (now - timedelta(minutes=30)).isoformat(),
            "position": WHERE,
            "checkin": {"position": WHERE, "photo_hash": PHOTO},
            "notes": "met the owner",
            "client_ref": f"app-{tag}-1",
        },
    )["id"]
    fabricated = gw.ok(
        "POST",
        "/visits/visits",
        liu,
        "rep",
        json={
            "lead_id": leads[1],
            "visited_at": (now - timedelta(minutes=20)).isoformat(),
            "position": WHERE,
            "notes": "a few customers from the system",
        },
    )["id"]
    flags = gw.ok("GET", "/visits/flags", "qc-1", "qc", params={"rep_id": liu})
    flag = next(f["flag_id"] for f in flags if f["visit_id"] == fabricated and f["rule"] == "not_the_owner")
    gw.ok(
        "POST",
        f"/visits/flags/{flag}/confirmation",
        "qc-1",
        "qc",
        json={"reason": "the lead was a colleague's", "fabrication": True},
    )
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    gw.ok("POST", "/reviews/reviews", "hr-1", "hr", json={"rep_id": liu, "quarter": quarter})
    eventually_blocking(
        "reviews opened the red-line case",
        lambda: bool(gw.ok("GET", "/reviews/red-line-cases", "hr-1", "hr", params={"rep_id": liu})),
    )
    eventually_blocking(
        "leads counted the honest visit as a follow-up",
        lambda: gw.ok("GET", f"/leads/leads/{leads[0]}", "admin-1", "admin")["follow_ups"] == 1,
    )
    return Story(region, liu, chen, leads, honest, fabricated, flag, started)


def run(system: System, *args: str, data_dir: Path | None = None) -> Result:
    env = dict(system.env)
    if data_dir is not None:
        env["IRONARMY_DATA_DIR"] = str(data_dir)
    gateway = f"http://127.0.0.1:{system.gateway_port}"
    return CliRunner().invoke(cli, [*args, "--api", gateway], env=env)


def report(result: Result) -> dict[str, dict[str, Any]]:
    return {entry["service"]: entry for entry in orjson.loads(result.stdout)}


def check(entry: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in entry["checks"] if c["name"] == name)


def copy_store(system: System, service: str, into: Path, *, drop_last: str) -> str:
    """A copy of a live store (as a backup would be) without its last event of a kind; returns
    the id of the aggregate that lost it."""
    into.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(Path(system.env["IRONARMY_DATA_DIR"]) / f"{service}.sqlite")
    copy = sqlite3.connect(into / f"{service}.sqlite")
    try:
        source.backup(copy)
        rowid, originator_id = copy.execute(
            "SELECT rowid, originator_id FROM stored_events WHERE topic LIKE ? ORDER BY rowid DESC LIMIT 1",
            (f"%{drop_last}%",),
        ).fetchone()
        copy.execute("DELETE FROM stored_events WHERE rowid = ?", (rowid,))
        copy.commit()
        return str(uuid.UUID(originator_id))
    finally:
        source.close()
        copy.close()


# --- replay ---------------------------------------------------------------------------------------


def test_replaying_every_service_finds_the_rebuilt_state_equal_to_the_live_one(
    system: System, story: Story
) -> None:
    result = run(system, "replay", "all", "--json")

    assert result.exit_code == 0, result.output
    services = report(result)
    assert set(services) == {"leads", "visits", "reviews", "rotation"}
    for name, entry in services.items():
        assert entry["verdict"] == "equal", (name, entry["checks"])
        live = check(entry, "rebuilt = live")
        assert live["ok"] is True and int(live["detail"].split()[0]) > 0, live
        assert entry["events"] > 0 and entry["events_per_second"] > 0
    visits = services["visits"]
    assert visits["mode"] == "rebuilt from the topics"
    assert check(visits, "rebuilt = store")["ok"] is True
    assert check(visits, "flags derived again")["ok"] is True
    # The story alone put 3 registrations, 2 assignments and 1 follow-up on the leads topic, and
    # 2 visits, 2 flags, a decision, a fabrication and a look-back on the visits topic.
    assert visits["events"] >= 3 + 2 + 1 + 2 + 2 + 3
    for name in ("leads", "reviews", "rotation"):
        assert services[name]["mode"].startswith("rebuilt from the store")
        assert check(services[name], f"{system.env['IRONARMY_TOPIC_PREFIX']}.{name} ↔ store")["ok"]


def test_replay_prints_a_table_per_service_with_events_per_second(system: System, story: Story) -> None:
    result = run(system, "replay", "rotation")

    assert result.exit_code == 0, result.output
    assert "rotation: rebuilt from the store" in result.stdout
    assert "rebuilt = live" in result.stdout
    assert "rotation: equal" in result.stdout and "events/s" in result.stdout


def test_a_leads_store_that_lacks_an_event_is_reported_as_different(
    system: System, story: Story, tmp_path: Path
) -> None:
    lead = copy_store(system, "leads", tmp_path, drop_last=":Lead.")  # e.g. the last follow-up

    result = run(system, "replay", "leads", "--json", data_dir=tmp_path)

    assert result.exit_code == 1, result.output
    leads = report(result)["leads"]
    assert leads["verdict"] == "different"
    live = check(leads, "rebuilt = live")
    assert live["ok"] is False
    assert any(f"GET /leads/{lead}" in d for d in live["differences"]), live["differences"]
    topic = check(leads, f"{system.env['IRONARMY_TOPIC_PREFIX']}.leads ↔ store")
    assert topic["ok"] is False and any("is not in the store" in d for d in topic["differences"])


def test_a_visits_store_that_lacks_an_event_differs_from_its_rebuild_from_the_topics(
    system: System, story: Story, tmp_path: Path
) -> None:
    copy_store(system, "visits", tmp_path, drop_last="VisitLog.")

    result = run(system, "replay", "visits", "--json", data_dir=tmp_path)

    assert result.exit_code == 1, result.output
    visits = report(result)["visits"]
    assert visits["verdict"] == "different"
    assert check(visits, "rebuilt = store")["ok"] is False
    # Rebuilt from the topics, it still answers as the live service does.
    assert check(visits, "rebuilt = live")["ok"] is True


def test_replay_since_a_moment_checks_that_window_of_the_topics_against_the_store(
    system: System, story: Story, tmp_path: Path
) -> None:
    since = story.started.isoformat()
    result = run(system, "replay", "visits", "--since", since, "--json")

    assert result.exit_code == 0, result.output
    visits = report(result)["visits"]
    assert visits["mode"].startswith("window since")
    assert visits["verdict"] == "equal" and visits["events"] >= 2 + 2 + 3

    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert report(run(system, "replay", "visits", "--since", later, "--json"))["visits"]["events"] == 0

    copy_store(system, "visits", tmp_path, drop_last="VisitLog.")
    diverged = run(system, "replay", "visits", "--since", since, "--json", data_dir=tmp_path)
    assert diverged.exit_code == 1, diverged.output
    assert report(diverged)["visits"]["verdict"] == "different"


def test_replay_of_a_store_that_is_not_there_compares_nothing(system: System, tmp_path: Path) -> None:
    result = run(system, "replay", "reviews", data_dir=tmp_path / "nowhere")

    assert result.exit_code == 2, result.output
    assert "no store at" in result.stdout
    assert not (tmp_path / "nowhere" / "reviews.sqlite").exists()


# --- audit --------------------------------------------------------------------------------------


def test_audit_rep_gives_the_cross_service_timeline_with_its_evidence_as_json(
    system: System, story: Story
) -> None:
    result = run(system, "audit", "rep", story.honest_rep, "--json")

    assert result.exit_code == 0, result.output
    entries = orjson.loads(result.stdout)
    kinds = [(e["source"], e["event_type"]) for e in entries]
    assert ("leads", "LeadAssigned") in kinds
    assert kinds.count(("visits", "VisitLogged")) == 2
    assert ("visits", "FabricationConfirmed") in kinds
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    # The flag names the leads event that proves the lead was the colleague's.
    assignment_to_other = orjson.loads(run(system, "audit", "lead", story.leads[1], "--json").stdout)[1]
    assert assignment_to_other["event_type"] == "LeadAssigned"
    assert assignment_to_other["rep_id"] == story.other_rep
    flagged = next(
        e for e in entries if e["event_type"] == "VisitFlagged" and story.fabrication_flag in e["summary"]
    )
    assert flagged["visit_id"] == story.fabricated_visit
    assert assignment_to_other["event_id"] in flagged["evidence"]


def test_audit_rep_on_one_lead_and_audit_lead_are_tables_for_people(system: System, story: Story) -> None:
    one_lead = run(system, "audit", "rep", story.honest_rep, "--lead", story.leads[0])
    assert one_lead.exit_code == 0, one_lead.output
    assert "LeadAssigned" in one_lead.stdout and "VisitLogged" in one_lead.stdout
    assert "VisitFlagged" not in one_lead.stdout  # the honest visit raised nothing

    lead = run(system, "audit", "lead", story.leads[1])
    assert lead.exit_code == 0, lead.output
    for event in ("LeadRegistered", "LeadAssigned", "VisitLogged", "VisitFlagged", "FabricationConfirmed"):
        assert event in lead.stdout
    assert "confirmed as fabrication" in lead.stdout and story.fabrication_flag[:8] in lead.stdout


def test_audit_of_someone_with_no_events_says_so(system: System, story: Story) -> None:
    result = run(system, "audit", "rep", f"rep-nobody-{uuid.uuid4().hex[:6]}")

    assert result.exit_code == 0, result.output
    assert "no events" in result.stdout
