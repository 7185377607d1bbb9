"""What the authorisation matrix acts on: each service's real app in-process on SQLite (no Kafka
loops), its state arranged through its own application and the events it consumes, and who plays
each role of the matrix."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
from fastapi import FastAPI

from services.leads.application import LeadsApplication
from services.leads.bootstrap import spec as leads_spec
from services.leads.domain.values import Address, NewLead
from services.reviews.application import ReviewsApplication
from services.reviews.bootstrap import spec as reviews_spec
from services.reviews.domain.values import EvidenceLink
from services.reviews.policy import RedLineRule
from services.rotation.application import RotationApplication
from services.rotation.bootstrap import spec as rotation_spec
from services.visits.application import VisitsApplication
from services.visits.bootstrap import spec as visits_spec
from services.visits.domain.values import GeoPoint
from shared.clock import MovableClock
from shared.domain import Meta
from shared.service import ServiceContext, ServiceSpec, build_service
from shared.settings import ServiceSettings
from shared.web import create_app
from tests.unit.leads.given import Topic as RotationTopic
from tests.unit.leads.given import appoint
from tests.unit.reviews.given import Topics as ReviewsTopics
from tests.unit.reviews.given import evidence
from tests.unit.visits.support import LeadsTopic

# The matrix's columns: a rep on their own data, a rep on another rep's, the region's manager,
# a manager of another region, and the four roles without a region.
ROLES = ("rep", "other_rep", "manager", "other_manager", "qc", "hr", "ops", "admin")

Params = dict[str, str]
# Per cell: arranges things of its own to act on; takes the World of its row's service (a subclass).
Arrange = Callable[[Any, str], Params]


@dataclass(frozen=True)
class Actor:
    actor_id: str
    role: str
    region: str | None = None  # the region they really manage (what their answers may show)
    token_region: str | None = None  # the region their token claims


def cast(**overrides: Actor) -> dict[str, Actor]:
    actors = {
        "rep": Actor("rep-a", "rep"),
        "other_rep": Actor("rep-b", "rep"),  # same region as rep-a: only ownership tells them apart
        "manager": Actor("mgr-hz", "manager", "hangzhou", "hangzhou"),
        "other_manager": Actor("mgr-nb", "manager", "ningbo", "ningbo"),
        "qc": Actor("qc-1", "qc"),
        "hr": Actor("hr-1", "hr"),
        "ops": Actor("ops-1", "ops"),
        "admin": Actor("admin-1", "admin"),
    }
    actors.update(overrides)
    return actors


@dataclass
class World:
    """One service's app and the named things the matrix's rows act on (`ids`)."""

    name: str
    context: ServiceContext[Any]
    app: FastAPI
    client: httpx.AsyncClient
    clock: MovableClock
    actors: dict[str, Actor]
    ids: dict[str, str] = field(default_factory=dict)
    # Managers' answers show only their region (rotation's managers act for themselves instead).
    region_scoped: bool = True
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fresh(self, prefix: str) -> str:
        """A name nobody used yet in this world."""
        return f"{prefix}-{next(self._names)}"

    def headers(self, actor: Actor) -> dict[str, str]:
        token = self.context.tokens.issue(actor.actor_id, actor.role, region=actor.token_region)
        return {"Authorization": f"Bearer {token}"}

    def meta(self, actor_id: str, role: str) -> Meta:
        return Meta(actor_id=actor_id, actor_role=role, at=self.clock.now())

    async def close(self) -> None:
        await self.client.aclose()
        self.context.application.close()


W = TypeVar("W", bound=World)


def _world(
    kind: type[W],
    name: str,
    spec: ServiceSpec[Any],
    data_dir: Path,
    start: datetime,
    actors: dict[str, Actor],
) -> W:
    settings_class: type[ServiceSettings] = spec.settings_class
    settings = settings_class(
        environment="test", store="sqlite", data_dir=data_dir, clock="movable", topic_prefix="authz"
    )
    clock = MovableClock(start)
    context = build_service(spec, settings, clock)
    app = create_app(context)  # its lifespan (relay, consumers, scheduler) is never started
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
    return kind(name=name, context=context, app=app, client=client, clock=clock, actors=actors)


# --- leads ----------------------------------------------------------------------------------

LEADS_NOW = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Hangzhou
HANGZHOU_ADDRESS = Address("1 Wensan Road", "Hangzhou", 30.2741, 120.1551)


@dataclass
class LeadsWorld(World):
    @property
    def leads(self) -> LeadsApplication:
        application = self.context.application
        assert isinstance(application, LeadsApplication)
        return application

    def admin(self) -> Meta:
        return self.meta("admin-1", "admin")

    def hire(self, rep_id: str, region: str = "hangzhou") -> str:
        self.leads.register_rep(rep_id, rep_id.title(), region, date(2025, 1, 6), self.admin())
        return rep_id

    def register(self, region: str = "hangzhou") -> str:
        new = NewLead(self.fresh(f"Company {region}"), region, HANGZHOU_ADDRESS, 60.0, "trade-fair")
        return str(self.leads.register_lead(new, self.admin()))

    def owned(self, rep_id: str) -> str:
        lead_id = self.register()
        self.leads.assign_lead(lead_id, rep_id, self.admin())
        return lead_id

    # Per-cell arrangements: each cell acts on things of its own, so no cell sees another's effect.

    def fresh_rep(self, role: str) -> Params:
        """A new rep of the region; a rep's cell acts as them (on their own record)."""
        rep_id = self.hire(self.fresh("rep-fresh"))
        return {"subject": rep_id, **({"actor": rep_id} if role == "rep" else {})}

    def inactive_rep(self, role: str) -> Params:
        params = self.fresh_rep(role)
        self.leads.deactivate_rep(params["subject"], "on leave", self.admin())
        return params

    def owned_lead(self, role: str) -> Params:
        """A lead assigned to a new rep of the region; a rep's cell acts as that owner."""
        params = self.fresh_rep(role)
        return {**params, "lead": self.owned(params["subject"])}

    def pool_lead(self, role: str) -> Params:
        """A new pool lead and a new rep of the region it may be assigned to."""
        return {"lead": self.register(), "subject": self.hire(self.fresh("rep-fresh"))}

    def company(self, role: str) -> Params:
        return {"company": self.fresh("Company hangzhou")}

    def new_rep_id(self, role: str) -> Params:
        return {"subject": self.fresh("rep-new")}


