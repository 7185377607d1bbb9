"""The authorisation matrix: every endpoint of every service × every role, in one table.

Columns (ROLES): rp a rep on their own data, ot another rep (same region) on it, mg the region's
manager, om a manager of another region, qc, hr, op(s), ad(min). `Y`: allowed — the call succeeds
(2xx); `.`: refused with 403. A manager's region is their token's claim in visits and reviews; in leads it is what the
rotation service's events said (the other region's manager there even claims this region in their
token). Every allowed answer is also read for leaks: a rep sees no other rep's id and no flags, a
manager no other region. Calls without a valid token (none, expired, forged, …) are refused with
401 by tests/integration/test_authentication.py, for the same operations this table must cover.
"""

# ruff: noqa: E501 -- one row of the matrix per line, its marks in columns under the roles

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tests.integration.test_authentication import OPEN
from tests.support.authz_worlds import (
    ROLES,
    WORLDS,
    Arrange,
    LeadsWorld,
    Params,
    ReviewsWorld,
    RotationWorld,
    VisitsWorld,
    World,
)

Body = dict[str, Any] | list[Any] | None


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # `{name}` is filled from the world's ids and the cell's arrangement
    allowed: str  # one mark per role, in ROLES order: Y allowed, . refused
    body: Body = None
    query: dict[str, str] = field(default_factory=dict)
    arrange: Arrange | None = None  # per cell: things of its own to act on, and who acts
    public: bool = False  # the answer is meant for everyone (no leak check)

    @property
    def endpoint(self) -> str:
        """The operation, whatever its path parameters are called."""
        return endpoint(self.method, self.path)


def endpoint(method: str, path: str) -> str:
    return f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"


def row(
    allowed: str,
    method: str,
    path: str,
    body: Body = None,
    *,
    query: dict[str, str] | None = None,
    arrange: Arrange | None = None,
    public: bool = False,
) -> Row:
    marks = allowed.replace(" ", "")
    assert len(marks) == len(ROLES) and set(marks) <= {"Y", "."}, (path, allowed)
    return Row(method, path, marks, body, query or {}, arrange, public)


def why(reason: str) -> dict[str, str]:
    return {"reason": reason}


def clock_rows() -> list[Row]:
    return [
        #        rp ot mg om qc hr op ad
        row("Y  Y  Y  Y  Y  Y  Y  Y", "GET", "/_clock", public=True),
        row(".  .  .  .  .  .  Y  Y", "POST", "/_clock", {"advance_seconds": 0}, public=True),
    ]


# fmt: off
ADDRESS = {"line": "1 Wensan Road", "city": "Hangzhou", "lat": 30.27, "lon": 120.15}
LEAD = {"company_name": "{company}", "region": "hangzhou", "address": ADDRESS, "score": 70, "source": "fair"}
REP = {"rep_id": "{subject}", "name": "New Rep", "region": "hangzhou", "joined_on": "2025-01-06"}
L = LeadsWorld

LEADS = [
    *clock_rows(),
    #    rp ot mg om qc hr op ad
    row(".  .  Y  .  .  Y  .  Y", "POST", "/reps", REP, arrange=L.new_rep_id),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/reps/{rep}"),
    row(".  .  Y  .  .  Y  .  Y", "PUT", "/reps/{rep}/quota", {"daily_quota": 35}),
    row(".  .  Y  .  .  Y  .  Y", "PUT", "/reps/{rep}/private-pool-cap", {"private_pool_cap": 25}),
    row(".  .  Y  .  .  Y  .  Y", "POST", "/reps/{subject}/deactivation", why("left"), arrange=L.fresh_rep),
    row(".  .  Y  .  .  Y  .  Y", "POST", "/reps/{subject}/reactivation", arrange=L.inactive_rep),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/reps/{rep}/workbench"),
    row(".  .  Y  .  .  .  .  Y", "POST", "/leads", LEAD, arrange=L.company),
    row(".  .  Y  .  .  .  .  Y", "POST", "/leads/imports", {"leads": [LEAD]}, arrange=L.company),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/leads/{lead}"),
    row(".  .  Y  .  Y  Y  Y  Y", "GET", "/leads/{pool_lead}"),
    row(".  .  Y  .  .  .  .  Y", "POST", "/leads/{lead}/assignment", {"rep_id": "{subject}"}, arrange=L.pool_lead),
    row("Y  .  .  .  .  .  .  Y", "POST", "/leads/{lead}/follow-ups", {"note": "called"}, arrange=L.owned_lead),
    row("Y  .  .  .  .  .  .  Y", "POST", "/leads/{lead}/private", {}, arrange=L.owned_lead),
    row("Y  .  Y  .  .  .  .  Y", "POST", "/leads/{lead}/release", why("no budget"), arrange=L.owned_lead),
    row("Y  .  Y  .  .  .  .  Y", "POST", "/leads/{lead}/conversion", {"note": "signed"}, arrange=L.owned_lead),
    row("Y  .  Y  .  .  .  .  Y", "POST", "/leads/{lead}/closure", why("closed down"), arrange=L.owned_lead),
    row(".  .  Y  .  .  .  .  Y", "POST", "/distributions", {"region": "hangzhou"}),
    row(".  .  .  .  .  .  .  Y", "POST", "/distributions", {}),
    row(".  .  .  .  .  .  .  Y", "POST", "/reclaims"),
    row("Y  Y  Y  Y  Y  Y  Y  Y", "GET", "/pool", public=True),
    row(".  .  Y  .  Y  Y  Y  Y", "GET", "/pool/{region}/leads"),
    row(".  .  Y  .  Y  Y  Y  Y", "GET", "/regions/{region}"),
]