def leads_world(data_dir: Path) -> LeadsWorld:
    # The other region's manager claims hangzhou in their token: in leads the claim decides
    # nothing, the rotation service's events do.
    actors = cast(other_manager=Actor("mgr-nb", "manager", "ningbo", "hangzhou"))
    world = _world(LeadsWorld, "leads", leads_spec(), data_dir, LEADS_NOW, actors)
    rotation = RotationTopic(world.leads, "rotation")
    assert appoint(rotation, "mgr-hz", "hangzhou", LEADS_NOW - timedelta(days=30))
    assert appoint(rotation, "mgr-nb", "ningbo", LEADS_NOW - timedelta(days=30))
    for rep_id in ("rep-a", "rep-b"):
        world.hire(rep_id)
    world.hire("rep-n", "ningbo")
    # rep-b had the lead before rep-a: rep-a must not see rep-b's stretch of it.
    lead = world.owned("rep-b")
    world.leads.release_lead(lead, "rep-b", "not interested", world.meta("rep-b", "rep"))
    world.leads.assign_lead(lead, "rep-a", world.admin())
    world.ids.update(rep="rep-a", lead=lead, pool_lead=world.register(), region="hangzhou")
    return world


# --- visits ---------------------------------------------------------------------------------

VISITS_START = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday of the week of 2 March
VISITS_NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)  # a week later: that week is over
HANGZHOU = GeoPoint(30.2741, 120.1551, 10.0)
NINGBO = GeoPoint(29.8683, 121.5440, 10.0)
PHOTO = "sha256:" + "ab" * 32


@dataclass
class VisitsWorld(World):
    @property
    def visits(self) -> VisitsApplication:
        application = self.context.application
        assert isinstance(application, VisitsApplication)
        return application

    def log(self, rep_id: str, lead: str, minutes_ago: float, where: GeoPoint = HANGZHOU) -> str:
        meta = self.meta(rep_id, "rep")
        return self.visits.log_visit(
            lead_id=lead,
            visited_at=meta.at - timedelta(minutes=minutes_ago),
            position=where,
            checkin_position=where,
            photo_hash=PHOTO,
            notes="met the buyer",
            meta=meta,
        )

    def flagged(self, rep_id: str, lead: str, where: GeoPoint = HANGZHOU) -> str:
        """A visit to a lead the rep does not own: it raises a flag; returns the flag's id."""
        visit_id = self.log(rep_id, lead, float(next(self._names)), where)
        flags = self.visits.get_visit(visit_id).flag_ids
        assert flags, f"visit {visit_id} raised no flag"
        return str(flags[0])

    def own_visit(self, role: str) -> Params:
        return {"visit": self.log("rep-a", self.ids["lead"], float(next(self._names)))}

    def visit_time(self, role: str) -> Params:
        """A moment no visit of the world claims (a visit's id comes from its rep, lead and time)."""
        return {"at": (self.clock.now() - timedelta(minutes=float(next(self._names)))).isoformat()}

    def open_flag(self, role: str) -> Params:
        return {"flag": self.flagged("rep-a", self.ids["other_lead"])}


def visits_world(data_dir: Path) -> VisitsWorld:
    world = _world(VisitsWorld, "visits", visits_spec(), data_dir, VISITS_START, cast())
    topic = LeadsTopic(world.visits)
    since = VISITS_START - timedelta(days=2)
    owners = {
        "L1": ("rep-a", "hangzhou"),
        "L2": ("rep-b", "hangzhou"),
        "L3": ("rep-n", "ningbo"),
        "L4": ("rep-m", "ningbo"),
    }
    for lead, (rep_id, region) in owners.items():
        topic.registered(lead, since, region=region, customer=HANGZHOU if region == "hangzhou" else NINGBO)
        topic.assigned(lead, rep_id, since + timedelta(hours=1), region=region)
    # Entered 30 hours late in the week of 2 March: a minor breach, summarised once that week is over.
    world.log("rep-a", "L1", 30 * 60)
    world.clock.set(VISITS_NOW)
    world.visits.summarise_minor_breaches(date(2026, 3, 2), meta=world.meta("ops-1", "ops"))
    world.ids.update(
        rep="rep-a",
        lead="L1",
        other_lead="L2",
        region="hangzhou",
        visit=world.log("rep-a", "L1", 60),
        other_visit=world.log("rep-b", "L2", 60),
        ningbo_visit=world.log("rep-n", "L3", 60, NINGBO),
        flag=world.flagged("rep-a", "L2"),
        ningbo_flag=world.flagged("rep-n", "L4", NINGBO),
        at=(VISITS_NOW - timedelta(hours=1)).isoformat(),
        week="2026-03-02",
    )
    world.ids["look_back"] = world.visits.look_back(
        "rep-a", reason="a red line elsewhere", meta=world.meta("qc-2", "qc")
    )
    return world


# --- reviews --------------------------------------------------------------------------------

REVIEWS_NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)  # late in 2026Q1
QUARTER = "2026Q1"
RULE = "fabricated_visit"


@dataclass
class ReviewsWorld(World):
    topics: ReviewsTopics | None = None

    @property
    def reviews(self) -> ReviewsApplication:
        application = self.context.application
        assert isinstance(application, ReviewsApplication)
        return application

    def hr(self) -> Meta:
        return self.meta("hr-1", "hr")

    def enrol(self, rep_id: str, region: str = "hangzhou") -> str:
        """A rep on the roster, as the leads topic announces them."""
        assert self.topics is not None
        self.topics.reps(region, rep_id)
        return rep_id

    def review_of(self, rep_id: str) -> str:
        return str(self.reviews.open_review(rep_id, QUARTER, self.hr()))

    def case_of(self, rep_id: str) -> str:
        links = [EvidenceLink("visit", f"visit-of-{rep_id}", "")]
        return str(self.reviews.open_red_line_case(rep_id, RULE, links, "seen by qc", self.hr()))

    # Per-cell arrangements: a new rep of the region with their own review; a rep's cell is them.

    def fresh_rep(self, role: str) -> Params:
        rep_id = self.enrol(self.fresh("rep-fresh"))
        return {"subject": rep_id, **({"actor": rep_id} if role == "rep" else {})}

    def open_review(self, role: str) -> Params:
        params = self.fresh_rep(role)
        return {**params, "review": self.review_of(params["subject"])}

    def assessed_review(self, role: str) -> Params:
        params = self.open_review(role)
        review_id, manager = UUID(params["review"]), self.meta("mgr-hz", "manager")
        self.reviews.assess_values(review_id, evidence(4, 4, 4, 4, 4, 4), manager, caller_region="hangzhou")
        self.reviews.rate_performance(
            review_id, 4, "steady quarter, two new customers", manager, caller_region="hangzhou"
        )
        return params

    def calibrated_review(self, role: str) -> Params:
        params = self.assessed_review(role)
        self.reviews.calibrate(UUID(params["review"]), [], None, "consistent with the region", self.hr())
        return params

    def completed_review(self, role: str) -> Params:
        params = self.calibrated_review(role)
        self.reviews.complete_review(UUID(params["review"]), self.hr())
        return params

    def open_case(self, role: str) -> Params:
        params = self.fresh_rep(role)
        return {**params, "case": self.case_of(params["subject"])}

    def new_rule_code(self, role: str) -> Params:
        return {"code": self.fresh("rule").replace("-", "_")}

    def rule_in_force(self, role: str) -> Params:
        code = self.new_rule_code(role)["code"]
        self.reviews.add_red_line_rule(RedLineRule(code, f"Rule {code}", "", ""), self.hr())
        return {"code": code}