V = VisitsWorld
VISIT = {
    "lead_id": "{lead}",
    "visited_at": "{at}",
    "position": {"lat": 30.2741, "lon": 120.1551},
    "checkin": {"position": {"lat": 30.2741, "lon": 120.1551, "accuracy_m": 10}, "photo_hash": "sha256:abcdef12"},
}

VISITS = [
    *clock_rows(),
    #    rp ot mg om qc hr op ad
    row("Y  Y  .  .  .  .  .  .", "POST", "/visits", VISIT, arrange=V.visit_time),
    row("Y  Y  Y  Y  Y  .  Y  Y", "GET", "/visits"),
    row("Y  .  Y  Y  Y  .  Y  Y", "GET", "/visits", query={"rep_id": "{rep}"}),
    row("Y  Y  Y  .  Y  .  Y  Y", "GET", "/visits", query={"region": "{region}"}),
    row("Y  .  Y  .  Y  .  Y  Y", "GET", "/visits/{visit}"),
    row("Y  .  .  .  .  .  .  .", "POST", "/visits/{visit}/corrections", {"reason": "typo", "notes": "met the owner"}, arrange=V.own_visit),
    row(".  .  Y  Y  Y  .  Y  Y", "GET", "/flags"),
    row(".  .  Y  .  Y  .  Y  Y", "GET", "/flags", query={"region": "{region}"}),
    row(".  .  Y  .  Y  .  Y  Y", "GET", "/flags/{flag}"),
    row(".  .  .  .  Y  .  .  .", "POST", "/flags/{flag}/confirmation", {"reason": "no check-in", "fabrication": False}, arrange=V.open_flag),
    row(".  .  .  .  Y  .  .  .", "POST", "/flags/{flag}/dismissal", why("was there"), arrange=V.open_flag),
    row(".  .  .  .  Y  .  .  Y", "POST", "/reps/{rep}/look-backs", why("red line found")),
    row(".  .  .  .  Y  .  Y  Y", "GET", "/look-backs"),
    row(".  .  .  .  Y  .  Y  Y", "GET", "/look-backs/{look_back}"),
    row(".  .  Y  Y  Y  .  Y  Y", "GET", "/minor-breaches"),
    row(".  .  Y  Y  Y  .  Y  Y", "GET", "/minor-breaches/summaries"),
    row(".  .  .  .  .  .  Y  Y", "POST", "/minor-breaches/summaries", {"week_start": "{week}"}),
    row(".  .  Y  .  Y  .  Y  Y", "GET", "/leads/{lead}/ownership", query={"rep_id": "{rep}", "at": "{at}"}),
    row(".  .  Y  .  Y  .  Y  Y", "GET", "/leads/{lead}/owners"),
    row(".  .  Y  Y  Y  .  Y  Y", "GET", "/audit/reps/{rep}"),
    row(".  .  Y  Y  Y  .  Y  Y", "GET", "/audit/leads/{lead}"),
]

R = ReviewsWorld
VALUES = ("customer_first", "teamwork", "embrace_change", "integrity", "passion", "dedication")
EVIDENCE = [{"value": v, "level": 1, "example": f"{v}: went back to the customer twice"} for v in VALUES]
CASE = {"rep_id": "{subject}", "rule_code": "fabricated_visit", "evidence": [{"kind": "visit", "ref": "v-9"}]}
Q = {"quarter": "{quarter}"}