def reviews_world(data_dir: Path) -> ReviewsWorld:
    world = _world(ReviewsWorld, "reviews", reviews_spec(), data_dir, REVIEWS_NOW, cast())
    world.topics = ReviewsTopics(world.reviews)
    for rep_id in ("rep-a", "rep-b"):
        world.enrol(rep_id)
    world.enrol("rep-n", "ningbo")
    review = world.review_of("rep-a")
    for rep_id in ("rep-b", "rep-n"):
        world.review_of(rep_id)
    world.reviews.self_assess(UUID(review), evidence(3, 3, 3, 3, 3, 3), world.meta("rep-a", "rep"))
    world.ids.update(
        rep="rep-a", region="hangzhou", quarter=QUARTER, review=review, case=world.case_of("rep-a")
    )
    for rep_id in ("rep-b", "rep-n"):
        world.case_of(rep_id)
    return world


# --- rotation -------------------------------------------------------------------------------

ROTATION_NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE_SINCE = ROTATION_NOW - timedelta(days=240)  # eight months in post: due
SETTLED_SINCE = ROTATION_NOW - timedelta(days=30)  # below the minimum tenure: never moved


@dataclass
class RotationWorld(World):
    @property
    def rotation(self) -> RotationApplication:
        application = self.context.application
        assert isinstance(application, RotationApplication)
        return application

    def hr(self) -> Meta:
        return self.meta("hr-1", "hr")

    def region(self, code: str) -> str:
        self.rotation.open_region(code, code.title(), 30.0 + next(self._names) % 10, 120.0, self.hr())
        return code

    def manager(self, manager_id: str, region: str | None = None, since: datetime = SETTLED_SINCE) -> str:
        self.rotation.register_manager(manager_id, manager_id.title(), "regional", 30.2, 120.1, self.hr())
        if region is not None:
            self.rotation.appoint_manager(manager_id, region, self.hr(), since=since)
        return manager_id

    def due_pair(self) -> str:
        """Two new regions whose managers are due: a plan always has a move for them. Returns one."""
        first = self.manager(self.fresh("mgr-due"), self.region(self.fresh("r")), DUE_SINCE)
        self.manager(self.fresh("mgr-due"), self.region(self.fresh("r")), DUE_SINCE)
        return first

    def no_approved_plan(self) -> None:
        for plan in self.rotation.plans("approved"):
            self.rotation.withdraw_plan(plan.plan_id, "making room for the next cell", self.hr())

    # Per-cell arrangements; a manager's cell acts as the manager concerned (their own record).

    def _self(self, manager_id: str, role: str) -> Params:
        return {"manager": manager_id, **({"actor": manager_id} if role == "manager" else {})}

    def new_code(self, role: str) -> Params:
        return {"code": self.fresh("r")}

    def new_manager_id(self, role: str) -> Params:
        return {"manager": self.fresh("mgr-new")}

    def posted_manager(self, role: str) -> Params:
        return self._self(self.manager(self.fresh("mgr"), self.region(self.fresh("r"))), role)

    def unposted_manager(self, role: str) -> Params:
        return {**self._self(self.manager(self.fresh("mgr")), role), "code": self.region(self.fresh("r"))}

    def deferral_asked(self, role: str) -> Params:
        params = self.posted_manager(role)
        until = self.clock.now() + timedelta(days=60)
        manager_id = params["manager"]
        self.rotation.request_deferral(
            manager_id, "a newborn at home", until, self.meta(manager_id, "manager")
        )
        return params

    def moved_by_a_plan(self, role: str) -> Params:
        self.no_approved_plan()
        manager_id = self.due_pair()
        plan_id = self.rotation.propose_plan(self.hr())
        return {**self._self(manager_id, role), "plan": str(plan_id)}

    def proposed_plan(self, role: str) -> Params:
        return {"plan": self.moved_by_a_plan(role)["plan"]}

    def room_to_plan(self, role: str) -> Params:
        self.no_approved_plan()
        self.due_pair()
        return {}


def rotation_world(data_dir: Path) -> RotationWorld:
    world = _world(RotationWorld, "rotation", rotation_spec(), data_dir, ROTATION_NOW, cast())
    world.region_scoped = False
    world.manager("mgr-hz", world.region("hangzhou"))
    world.manager("mgr-nb", world.region("ningbo"))
    world.due_pair()
    world.ids.update(manager="mgr-hz", region="hangzhou", plan=str(world.rotation.propose_plan(world.hr())))
    return world


WORLDS: Mapping[str, Callable[[Path], World]] = {
    "leads": leads_world,
    "visits": visits_world,
    "reviews": reviews_world,
    "rotation": rotation_world,
}