REVIEWS = [
    *clock_rows(),
    #    rp ot mg om qc hr op ad
    row(".  .  Y  .  .  Y  .  Y", "POST", "/reviews/quarters", {"region": "{region}", **Q}),
    row(".  .  Y  .  .  Y  .  Y", "POST", "/reviews", {"rep_id": "{subject}", **Q}, arrange=R.fresh_rep),
    row(".  .  Y  .  Y  Y  Y  Y", "GET", "/reviews", query={"region": "{region}", **Q}),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/reviews/{review}"),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/reviews/{review}/evidence"),
    row("Y  .  .  .  .  .  .  .", "POST", "/reviews/{review}/self-assessment", {"evidence": EVIDENCE}, arrange=R.open_review),
    row(".  .  Y  .  .  .  .  .", "POST", "/reviews/{review}/manager-assessment", {"evidence": EVIDENCE}, arrange=R.open_review),
    row(".  .  Y  .  .  .  .  .", "POST", "/reviews/{review}/performance-rating", {"rating": 3, "comment": "a fair quarter"}, arrange=R.open_review),
    row(".  .  .  .  .  Y  .  .", "POST", "/reviews/{review}/calibration", why("in line"), arrange=R.assessed_review),
    row(".  .  .  .  .  Y  .  .", "POST", "/reviews/{review}/completion", arrange=R.calibrated_review),
    row(".  .  .  .  .  Y  .  .", "POST", "/reviews/{review}/corrections", {"rating": 5, "reason": "late sale"}, arrange=R.completed_review),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/reps/{rep}/reviews"),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/reps/{rep}/results", query=Q),
    row(".  .  Y  .  Y  Y  Y  Y", "GET", "/regions/{region}/distribution", query=Q),
    row("Y  Y  Y  Y  Y  Y  Y  Y", "GET", "/red-line-rules", public=True),
    row(".  .  .  .  .  Y  .  Y", "POST", "/red-line-rules", {"code": "{code}", "name": "Kickbacks"}, arrange=R.new_rule_code),
    row(".  .  .  .  .  Y  .  Y", "POST", "/red-line-rules/{code}/retirement", why("merged"), arrange=R.rule_in_force),
    row("Y  Y  Y  Y  Y  Y  Y  Y", "GET", "/red-line-cases"),
    row("Y  .  Y  Y  Y  Y  Y  Y", "GET", "/red-line-cases", query={"rep_id": "{rep}"}),
    row("Y  Y  Y  .  Y  Y  Y  Y", "GET", "/red-line-cases", query={"region": "{region}"}),
    row("Y  .  Y  .  Y  Y  Y  Y", "GET", "/red-line-cases/{case}"),
    row(".  .  .  .  Y  Y  .  .", "POST", "/red-line-cases", {**CASE, "description": "cash advance"}, arrange=R.fresh_rep),
    row(".  .  .  .  .  Y  .  .", "POST", "/red-line-cases/{case}/decision", {"decision": "dismissed", "reason": "no proof"}, arrange=R.open_case),
]

T = RotationWorld
PLACE = {"lat": 31.2, "lon": 121.4}
MANAGER = {"manager_id": "{manager}", "name": "New Manager", "level": "regional", "home_base": PLACE}
POSTING = {"region": "wuhan", "start": "2024-01-01T00:00:00Z", "end": "2024-09-01T00:00:00Z"}

ROTATION = [
    *clock_rows(),
    #    rp ot mg om qc hr op ad
    row("Y  Y  Y  Y  Y  Y  Y  Y", "GET", "/regions", public=True),
    row(".  .  .  .  .  Y  .  Y", "POST", "/regions", {"code": "{code}", "name": "New", "location": PLACE}, arrange=T.new_code),
    row("Y  Y  Y  Y  Y  Y  Y  Y", "GET", "/regions/{region}", public=True),
    row(".  .  .  .  .  Y  .  Y", "GET", "/managers"),
    row(".  .  .  .  .  Y  .  Y", "POST", "/managers", MANAGER, arrange=T.new_manager_id),
    row(".  .  Y  .  .  Y  .  Y", "GET", "/managers/{manager}"),
    row(".  .  Y  .  .  Y  .  Y", "GET", "/managers/{manager}/history"),
    row(".  .  .  .  .  Y  .  Y", "POST", "/managers/{manager}/appointment", {"region": "{code}"}, arrange=T.unposted_manager),
    row(".  .  .  .  .  Y  .  Y", "POST", "/managers/{manager}/past-postings", POSTING, arrange=T.posted_manager),
    row(".  .  Y  .  .  Y  .  Y", "POST", "/managers/{manager}/deferral", {"reason": "newborn", "until": "2026-05-01T00:00:00Z"}, arrange=T.posted_manager),
    row(".  .  .  .  .  Y  .  Y", "POST", "/managers/{manager}/deferral/approval", arrange=T.deferral_asked),
    row(".  .  .  .  .  Y  .  Y", "POST", "/managers/{manager}/deferral/rejection", why("needed there"), arrange=T.deferral_asked),
    row(".  .  Y  .  .  Y  .  Y", "POST", "/managers/{manager}/declines", {"plan_id": "{plan}", "reason": "family"}, arrange=T.moved_by_a_plan),
    row(".  .  .  .  .  Y  .  Y", "GET", "/deferral-requests"),
    row(".  .  .  .  .  Y  .  Y", "GET", "/due"),
    row(".  .  .  .  .  Y  .  Y", "GET", "/plans/preview"),
    row(".  .  .  .  .  Y  .  Y", "POST", "/plans", {}, arrange=T.room_to_plan),
    row(".  .  .  .  .  Y  .  Y", "GET", "/plans"),
    row(".  .  .  .  .  Y  .  Y", "GET", "/plans/{plan}"),
    row(".  .  .  .  .  Y  .  Y", "POST", "/plans/{plan}/approval", arrange=T.proposed_plan),
    row(".  .  .  .  .  Y  .  Y", "POST", "/plans/{plan}/withdrawal", why("budget"), arrange=T.proposed_plan),
]

# fmt: on

TABLES: dict[str, list[Row]] = {"leads": LEADS, "visits": VISITS, "reviews": REVIEWS, "rotation": ROTATION}


# --- reading an answer for leaks ------------------------------------------------------------------


def leaks(answer: Any, *, rep: str | None, region: str | None) -> list[str]:
    """What an answer shows that its reader may not see: another rep's id or any flag (to a rep),
    another region (to a manager)."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")
        elif isinstance(node, dict):
            for key, value in node.items():
                at = f"{where}.{key}"
                if rep is not None and key in ("rep_id", "owner_id") and value not in (None, rep):
                    found.append(f"{at}={value}")
                if rep is not None and key in ("flag_ids", "fabrication_confirmed") and value is not None:
                    found.append(f"{at}={value}")
                if region is not None and key == "region" and value not in (None, region):
                    found.append(f"{at}={value}")
                walk(value, at)

    walk(answer, "$")
    return found


def fill(template: Any, params: Params) -> Any:
    if isinstance(template, str):
        return template.format_map(params) if "{" in template else template
    if isinstance(template, dict):
        return {key: fill(value, params) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(item, params) for item in template]
    return template


async def play(world: World, entry: Row, role: str, expected_allowed: bool) -> str | None:
    """One cell: arrange, call as the role, compare. Returns what went wrong, if anything."""
    params: Params = dict(world.ids)
    if entry.arrange is not None:
        params.update(entry.arrange(world, role))
    actor = world.actors[role]
    if "actor" in params:  # the cell's own rep or manager, acting on their own record
        actor = replace(actor, actor_id=params["actor"])
    stored = world.context.application.recorder.max_notification_id()
    response = await world.client.request(
        entry.method,
        fill(entry.path, params),
        json=fill(entry.body, params),
        params=fill(entry.query, params),
        headers=world.headers(actor),
    )
    status = response.status_code
    if not expected_allowed:
        if status != 403:
            return f"expected 403, got {status}: {response.text[:200]}"
        written = world.context.application.recorder.max_notification_id()
        return None if written == stored else f"refused, yet the store grew from {stored} to {written}"
    if status >= 300:
        return f"expected 2xx, got {status}: {response.text[:200]}"
    if entry.public:
        return None
    shown = leaks(
        response.json(),
        rep=actor.actor_id if actor.role == "rep" else None,
        region=actor.region if actor.role == "manager" and world.region_scoped else None,
    )
    return f"leaks {shown[:5]}" if shown else None


@pytest.fixture(scope="module", params=sorted(TABLES))
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    built = WORLDS[request.param](tmp_path_factory.mktemp(f"authz-{request.param}"))
    try:
        yield built
    finally:
        await built.close()


async def test_every_endpoint_answers_every_role_as_the_matrix_says(world: World) -> None:
    table = TABLES[world.name]
    paths = world.app.openapi()["paths"]
    documented = {endpoint(m, p) for p, item in paths.items() for m in item if p not in OPEN}
    covered = {entry.endpoint for entry in table}
    assert documented == covered, {"not in the table": documented - covered, "gone": covered - documented}
    wrong: dict[str, str] = {}
    for entry in table:
        for role, mark in zip(ROLES, entry.allowed, strict=True):
            problem = await play(world, entry, role, mark == "Y")
            if problem is not None:
                query = "&".join(f"{k}={v}" for k, v in entry.query.items())
                wrong[f"{entry.method} {entry.path}{'?' + query if query else ''} as {role}"] = problem
    assert not wrong, "\n" + "\n".join(f"{cell}: {problem}" for cell, problem in wrong.items())
