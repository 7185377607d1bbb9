"""`ironarmy simulate`: a realistic organisation driven through the public HTTP API at a moved clock."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import orjson
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.auth import TokenAuthority
from shared.events.base import SERVICES
from shared.settings import ServiceSettings

T = TypeVar("T")

# The business day as the leads service keeps it by default: Shanghai time, distribution at 08:00.
ZONE = ZoneInfo("Asia/Shanghai")
VISIT_SLOTS = ((9, 0), (10, 30), (12, 0))  # an honest rep's visits, one every 90 minutes
EVENING = (17, 30)  # conversions, private-pool keeps and follow-up calls
MIN_REPS, MIN_DAYS = 6, 4  # one rep per planted role; the late entry needs three days' lag
PROBE_REGION = "simulation-probe"  # a region nobody opens: its view shows the last run for all

# Roles planted in the organisation; everyone else is a steady "bull" (老黄牛).
STAR, WILD_DOG, WHITE_RABBIT, LAZY, FABRICATOR, KEEPER, BULL = (
    "star",
    "wild_dog",
    "white_rabbit",
    "lazy",
    "fabricator",
    "keeper",
    "bull",
)
EXPECTED_CATEGORY = {
    STAR: "star",
    WILD_DOG: "wild_dog",
    WHITE_RABBIT: "white_rabbit",
    LAZY: "dog",
    FABRICATOR: "red_line",
    KEEPER: "bull",
    BULL: "bull",
}
# Leads converted in the quarter, values level per value, and the manager's rating, per role:
# chosen so each role lands in its talent category with a clear margin.
CONVERSIONS = {STAR: 10, WILD_DOG: 10, WHITE_RABBIT: 0, LAZY: 0, FABRICATOR: 1, KEEPER: 4, BULL: 4}
VALUE_LEVEL = {STAR: 5, WILD_DOG: 5, WHITE_RABBIT: 4, LAZY: 2, FABRICATOR: 3, KEEPER: 4, BULL: 4}
RATING = {STAR: 5, WILD_DOG: 5, WHITE_RABBIT: 2, LAZY: 1, FABRICATOR: 3, KEEPER: 5, BULL: 5}

# The fabrication patterns the visits service detects, and how qc judges each planted one.
PATTERNS = (
    "not_the_owner",
    "late_entry",
    "bulk_entry",
    "impossible_travel",
    "overlapping_visits",
    "far_from_customer",
    "missing_checkin_evidence",
    "duplicate_visit",
)
PROCEDURE_ONLY = frozenset({"late_entry", "missing_checkin_evidence"})  # breaches, not invented visits

CITIES = (
    ("hangzhou", "Hangzhou 杭州", 30.2741, 120.1551),
    ("shanghai", "Shanghai 上海", 31.2304, 121.4737),
    ("guangzhou", "Guangzhou 广州", 23.1291, 113.2644),
    ("shenzhen", "Shenzhen 深圳", 22.5431, 114.0579),
    ("beijing", "Beijing 北京", 39.9042, 116.4074),
    ("chengdu", "Chengdu 成都", 30.5728, 104.0668),
    ("wuhan", "Wuhan 武汉", 30.5928, 114.3055),
    ("nanjing", "Nanjing 南京", 32.0603, 118.7969),
    ("xiamen", "Xiamen 厦门", 24.4798, 118.0894),
    ("suzhou", "Suzhou 苏州", 31.2989, 120.5853),
    ("ningbo", "Ningbo 宁波", 29.8683, 121.5440),
    ("qingdao", "Qingdao 青岛", 36.0671, 120.3826),
)
SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun")
GIVEN_NAMES = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Qiang", "Yan", "Jun", "Tao", "Ming", "Hui")
BRANDS = ("Jinxing", "Huamei", "Tianrui", "Hengda", "Xinyuan", "Dongfang", "Haitian", "Jiahe", "Ruifeng")
TRADES = ("Trading", "Textiles", "Machinery", "Electronics", "Garments", "Hardware", "Ceramics", "Lighting")
ROADS = ("Jiefang", "Renmin", "Zhongshan", "Jianguo", "Wenhua", "Heping", "Xinhua", "Binjiang")
SOURCES = ("trade-fair", "cold-call", "referral", "website", "alibaba-inquiry")
EXAMPLES = {
    "customer_first": "went back three times to fix a shipping complaint before asking for the renewal",
    "teamwork": "handed two warm leads to a newcomer and joined their first visits",
    "embrace_change": "moved to the new CRM flow in the first week and taught the others",
    "integrity": "told the customer plainly which features the package does not include",
    "passion": "kept calling a cold account for a month until the owner agreed to meet",
    "dedication": "logged every visit the same day, even on the late trade-fair nights",
}


class SimulationError(RuntimeError):
    """The system answered something the story cannot go on from."""


# --- what the simulation is asked to do, and what it reports ------------------------------------


@dataclass(frozen=True)
class SimulationOptions:
    base_url: str = "http://127.0.0.1:8080"
    reps: int = 12
    days: int = 5
    seed: int = 7
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "ironarmy"
    jwt_secret: str = ""  # empty: the settings' secret
    jwt_issuer: str = ""  # empty: the settings' issuer
    tag: str | None = None  # suffix of every id made; default: from the seed and the start time
    concurrency: int = 8
    max_requests_per_second: float = 150.0  # stays under the gateway's per-client rate limit
    wait_seconds: float = 60.0  # deadline of each wait for eventual consistency

    def check(self) -> None:
        if self.reps < MIN_REPS:
            raise ValueError(f"--reps must be at least {MIN_REPS} (one rep for each planted role)")
        if self.days < MIN_DAYS:
            raise ValueError(f"--days must be at least {MIN_DAYS} (a late entry is logged 3 days on)")
        if self.days > 60:
            raise ValueError("--days must be at most 60 (the days stay within one quarter)")


@dataclass
class PlantedFabrication:
    pattern: str
    visit_ids: list[str]
    flag_ids: list[str]  # the flags of this rule about those visits
    flagged: bool  # every planted visit has a flag of its pattern
    decision: str  # how qc decided it: fabrication or procedure


@dataclass
class LazyRepStory:
    rep_id: str
    leads_given: int
    reclaimed: int  # reclaimed for want of follow-up
    reassigned: int  # of those, given to a colleague afterwards
    reassigned_to: dict[str, int]
    first_day_leads: int  # given on the first day: reclaimed two days on, dealt out again the next
    first_day_reassigned: int


@dataclass
class PrivatePoolStory:
    rep_id: str
    cap: int
    kept: list[str]
    returned_lead_id: str | None  # given back at the cap, in exchange for the last kept
    swapped_for: str | None


@dataclass
class ReviewOutcome:
    rep_id: str
    region: str
    role: str
    planted_category: str  # what the role was planted to come out as
    category: str
    band: str
    overall_score: float
    promotable: bool
    conversions: int
    visits: int


@dataclass
class RotationStory:
    plan_id: str
    as_of: datetime
    effective_at: datetime
    moves: list[dict[str, str]]
    carried_out: bool
    leads_learned: bool  # the leads service knows each region's new manager


@dataclass
class Summary:
    seed: int
    tag: str
    quarter: str
    first_day: date
    last_day: date
    started_at: datetime  # simulated
    ended_at: datetime  # simulated
    regions: list[str]
    managers: dict[str, str]  # region → its first manager
    roles: dict[str, str]  # rep → role
    requests: int
    wall_seconds: float
    events_per_topic: dict[str, int]  # events this run added to each topic
    leads_events: dict[str, int]  # this run's leads events by type
    leads_registered: int
    distributions: int
    visits_logged: int
    follow_up_calls: int
    conversions: int
    flags_by_rule: dict[str, int]
    flags_by_status: dict[str, int]
    honest_rep_flags: int  # flags about anyone but the fabricator
    planted: list[PlantedFabrication]
    reclaims_by_reason: dict[str, int]  # during the working days
    reassignments: int  # during the working days: a reclaimed or released lead given out again
    reclaimed_afterwards: int  # as the clock moved on to the reviews and the rotation, unworked
    lazy: LazyRepStory
    private_pool: PrivatePoolStory
    red_line_cases: dict[str, int]  # by status
    reviews: list[ReviewOutcome]
    reviews_by_category: dict[str, int]
    reviews_by_band: dict[str, int]
    rotation: RotationStory

    def as_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self), option=orjson.OPT_INDENT_2).decode()


# --- geometry and time --------------------------------------------------------------------------

Point = tuple[float, float]


def offset(point: Point, east_m: float, north_m: float) -> Point:
    lat, lon = point
    return (lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat))))


def distance_km(a: Point, b: Point) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment of a business day, in UTC (what the services store)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarter_end(day: date) -> date:
    """The first day of the next quarter."""
    month = 3 * ((day.month - 1) // 3) + 4
    return date(day.year + 1, 1, 1) if month > 12 else date(day.year, month, 1)


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the organisation as the simulator plans it -------------------------------------------------


@dataclass
class RegionPlan:
    code: str
    name: str
    centre: Point
    manager_id: str
    manager_name: str
    dependants: int
    rep_ids: list[str] = field(default_factory=list)


@dataclass
class RepPlan:
    rep_id: str
    name: str
    region: str
    role: str
    newcomer: bool
    joined_on: date
    converted: int = 0
    visits: int = 0  # logged, in the quarter
    discounted: int = 0  # confirmed as fabricated: the reviews service does not count them


@dataclass(frozen=True)
class LeadSpot:
    lead_id: str
    region: str
    customer: Point


@dataclass(frozen=True)
class Card:
    """A lead on a rep's workbench."""

    lead_id: str
    deadline: datetime | None


@dataclass(frozen=True)
class PlannedVisit:
    rep_id: str
    lead_id: str
    visited_at: datetime
    recorded_at: datetime
    left_at: datetime | None = None
    checkin: Point | None = None  # where the phone was at check-in
    position: Point | None = None  # where the rep says the visit was
    photo: bool = True
    pattern: str | None = None  # the fabrication it plants
    owner_id: str | None = None  # whose lead it is, when not the rep's own
    notes: str = "met the buyer"


# --- talking to the system -----------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    actor_id: str
    role: str
    region: str | None = None


ADMIN = Actor("admin-sim", "admin")
OPS = Actor("ops-sim", "ops")
HR = Actor("hr-sim", "hr")
QC = Actor("qc-sim", "qc")


class HttpError(SimulationError):
    """An answer the story did not expect, with its status (a poll may expect a 404 for a while)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """The public API through the gateway: tokens per actor, paced requests, retries where safe."""

    def __init__(self, client: httpx.AsyncClient, authority: TokenAuthority, options: SimulationOptions):
        self.client = client
        self.authority = authority
        self.options = options
        self.requests = 0
        self._tokens: dict[Actor, str] = {}
        self._gate = asyncio.Semaphore(options.concurrency)
        self._pace = asyncio.Lock()
        self._next_start = 0.0

    def _headers(self, actor: Actor) -> dict[str, str]:
        token = self._tokens.get(actor)
        if token is None:
            token = self.authority.issue(actor.actor_id, actor.role, region=actor.region)
            self._tokens[actor] = token
        return {"Authorization": f"Bearer {token}"}

    async def _paced(self) -> None:
        # Requests start at most max_requests_per_second apart: the gateway limits each client.
        async with self._pace:
            now = time.monotonic()
            wait = self._next_start - now
            self._next_start = max(now, self._next_start) + 1.0 / self.options.max_requests_per_second
        if wait > 0:
            await asyncio.sleep(wait)

    async def call(
        self,
        method: str,
        path: str,
        actor: Actor,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        retry_conflicts: bool = False,
    ) -> Any:
        """One request; 429 and 503 are retried after Retry-After, and a 409 (a lost race with the
        clock's jobs or a consumer) is retried when the command is safe to repeat."""
        conflicts = 0
        deadline = time.monotonic() + self.options.wait_seconds
        while True:
            async with self._gate:
                await self._paced()
                self.requests += 1
                response = await self.client.request(
                    method, path, json=body, params=params, headers=self._headers(actor)
                )
            if response.status_code in (200, 201):
                return response.json() if response.content else None
            if response.status_code in (429, 503) and time.monotonic() < deadline:
                await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 2.0))
                continue
            if response.status_code == 409 and retry_conflicts and conflicts < 8:
                conflicts += 1
                await asyncio.sleep(0.02 * conflicts)
                continue
            try:
                detail: Any = response.json()
            except ValueError:
                detail = response.text
            raise HttpError(
                f"{method} {path} as {actor.role} {actor.actor_id}: {response.status_code} {detail}",
                response.status_code,
            )

    async def until(self, what: str, check: Callable[[], Awaitable[T | None]]) -> T:
        """Poll the API until `check` gives an answer (events travel through Kafka between
        services), or fail after the deadline saying what was awaited."""
        deadline = time.monotonic() + self.options.wait_seconds
        delay = 0.05
        while True:
            answer = await check()
            if answer is not None:
                return answer
            if time.monotonic() > deadline:
                raise SimulationError(f"gave up waiting for {what} after {self.options.wait_seconds:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    async def clocks(self) -> list[datetime]:
        answers = await asyncio.gather(*(self.call("GET", f"/{s}/_clock", OPS) for s in SERVICES))
        if not all(answer["movable"] for answer in answers):
            raise SimulationError("simulate needs the movable clock (ironarmy up --clock movable)")
        return [datetime.fromisoformat(answer["now"]) for answer in answers]

    async def move_clock(self, to: datetime) -> None:
        """Every service to the same instant, so the scheduled jobs see the same simulated time."""
        await asyncio.gather(
            *(self.call("POST", f"/{s}/_clock", OPS, body={"to": iso(to)}) for s in SERVICES)
        )


async def gather(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run calls together (the Api's semaphore and pacing bound how many are in flight)."""
    return list(await asyncio.gather(*calls))


# --- Kafka: how much this run added, and the leads events it caused ----------------------------


async def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    return consumer


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[str, dict[int, int]]:
    """Where each partition of each topic ends now; nothing for a topic that does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    tps = [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if not d["error_code"]
        for p in d["partitions"]
    ]
    offsets: dict[str, dict[int, int]] = {topic: {} for topic in topics}
    if not tps:
        return offsets
    consumer = await _consumer(bootstrap)
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    for tp in tps:
        offsets[tp.topic][tp.partition] = int(ends[tp])
    return offsets


async def read_between(
    bootstrap: str, topic: str, start: dict[int, int], end: dict[int, int], timeout: float
) -> list[dict[str, Any]]:
    """The envelopes on a topic between two sets of offsets."""
    wanted = {p: (start.get(p, 0), stop) for p, stop in end.items() if stop > start.get(p, 0)}
    if not wanted:
        return []
    consumer = await _consumer(bootstrap)
    envelopes: list[dict[str, Any]] = []
    try:
        tps = {p: TopicPartition(topic, p) for p in wanted}
        consumer.assign(list(tps.values()))
        for p, (first, _) in wanted.items():
            consumer.seek(tps[p], first)
        deadline = time.monotonic() + timeout
        while True:
            behind = [p for p, (_, stop) in wanted.items() if await consumer.position(tps[p]) < stop]
            if not behind:
                break
            if time.monotonic() > deadline:
                raise SimulationError(f"{topic}: could not read this run's events within {timeout:.0f}s")
            batches = await consumer.getmany(timeout_ms=300)
            for tp, records in batches.items():
                stop = wanted[tp.partition][1]
                envelopes.extend(orjson.loads(r.value) for r in records if r.offset < stop)
    finally:
        await consumer.stop()
    return envelopes


# --- the simulation ------------------------------------------------------------------------------


class Simulation:
    def __init__(self, api: Api, options: SimulationOptions, progress: Progress | None) -> None:
        self.api = api
        self.options = options
        self.progress = progress
        self.rng = random.Random(options.seed)
        self.regions: list[RegionPlan] = []
        self.reps: dict[str, RepPlan] = {}
        self.leads: dict[str, LeadSpot] = {}
        self.workbench: dict[str, list[Card]] = {}
        self.visited: dict[str, set[str]] = defaultdict(set)  # rep → leads they visited
        self.visited_on: dict[tuple[str, date], set[str]] = defaultdict(set)  # (rep, day) → leads
        self.planted: dict[str, list[str]] = defaultdict(list)  # pattern → visit ids
        self.lazy_given: set[str] = set()
        self.lazy_first_day: set[str] = set()
        self.kept: list[str] = []
        self.returned: tuple[str, str] | None = None  # (returned lead, kept in exchange)
        self.late_entry_lead: str | None = None
        self.visits_logged = 0
        self.calls = 0
        self.leads_registered = 0
        self.lead_serial = 0
        self.tag = ""
        self.now = datetime.min.replace(tzinfo=UTC)

    # --- helpers ---------------------------------------------------------------------------

    def role_of(self, role: str) -> RepPlan:
        return next(rep for rep in self.reps.values() if rep.role == role)

    def manager(self, region: str) -> Actor:
        plan = next(r for r in self.regions if r.code == region)
        return Actor(plan.manager_id, "manager", plan.code)

    def rep_actor(self, rep_id: str) -> Actor:
        return Actor(rep_id, "rep", self.reps[rep_id].region)

    def step(self, description: str, total: int, *, transient: bool = False) -> Callable[[int], None]:
        """A progress bar for a long part; returns how to advance it. A transient bar (a part of
        one day) goes away when done, so the days do not fill the screen."""
        progress = self.progress
        if progress is None or (transient and total == 0):
            return lambda _: None
        task = progress.add_task(description, total=total)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            if n <= 0 or (transient and done >= total):
                return
            done += n
            progress.advance(task, n)
            if transient and done >= total:
                progress.remove_task(task)

        return advance

    async def move_to(self, moment: datetime) -> None:
        if moment > self.now:
            await self.api.move_clock(moment)
            self.now = moment

    async def move_to_day(self, moment: datetime) -> None:
        """Move to a later business day, and wait until the leads service's clock jobs have run
        for it (reclaims, then that day's distribution): what they do does not depend on how
        fast the next request comes."""
        await self.move_to(moment)
        await self.wait_for_distribution(moment.astimezone(ZONE).date())

    # --- 1. rotation: regions and their managers --------------------------------------------

    async def open_regions(self, count: int) -> None:
        cities = list(CITIES[:count])
        for code, name, lat, lon in cities:
            first = self.rng.choice(SURNAMES)
            manager_id = f"mgr-{code}-{self.tag}"
            self.regions.append(
                RegionPlan(
                    code=f"{code}-{self.tag}",
                    name=name,
                    centre=(lat, lon),
                    manager_id=manager_id,
                    manager_name=f"{first} {self.rng.choice(GIVEN_NAMES)}",
                    dependants=self.rng.randint(0, 3),
                )
            )
        advance = self.step("rotation: regions and managers", len(self.regions))

        async def open_one(region: RegionPlan) -> None:
            lat, lon = region.centre
            await self.api.call(
                "POST",
                "/rotation/regions",
                HR,
                body={"code": region.code, "name": region.name, "location": {"lat": lat, "lon": lon}},
            )
            home = self.regions[(self.regions.index(region) + 1) % len(self.regions)].centre
            await self.api.call(
                "POST",
                "/rotation/managers",
                HR,
                body={
                    "manager_id": region.manager_id,
                    "name": region.manager_name,
                    "level": "regional",
                    "home_base": {"lat": home[0], "lon": home[1]},
                    "dependants": region.dependants,
                },
            )
            await self.api.call(
                "POST",
                f"/rotation/managers/{region.manager_id}/appointment",
                HR,
                body={"region": region.code},
            )
            advance(1)

        await gather(open_one(region) for region in self.regions)

        # The leads service learns who manages a region from ManagerAppointed, through Kafka.
        async def known(region: RegionPlan) -> None:
            async def check() -> bool | None:
                view = await self.api.call("GET", f"/leads/regions/{region.code}", ADMIN)
                return True if view["manager_id"] == region.manager_id else None

            await self.api.until(f"the leads service to learn {region.code}'s manager", check)

        await gather(known(region) for region in self.regions)

    # --- 2. leads: reps and the pool --------------------------------------------------------

    async def register_reps(self, total: int, first_day: date) -> None:
        per_region: list[list[int]] = [[] for _ in self.regions]
        for n in range(total):
            per_region[n % len(self.regions)].append(n)
        planted = [[STAR, LAZY, FABRICATOR], [WILD_DOG, WHITE_RABBIT, KEEPER]]
        for r, region in enumerate(self.regions):
            roles = planted[r] if r < len(planted) else []
            for i, _ in enumerate(per_region[r]):
                role = roles[i] if i < len(roles) else BULL
                newcomer = role == WHITE_RABBIT or (role == BULL and i % 2 == 1)
                joined = first_day - timedelta(
                    days=self.rng.randint(10, 60) if newcomer else self.rng.randint(400, 1500)
                )
                rep_id = f"rep-{region.code.split('-')[0][:3]}{i + 1}-{self.tag}"
                name = f"{self.rng.choice(SURNAMES)} {self.rng.choice(GIVEN_NAMES)}"
                self.reps[rep_id] = RepPlan(rep_id, name, region.code, role, newcomer, joined)
                region.rep_ids.append(rep_id)
        advance = self.step("leads: reps", len(self.reps))

        async def register(rep: RepPlan) -> None:
            body: dict[str, Any] = {
                "rep_id": rep.rep_id,
                "name": rep.name,
                "region": rep.region,
                "joined_on": rep.joined_on.isoformat(),
                "role": "rep" if rep.newcomer else "senior_rep",
            }
            if rep.role == KEEPER:
                body["private_pool_cap"] = 3  # small, so the swap at the cap shows in a few days
            await self.api.call("POST", "/leads/reps", self.manager(rep.region), body=body)
            advance(1)

        await gather(register(rep) for rep in self.reps.values())

    def new_lead(self, region: RegionPlan) -> dict[str, Any]:
        self.lead_serial += 1
        # Customers within 1–12 km of the centre: an honest 90-minute hop is never "impossible".
        angle, radius = self.rng.uniform(0, 2 * math.pi), self.rng.uniform(1_000, 12_000)
        lat, lon = offset(region.centre, radius * math.cos(angle), radius * math.sin(angle))
        city = region.name.split(" ")[0]
        return {
            "company_name": f"{city} {self.rng.choice(BRANDS)} {self.rng.choice(TRADES)} Co., Ltd.",
            "company_code": f"91SIM{self.tag}{self.lead_serial:06d}".upper(),
            "region": region.code,
            "address": {
                "line": f"{self.rng.randint(1, 999)} {self.rng.choice(ROADS)} Road",
                "city": city,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
            },
            "score": round(self.rng.uniform(20, 95), 1),
            "source": self.rng.choice(SOURCES),
        }

    async def register_leads(self, per_rep: int, description: str, *, transient: bool = False) -> None:
        advance = self.step(description, len(self.regions), transient=transient)

        async def import_region(region: RegionPlan) -> None:
            batch = [self.new_lead(region) for _ in range(per_rep * len(region.rep_ids))]
            answer = await self.api.call(
                "POST", "/leads/leads/imports", self.manager(region.code), body={"leads": batch}
            )
            if answer["duplicates"] or answer["refused"] or len(answer["registered"]) != len(batch):
                raise SimulationError(f"lead import into {region.code} was not clean: {answer}")
            for lead_id, lead in zip(answer["registered"], batch, strict=True):
                address = lead["address"]
                self.leads[lead_id] = LeadSpot(lead_id, region.code, (address["lat"], address["lon"]))
            self.leads_registered += len(batch)
            advance(1)

        await gather(import_region(region) for region in self.regions)

    async def read_workbenches(self) -> None:
        async def read(rep: RepPlan) -> None:
            bench = await self.api.call("GET", f"/leads/reps/{rep.rep_id}/workbench", ADMIN)
            self.workbench[rep.rep_id] = [
                Card(c["lead_id"], datetime.fromisoformat(c["deadline"]) if c["deadline"] else None)
                for c in bench["assigned"]
            ]

        await gather(read(rep) for rep in self.reps.values())

    async def wait_for_distribution(self, day: date, codes: Sequence[str] = ()) -> None:
        """The leads service's scheduler runs the daily distribution once the clock reaches the
        business day's morning: wait until every region shows that day's run (a region not yet
        opened shows the last run for every region)."""
        codes = list(codes) or [region.code for region in self.regions]

        async def check() -> bool | None:
            views = await gather(self.api.call("GET", f"/leads/regions/{code}", ADMIN) for code in codes)
            runs = [view["last_distribution"] for view in views]
            return True if all(run and run["day"] == day.isoformat() for run in runs) else None

        await self.api.until(f"the daily distribution of {day}", check)

    # --- 3. visits --------------------------------------------------------------------------

    def near(self, point: Point) -> Point:
        """Where a phone on the customer's doorstep says it is: within a few dozen metres."""
        return offset(point, self.rng.uniform(-25, 25), self.rng.uniform(-25, 25))

    def unvisited(self, rep_id: str, taken: set[str] | None = None) -> list[Card]:
        skip = self.visited[rep_id] | (taken or set())
        if self.late_entry_lead:
            skip = skip | {self.late_entry_lead}
        cards = [c for c in self.workbench.get(rep_id, []) if c.lead_id not in skip]
        return sorted(cards, key=lambda c: (c.deadline or datetime.max.replace(tzinfo=UTC), c.lead_id))

    def honest_visit(self, rep_id: str, lead_id: str, began: datetime, **changes: Any) -> PlannedVisit:
        customer = self.leads[lead_id].customer
        checkin = self.near(customer)
        visit = PlannedVisit(
            rep_id=rep_id,
            lead_id=lead_id,
            visited_at=began,
            left_at=began + timedelta(minutes=40),
            recorded_at=began + timedelta(minutes=50),
            checkin=checkin,
            position=checkin,
        )
        return dataclasses.replace(visit, **changes)

    def plan_honest_day(self, rep_id: str, day: date) -> list[PlannedVisit]:
        cards = self.unvisited(rep_id)[: len(VISIT_SLOTS)]
        return [
            self.honest_visit(rep_id, card.lead_id, local(day, *slot))
            for card, slot in zip(cards, VISIT_SLOTS, strict=False)
        ]

    def plan_fabricator_day(self, index: int, day: date) -> list[PlannedVisit]:
        """The fabricator's days: one planted pattern after another, each in a slot of its own
        so that it is found by its own rule (a real fabricator's visit often breaks several)."""
        rep_id = self.role_of(FABRICATOR).rep_id
        at = functools.partial(local, day)
        if index == 0:
            visits = self.plan_honest_day(rep_id, day)
            late = self.unvisited(rep_id, {v.lead_id for v in visits})
            if not late:
                raise SimulationError("the fabricator has too few leads for the late entry")
            self.late_entry_lead = late[0].lead_id  # visited today, typed in three days later
            return visits
        if index == 1:
            # In the office all day; in the evening "a few customers from the system" are typed
            # in minutes apart, claimed across the day.
            cards = self.unvisited(rep_id)[:3]
            if len(cards) < 3:
                raise SimulationError("the fabricator has too few leads for the evening bulk entry")
            return [
                self.honest_visit(
                    rep_id,
                    card.lead_id,
                    at(hour, minute),
                    left_at=at(hour, minute) + timedelta(minutes=30),
                    recorded_at=at(19, 3 * n),
                    pattern="bulk_entry",
                    notes="follow-up",
                )
                for n, (card, (hour, minute)) in enumerate(
                    zip(cards, ((10, 0), (12, 30), (15, 0)), strict=True)
                )
            ]
        if index == 2:
            return self.plan_fabrication_day(rep_id, day)
        if index == 3:
            visits = self.plan_honest_day(rep_id, day)
            assert self.late_entry_lead is not None
            claimed = local(day - timedelta(days=3), 16)
            visits.append(
                self.honest_visit(
                    rep_id,
                    self.late_entry_lead,
                    claimed,
                    recorded_at=at(16, 30),  # 72 h 30 min after the visit it claims
                    pattern="late_entry",
                )
            )
            return visits
        return self.plan_honest_day(rep_id, day)

    def plan_fabrication_day(self, rep_id: str, day: date) -> list[PlannedVisit]:
        at = functools.partial(local, day)
        cards = self.unvisited(rep_id)
        if len(cards) < 7:
            raise SimulationError("the fabricator has too few leads for the planted fabrications")
        a, d, e, f, g = (c.lead_id for c in cards[:5])
        rest = [c.lead_id for c in cards[5:]]
        # The two customers furthest apart, visited minutes apart: faster than any car.
        b, c = max(
            ((x, y) for i, x in enumerate(rest) for y in rest[i + 1 :]),
            key=lambda pair: distance_km(self.leads[pair[0]].customer, self.leads[pair[1]].customer),
        )
        km = distance_km(self.leads[b].customer, self.leads[c].customer)
        if km < 3:
            raise SimulationError("the fabricator's customers are too close for impossible travel")
        gap = timedelta(hours=km / 240)  # twice the speed limit the rule allows
        star = self.role_of(STAR).rep_id
        victim = self.unvisited(star)[len(VISIT_SLOTS) :]  # not one the star visits today
        if not victim:
            raise SimulationError("no colleague's lead to plant a visit by someone who did not own it")
        h = victim[-1].lead_id
        customer_d = self.leads[d].customer
        return [
            self.honest_visit(rep_id, a, at(9)),
            self.honest_visit(rep_id, b, at(10, 30), left_at=at(10, 30) + gap / 2, recorded_at=at(10, 55)),
            self.honest_visit(
                rep_id, c, at(10, 30) + gap, left_at=None, recorded_at=at(11), pattern="impossible_travel"
            ),
            self.honest_visit(
                rep_id,
                d,
                at(12),
                checkin=offset(customer_d, 1_500, 1_500),  # two kilometres from the customer
                position=offset(customer_d, 1_500, 1_500),
                pattern="far_from_customer",
            ),
            self.honest_visit(
                rep_id,
                e,
                at(13, 30),
                checkin=None,
                photo=False,
                position=self.leads[e].customer,
                pattern="missing_checkin_evidence",
            ),
            self.honest_visit(rep_id, f, at(15), left_at=at(15, 45), recorded_at=at(15, 50)),
            self.honest_visit(
                rep_id, g, at(15, 30), left_at=at(16), recorded_at=at(16, 5), pattern="overlapping_visits"
            ),
            self.honest_visit(
                rep_id,
                h,
                at(16, 30),
                left_at=at(17),
                recorded_at=at(17, 5),
                pattern="not_the_owner",
                owner_id=star,
            ),
            # The morning's visit typed in again in the afternoon, a few minutes off.
            self.honest_visit(
                rep_id, a, at(9, 10), left_at=at(9, 40), recorded_at=at(17, 20), pattern="duplicate_visit"
            ),
        ]

    def plan_day(self, index: int, day: date) -> list[PlannedVisit]:
        visits: list[PlannedVisit] = []
        for rep in sorted(self.reps.values(), key=lambda r: r.rep_id):
            if rep.role == LAZY:
                continue  # never follows up: the leads go back to the pool after the deadline
            if rep.role == FABRICATOR:
                visits.extend(self.plan_fabricator_day(index, day))
            else:
                visits.extend(self.plan_honest_day(rep.rep_id, day))
        return visits

    async def log_visit(self, visit: PlannedVisit) -> None:
        owner = visit.owner_id or visit.rep_id

        # The visits service knows who owns a lead from the leads topic: wait until it has heard
        # of this lead's owner at that moment, so an honest visit is judged on the facts.
        async def known() -> bool | None:
            try:
                answer = await self.api.call(
                    "GET",
                    f"/visits/leads/{visit.lead_id}/ownership",
                    QC,
                    params={"rep_id": owner, "at": iso(visit.visited_at)},
                )
            except HttpError as error:
                if error.status == 404:
                    return None
                raise
            return True if answer["owned"] else None

        await self.api.until(f"the visits service to know {owner} owns lead {visit.lead_id}", known)
        body: dict[str, Any] = {
            "lead_id": visit.lead_id,
            "visited_at": iso(visit.visited_at),
            "notes": visit.notes,
            # The app's own id for the visit: a retried request logs nothing new.
            "client_ref": f"sim-{visit.rep_id}-{visit.lead_id}-{iso(visit.visited_at)}",
        }
        if visit.left_at is not None:
            body["left_at"] = iso(visit.left_at)
        if visit.position is not None:
            body["position"] = {"lat": visit.position[0], "lon": visit.position[1], "accuracy_m": 15.0}
        checkin: dict[str, Any] = {}
        if visit.checkin is not None:
            checkin["position"] = {"lat": visit.checkin[0], "lon": visit.checkin[1], "accuracy_m": 15.0}
        if visit.photo:
            seed = f"{self.tag}/{visit.rep_id}/{visit.lead_id}/{iso(visit.visited_at)}"
            checkin["photo_hash"] = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        if checkin:
            body["checkin"] = checkin
        answer = await self.api.call(
            "POST", "/visits/visits", self.rep_actor(visit.rep_id), body=body, retry_conflicts=True
        )
        self.visits_logged += 1
        self.reps[visit.rep_id].visits += 1
        self.visited[visit.rep_id].add(visit.lead_id)
        if visit.owner_id is None:
            self.visited_on[(visit.rep_id, visit.visited_at.astimezone(ZONE).date())].add(visit.lead_id)
        if visit.pattern is not None:
            self.planted[visit.pattern].append(answer["id"])

    async def log_visits(self, visits: Sequence[PlannedVisit]) -> None:
        by_rep: dict[str, list[PlannedVisit]] = defaultdict(list)
        for visit in visits:
            by_rep[visit.rep_id].append(visit)

        async def one_rep(mine: list[PlannedVisit]) -> None:
            for visit in mine:  # a rep's visit log is one aggregate: their visits go in order
                await self.log_visit(visit)

        await gather(one_rep(mine) for mine in by_rep.values())

    # --- the evening: conversions, the private pool, follow-up calls ---------------------------

    async def evening(self, index: int, day: date) -> None:
        await self.read_workbenches()
        days_left = self.options.days - index
        converting: list[Awaitable[None]] = []
        for rep in self.reps.values():
            target = CONVERSIONS[rep.role]
            wanted = math.ceil(max(target - rep.converted, 0) / days_left)
            if not wanted:
                continue
            today = self.visited_on[(rep.rep_id, day)]  # visited today, then signed
            cards = sorted(self.workbench[rep.rep_id], key=lambda c: (c.lead_id not in today, c.lead_id))
            cards = [c for c in cards if c.lead_id != self.late_entry_lead][:wanted]
            converting.append(self.convert(rep, [c.lead_id for c in cards]))
        await gather(converting)
        if index in (1, 2):
            await self.read_workbenches()
            await self.keep_private(index, day)
        await self.read_workbenches()
        await self.follow_up_calls(day)

    async def convert(self, rep: RepPlan, lead_ids: list[str]) -> None:
        for lead_id in lead_ids:
            await self.api.call(
                "POST",
                f"/leads/leads/{lead_id}/conversion",
                self.rep_actor(rep.rep_id),
                body={"note": "signed the annual membership"},
                retry_conflicts=True,
            )
            rep.converted += 1

    async def keep_private(self, index: int, day: date) -> None:
        """The keeper keeps promising leads (visited the day before) up to the cap, then keeps one
        more by giving one back: both in one transaction."""
        keeper = self.role_of(KEEPER)
        yesterday = self.visited_on[(keeper.rep_id, day - timedelta(days=1))]
        today = self.visited_on[(keeper.rep_id, day)]
        cards = [c.lead_id for c in self.workbench[keeper.rep_id] if c.lead_id not in today]
        promising = sorted(cards, key=lambda lead_id: (lead_id not in yesterday, lead_id))
        actor = self.rep_actor(keeper.rep_id)
        if index == 1:
            for lead_id in promising[:3]:
                await self.api.call(
                    "POST", f"/leads/leads/{lead_id}/private", actor, body={}, retry_conflicts=True
                )
                self.kept.append(lead_id)
        elif promising and self.kept:
            lead_id, returning = promising[0], self.kept[0]
            await self.api.call(
                "POST",
                f"/leads/leads/{lead_id}/private",
                actor,
                body={"return_lead_id": returning},
                retry_conflicts=True,
            )
            self.kept.append(lead_id)
            self.returned = (returning, lead_id)

    async def follow_up_calls(self, day: date) -> None:
        """Every rep but the lazy one calls each lead whose deadline comes before tomorrow's
        calls; a lead visited today is followed up by its visit (the leads service hears of it)."""
        horizon = self.now + timedelta(hours=26)
        calls: list[tuple[str, str]] = []
        for rep in self.reps.values():
            if rep.role == LAZY:
                continue
            today = self.visited_on[(rep.rep_id, day)]
            calls.extend(
                (rep.rep_id, c.lead_id)
                for c in self.workbench[rep.rep_id]
                if c.lead_id not in today and c.deadline is not None and c.deadline <= horizon
            )
        advance = self.step(f"{day}: follow-up calls", len(calls), transient=True)

        async def call(rep_id: str, lead_id: str) -> None:
            await self.api.call(
                "POST",
                f"/leads/leads/{lead_id}/follow-ups",
                self.rep_actor(rep_id),
                body={"channel": "call", "note": "talked to the buyer"},
                retry_conflicts=True,
            )
            self.calls += 1
            advance(1)

        await gather(call(rep_id, lead_id) for rep_id, lead_id in calls)

    async def nothing_due_before(self, moment: datetime) -> None:
        """Wait until the visits logged today have reached the leads service as follow-ups: no
        lead of a working rep is then due before `moment`."""

        async def check() -> bool | None:
            await self.read_workbenches()
            due = [
                (rep.rep_id, c.lead_id)
                for rep in self.reps.values()
                if rep.role != LAZY
                for c in self.workbench[rep.rep_id]
                if c.deadline is not None and c.deadline <= moment
            ]
            return True if not due else None

        await self.api.until("the day's visits to count as follow-ups in the leads service", check)

    async def run_day(self, index: int, day: date) -> None:
        await self.move_to(local(day, 8))
        await self.wait_for_distribution(day)
        await self.read_workbenches()
        lazy = self.role_of(LAZY).rep_id
        self.lazy_given.update(c.lead_id for c in self.workbench[lazy])
        if index == 0:
            self.lazy_first_day = {c.lead_id for c in self.workbench[lazy]}
        visits = self.plan_day(index, day)
        by_time: dict[datetime, list[PlannedVisit]] = defaultdict(list)
        for visit in visits:
            by_time[visit.recorded_at].append(visit)
        evening = local(day, *EVENING)
        advance = self.step(f"{day}: visits", len(visits), transient=True)
        for moment in sorted({*by_time, evening}):
            await self.move_to(moment)
            if moment == evening:
                await self.evening(index, day)
            batch = by_time.get(moment, [])
            await self.log_visits(batch)
            advance(len(batch))
        if index + 1 < self.options.days:
            await self.nothing_due_before(local(day + timedelta(days=1), 18, 30))
            await self.move_to(local(day, 20))
            await self.register_leads(2, f"{day}: new leads for tomorrow", transient=True)

    # --- 5. quality control and red lines -------------------------------------------------------

    async def all_flags(self) -> list[dict[str, Any]]:
        flags: list[dict[str, Any]] = []
        while True:
            page = await self.api.call(
                "GET", "/visits/flags", QC, params={"limit": 500, "offset": len(flags)}
            )
            flags.extend(page)
            if len(page) < 500:
                return flags

    async def quality_control(self) -> tuple[list[PlantedFabrication], int]:
        """qc confirms each planted fabrication (as a fabrication, or as a breach of procedure)
        and dismisses what the rules raised beside them; returns the plants and the number of
        visits confirmed as fabricated."""
        fabricator = self.role_of(FABRICATOR).rep_id
        expected = {visit_id for ids in self.planted.values() for visit_id in ids}

        # Flags are raised when a visit is logged; a look-back or a re-judging may add more.
        async def raised() -> list[dict[str, Any]] | None:
            flags = await self.all_flags()
            flagged = {f["visit_id"] for f in flags}
            return flags if expected <= flagged else None

        try:
            flags = await self.api.until("every planted visit to be flagged", raised)
        except SimulationError:
            flags = await self.all_flags()  # report what was found; the summary says what was not
        planted: list[PlantedFabrication] = []
        confirmed: set[str] = set()
        fabricated: set[str] = set()  # visits confirmed as fabricated
        advance = self.step("quality control", len(PATTERNS))
        for pattern in PATTERNS:
            visit_ids = self.planted.get(pattern, [])
            mine = [f for f in flags if f["rule"] == pattern and f["visit_id"] in visit_ids]
            flagged = bool(visit_ids) and {f["visit_id"] for f in mine} == set(visit_ids)
            fabrication = pattern not in PROCEDURE_ONLY
            for flag in mine:
                await self.api.call(
                    "POST",
                    f"/visits/flags/{flag['flag_id']}/confirmation",
                    QC,
                    body={
                        "reason": f"checked with the customer: {pattern.replace('_', ' ')}",
                        "fabrication": fabrication,
                    },
                )
                confirmed.add(flag["flag_id"])
                if fabrication:
                    fabricated.add(flag["visit_id"])
            planted.append(
                PlantedFabrication(
                    pattern=pattern,
                    visit_ids=list(visit_ids),
                    flag_ids=[f["flag_id"] for f in mine],
                    flagged=flagged,
                    decision="fabrication" if fabrication else "procedure",
                )
            )
            advance(1)
        # The rest of the fabricator's flags (a real visit next to an invented one) do not hold.
        for flag in await self.all_flags():
            if flag["rep_id"] == fabricator and flag["status"] == "open" and flag["flag_id"] not in confirmed:
                await self.api.call(
                    "POST",
                    f"/visits/flags/{flag['flag_id']}/dismissal",
                    QC,
                    body={"reason": "the visit next to the invented one did happen"},
                )
        self.role_of(FABRICATOR).discounted = len(fabricated)
        return planted, len(fabricated)

    async def decide_red_lines(self, fabricated: int) -> dict[str, int]:
        """Each confirmed fabrication opens a red-line case in reviews; hr decides them."""
        fabricator = self.role_of(FABRICATOR).rep_id

        async def opened() -> list[dict[str, Any]] | None:
            cases = await self.api.call("GET", "/reviews/red-line-cases", HR, params={"rep_id": fabricator})
            return cases if len(cases) >= fabricated else None

        cases = await self.api.until("the red-line cases to open in reviews", opened)
        for case in cases:
            if case["status"] == "open":
                await self.api.call(
                    "POST",
                    f"/reviews/red-line-cases/{case['case_id']}/decision",
                    HR,
                    body={"decision": "confirmed", "reason": "qc's evidence holds; the rep admitted it"},
                )
        final = await self.api.call("GET", "/reviews/red-line-cases", HR, params={"rep_id": fabricator})
        return dict(Counter(case["status"] for case in final))

    # --- 6. the quarter's reviews ---------------------------------------------------------------

    @staticmethod
    def evidence(level: int) -> list[dict[str, Any]]:
        """Levels 1..level of every value met (通关), each with a written example."""
        return [
            {"value": value, "level": n, "example": f"level {n}: {example}"}
            for value, example in EXAMPLES.items()
            for n in range(1, level + 1)
        ]

    async def reviews(self, quarter: str) -> list[ReviewOutcome]:
        async def open_region(region: RegionPlan) -> list[dict[str, Any]]:
            async def all_open() -> list[dict[str, Any]] | None:
                try:
                    await self.api.call(
                        "POST",
                        "/reviews/reviews/quarters",
                        self.manager(region.code),
                        body={"region": region.code, "quarter": quarter},
                        retry_conflicts=True,
                    )
                except HttpError as error:
                    if error.status != 422:  # no reps known yet: the roster comes from the leads topic
                        raise
                found = await self.api.call(
                    "GET", "/reviews/reviews", HR, params={"region": region.code, "quarter": quarter}
                )
                return found if {r["rep_id"] for r in found} >= set(region.rep_ids) else None

            return await self.api.until(f"{region.code}'s {quarter} reviews to open", all_open)

        opened = [r for found in await gather(open_region(g) for g in self.regions) for r in found]
        review_of = {r["rep_id"]: r["review_id"] for r in opened if r["rep_id"] in self.reps}
        advance = self.step(f"reviews {quarter}", len(review_of))

        async def review(rep: RepPlan) -> ReviewOutcome:
            review_id = review_of[rep.rep_id]
            path = f"/reviews/reviews/{review_id}"
            level = VALUE_LEVEL[rep.role]
            await self.api.call(
                "POST",
                f"{path}/self-assessment",
                self.rep_actor(rep.rep_id),
                body={"evidence": self.evidence(min(level + 1, 5))},  # reps see themselves kindly
            )

            # Results are counted from the leads and visits topics: wait until all are in.
            async def counted() -> bool | None:
                results = await self.api.call(
                    "GET", f"/reviews/reps/{rep.rep_id}/results", HR, params={"quarter": quarter}
                )
                expected = (rep.converted, rep.visits - rep.discounted)
                return True if (results["conversions"], results["visits"]) == expected else None

            await self.api.until(f"{rep.rep_id}'s {quarter} results to be counted", counted)
            manager = self.manager(rep.region)
            await self.api.call(
                "POST", f"{path}/manager-assessment", manager, body={"evidence": self.evidence(level)}
            )
            await self.api.call(
                "POST",
                f"{path}/performance-rating",
                manager,
                body={"rating": RATING[rep.role], "comment": "rated against the region's quarter"},
            )
            adjustments: list[dict[str, Any]] = []
            reason = "consistent with the region's other reviews"
            if rep.role == WILD_DOG:
                # The numbers are strong; a customer's complaint shows how they were made.
                adjustments = [{"value": "integrity", "score": 0}]
                reason = "a customer complaint: promised a refund the contract does not give"
            await self.api.call(
                "POST", f"{path}/calibration", HR, body={"adjustments": adjustments, "reason": reason}
            )
            done = await self.api.call("POST", f"{path}/completion", HR)
            outcome = done["outcome"]
            advance(1)
            return ReviewOutcome(
                rep_id=rep.rep_id,
                region=rep.region,
                role=rep.role,
                planted_category=EXPECTED_CATEGORY[rep.role],
                category=outcome["category"],
                band=outcome["band"],
                overall_score=outcome["overall_score"],
                promotable=outcome["promotable"],
                conversions=rep.converted,
                visits=rep.visits - rep.discounted,
            )

        return await gather(review(rep) for rep in self.reps.values())

    # --- 7. rotation --------------------------------------------------------------------------

    async def rotate(self, appointed_at: datetime) -> RotationStory:
        # Past six months' tenure every manager is due; the plan moves them, effective later.
        await self.move_to_day(add_months(appointed_at, 6) + timedelta(days=1))
        due = await self.api.call("GET", "/rotation/due", HR)
        ours = {region.manager_id for region in self.regions}
        if not ours <= {d["manager_id"] for d in due["due"]}:
            raise SimulationError(f"after six months the managers should be due: {due}")
        created = await self.api.call("POST", "/rotation/plans", HR, body={})
        plan_id = created["id"]
        plan = await self.api.call("POST", f"/rotation/plans/{plan_id}/approval", HR)
        effective_at = datetime.fromisoformat(plan["effective_at"])
        advance = self.step("rotation: plan carried out", 2)
        await self.move_to_day(effective_at + timedelta(minutes=5))

        async def carried_out() -> dict[str, Any] | None:
            answer = await self.api.call("GET", f"/rotation/plans/{plan_id}", HR)
            return answer if answer["status"] == "carried_out" else None

        plan = await self.api.until("the rotation plan to be carried out on its date", carried_out)
        advance(1)

        # ManagerRotated reaches the leads service, which then lets each manager act in the new region.
        async def learned(move: dict[str, Any]) -> None:
            async def check() -> bool | None:
                view = await self.api.call("GET", f"/leads/regions/{move['to_region']}", ADMIN)
                return True if view["manager_id"] == move["manager_id"] else None

            await self.api.until(f"the leads service to learn {move['to_region']}'s new manager", check)

        await gather(learned(move) for move in plan["moves"])
        advance(1)
        return RotationStory(
            plan_id=str(plan_id),
            as_of=datetime.fromisoformat(plan["as_of"]),
            effective_at=effective_at,
            moves=[
                {"manager_id": m["manager_id"], "from_region": m["from_region"], "to_region": m["to_region"]}
                for m in plan["moves"]
            ],
            carried_out=True,
            leads_learned=True,
        )

    # --- 8. the summary -------------------------------------------------------------------------

    async def lazy_story(self) -> LazyRepStory:
        lazy = self.role_of(LAZY).rep_id
        reclaimed = first_day_reassigned = 0
        reassigned: Counter[str] = Counter()
        given = sorted(self.lazy_given)
        leads = await gather(self.api.call("GET", f"/leads/leads/{lead_id}", ADMIN) for lead_id in given)
        for lead_id, lead in zip(given, leads, strict=True):
            # Each stretch of ownership, oldest first: the lazy rep's ends in a reclaim, the next
            # stretch is the colleague who got it.
            owners = lead["owners"]
            for n, owner in enumerate(owners):
                if owner["rep_id"] == lazy and owner["ended_by"] == "reclaimed":
                    reclaimed += 1
                    later = [o["rep_id"] for o in owners[n + 1 :] if o["rep_id"] != lazy]
                    if later:
                        reassigned[later[0]] += 1
                        first_day_reassigned += lead_id in self.lazy_first_day
                    break
        return LazyRepStory(
            rep_id=lazy,
            leads_given=len(self.lazy_given),
            reclaimed=reclaimed,
            reassigned=sum(reassigned.values()),
            reassigned_to=dict(sorted(reassigned.items())),
            first_day_leads=len(self.lazy_first_day),
            first_day_reassigned=first_day_reassigned,
        )

    async def region_outcomes(self, quarter: str) -> tuple[dict[str, int], dict[str, int]]:
        categories: Counter[str] = Counter()
        bands: Counter[str] = Counter()
        for region in self.regions:
            spread = await self.api.call(
                "GET", f"/reviews/regions/{region.code}/distribution", HR, params={"quarter": quarter}
            )
            categories.update(spread["by_category"])
            bands.update(spread["by_band"])
        return dict(sorted(categories.items())), dict(sorted(bands.items()))


def reclaims_and_reassignments(
    events: Sequence[dict[str, Any]], until: datetime
) -> tuple[dict[str, int], int, int]:
    """From the leads topic: reclaims by reason before `until`, how many leads taken back
    (reclaimed or released) were given out again before then, and reclaims after it."""
    reasons: Counter[str] = Counter()
    reassigned = afterwards = 0
    by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for envelope in events:
        if envelope["aggregate_type"] == "Lead":
            by_lead[envelope["aggregate_id"]].append(envelope)
    for history in by_lead.values():
        taken_back = False
        for envelope in sorted(history, key=lambda e: int(e["aggregate_version"])):
            during = datetime.fromisoformat(envelope["occurred_at"]) < until
            kind = envelope["event_type"]
            if kind == "LeadReclaimed":
                if during:
                    reasons[envelope["payload"]["reason"]] += 1
                else:
                    afterwards += 1
            if kind in ("LeadReclaimed", "LeadReleased"):
                taken_back = True
            elif kind == "LeadAssigned" and taken_back and during:
                reassigned += 1
    return dict(sorted(reasons.items())), reassigned, afterwards


def first_business_day(now: datetime, days: int) -> date:
    """The day after `now` (Shanghai time), or the next quarter's first day when the simulated
    days would straddle a quarter: a review counts one quarter's results."""
    first = now.astimezone(ZONE).date() + timedelta(days=1)
    last = first + timedelta(days=days - 1)
    if quarter_of(first) != quarter_of(last):
        first = quarter_end(first)
    return first


async def simulate(options: SimulationOptions, console: Console | None = None) -> Summary:
    """Drive the whole story through the gateway and return what happened. `console` shows
    progress bars; None runs quietly (tests)."""
    options.check()
    started = time.monotonic()
    settings = ServiceSettings()
    secret = options.jwt_secret or settings.jwt_secret.get_secret_value()
    authority = TokenAuthority(secret, options.jwt_issuer or settings.jwt_issuer)
    topics = [f"{options.topic_prefix}.{service}" for service in SERVICES]
    progress = (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        if console is not None
        else None
    )
    async with httpx.AsyncClient(base_url=options.base_url, timeout=30.0) as client:
        api = Api(client, authority, options)
        sim = Simulation(api, options, progress)
        try:
            if progress is not None:
                progress.start()
            return await _story(sim, api, options, topics, started)
        finally:
            if progress is not None:
                progress.stop()


async def _story(
    sim: Simulation, api: Api, options: SimulationOptions, topics: list[str], started: float
) -> Summary:
    before = await end_offsets(options.kafka_bootstrap_servers, topics)
    clocks = await api.clocks()
    # A system restarted on its old stores has its clocks back at the wall clock, behind what an
    # earlier simulation recorded: start after the last daily run the leads service has made.
    probe = await api.call("GET", f"/leads/regions/{PROBE_REGION}", ADMIN)
    last_run = probe["last_distribution"]
    now = max([*clocks, *([datetime.fromisoformat(last_run["completed_at"])] if last_run else [])])
    sim.now = min(clocks)
    sim.tag = options.tag or hashlib.sha256(f"{options.seed}/{iso(now)}".encode()).hexdigest()[:4]
    first_day = first_business_day(now, options.days)
    quarter = quarter_of(first_day)
    # Set up in the evening before the first day, once that day's scheduled distribution has run
    # (it must not deal out the pool before the first morning).
    prepare_at = max(now, local(first_day - timedelta(days=1), 20))
    await sim.move_to(prepare_at)
    await sim.wait_for_distribution(first_day - timedelta(days=1), [PROBE_REGION])

    regions = min(max(2, math.ceil(options.reps / 4)), len(CITIES))
    await sim.open_regions(regions)
    await sim.register_reps(options.reps, first_day)
    await sim.register_leads(12, "leads: the pool")
    days = [first_day + timedelta(days=n) for n in range(options.days)]
    advance = sim.step("working days", len(days))
    for index, day in enumerate(days):
        await sim.run_day(index, day)
        advance(1)
    lazy = await sim.lazy_story()

    qc_at = local(days[-1] + timedelta(days=1), 10)  # the working days are over
    await sim.move_to_day(qc_at)
    planted, fabricated = await sim.quality_control()
    red_line_cases = await sim.decide_red_lines(fabricated)
    review_day = max(days[-1] + timedelta(days=2), quarter_end(first_day) - timedelta(days=7))
    await sim.move_to_day(local(review_day, 10))
    reviews = await sim.reviews(quarter)
    by_category, by_band = await sim.region_outcomes(quarter)
    rotation = await sim.rotate(prepare_at)

    flags = await sim.all_flags()
    ours = set(sim.reps)
    flags = [f for f in flags if f["rep_id"] in ours]
    fabricator = sim.role_of(FABRICATOR).rep_id
    after = await end_offsets(options.kafka_bootstrap_servers, topics)
    leads_topic = f"{options.topic_prefix}.leads"
    leads_events = await read_between(
        options.kafka_bootstrap_servers, leads_topic, before[leads_topic], after[leads_topic], 30
    )
    region_codes = {region.code for region in sim.regions}
    # This run's regions, and the daily runs for every region (region None).
    leads_events = [e for e in leads_events if e["payload"].get("region", None) in {*region_codes, None}]
    reclaims, reassignments, afterwards = reclaims_and_reassignments(leads_events, qc_at)
    keeper = sim.role_of(KEEPER)
    return Summary(
        seed=options.seed,
        tag=sim.tag,
        quarter=quarter,
        first_day=first_day,
        last_day=days[-1],
        started_at=now,
        ended_at=sim.now,
        regions=[region.code for region in sim.regions],
        managers={region.code: region.manager_id for region in sim.regions},
        roles={rep.rep_id: rep.role for rep in sim.reps.values()},
        requests=api.requests,
        wall_seconds=round(time.monotonic() - started, 1),
        events_per_topic={
            topic: sum(after[topic].values()) - sum(before[topic].get(p, 0) for p in after[topic])
            for topic in topics
        },
        leads_events=dict(sorted(Counter(e["event_type"] for e in leads_events).items())),
        leads_registered=sim.leads_registered,
        distributions=sum(1 for e in leads_events if e["event_type"] == "LeadsDistributed"),
        visits_logged=sim.visits_logged,
        follow_up_calls=sim.calls,
        conversions=sum(rep.converted for rep in sim.reps.values()),
        flags_by_rule=dict(sorted(Counter(f["rule"] for f in flags).items())),
        flags_by_status=dict(sorted(Counter(f["status"] for f in flags).items())),
        honest_rep_flags=sum(1 for f in flags if f["rep_id"] != fabricator),
        planted=planted,
        reclaims_by_reason=reclaims,
        reassignments=reassignments,
        reclaimed_afterwards=afterwards,
        lazy=lazy,
        private_pool=PrivatePoolStory(
            rep_id=keeper.rep_id,
            cap=3,
            kept=list(sim.kept),
            returned_lead_id=sim.returned[0] if sim.returned else None,
            swapped_for=sim.returned[1] if sim.returned else None,
        ),
        red_line_cases=red_line_cases,
        reviews=sorted(reviews, key=lambda r: r.rep_id),
        reviews_by_category=by_category,
        reviews_by_band=by_band,
        rotation=rotation,
    )


# --- the summary for people ----------------------------------------------------------------------


def print_summary(summary: Summary, console: Console) -> None:
    def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        t = Table(title=title, title_justify="left")
        for column in columns:
            t.add_column(column, overflow="fold")
        for row in rows:
            t.add_row(*(str(cell) for cell in row))
        console.print(t)

    console.print(
        f"[bold]Iron Army simulation[/] seed {summary.seed} · tag {summary.tag} · "
        f"{len(summary.roles)} reps in {len(summary.regions)} regions · {summary.first_day} to "
        f"{summary.last_day} ({summary.quarter}) · {summary.requests} requests in {summary.wall_seconds}s"
    )
    table("Events this run put on each topic", ("topic", "events"), summary.events_per_topic.items())
    table(
        "Leads",
        ("what", "count"),
        [
            ("leads registered", summary.leads_registered),
            ("distribution runs", summary.distributions),
            ("follow-up calls", summary.follow_up_calls),
            ("visits logged", summary.visits_logged),
            ("conversions", summary.conversions),
            *((f"reclaimed: {reason}", n) for reason, n in summary.reclaims_by_reason.items()),
            ("reclaimed leads given out again", summary.reassignments),
            ("reclaimed afterwards (nobody works them as the clock moves on)", summary.reclaimed_afterwards),
            (
                f"lazy rep {summary.lazy.rep_id}: given / reclaimed / reassigned",
                f"{summary.lazy.leads_given} / {summary.lazy.reclaimed} / {summary.lazy.reassigned}",
            ),
            (
                f"private pool of {summary.private_pool.rep_id} (cap {summary.private_pool.cap})",
                f"kept {len(summary.private_pool.kept)}, swapped "
                f"{'yes' if summary.private_pool.returned_lead_id else 'no'}",
            ),
        ],
    )
    table("Flags by rule", ("rule", "flags"), summary.flags_by_rule.items())
    table(
        "Planted fabrications",
        ("pattern", "visits", "flagged", "qc decided"),
        [
            (p.pattern, len(p.visit_ids), "yes" if p.flagged else "[red]NO[/]", p.decision)
            for p in summary.planted
        ],
    )
    table(
        "Reviews",
        ("rep", "role", "category", "as planted", "band", "score", "conversions", "visits"),
        [
            (
                r.rep_id,
                r.role,
                r.category,
                "yes" if r.category == r.planted_category else "[red]NO[/]",
                r.band,
                f"{r.overall_score:.2f}",
                r.conversions,
                r.visits,
            )
            for r in summary.reviews
        ],
    )
    table(
        "Rotation",
        ("manager", "from", "to"),
        [(m["manager_id"], m["from_region"], m["to_region"]) for m in summary.rotation.moves],
    )
    console.print(
        f"flags about honest reps: {summary.honest_rep_flags} · red-line cases: {summary.red_line_cases} · "
        f"rotation effective {summary.rotation.effective_at:%Y-%m-%d}, carried out: "
        f"{summary.rotation.carried_out}"
    )


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_command(
        base_url: Annotated[str, typer.Option(help="the gateway")] = "http://127.0.0.1:8080",
        reps: Annotated[int, typer.Option(help=f"sales reps (at least {MIN_REPS})")] = 12,
        days: Annotated[int, typer.Option(help=f"working days simulated (at least {MIN_DAYS})")] = 5,
        seed: Annotated[int, typer.Option(help="the same seed tells the same story")] = 7,
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
        kafka: Annotated[str | None, typer.Option(help="bootstrap servers (default: settings)")] = None,
        topic_prefix: Annotated[str | None, typer.Option(help="topic prefix (default: settings)")] = None,
    ) -> None:
        """Drive a realistic organisation through the public API at a moved clock (regions,
        managers, reps, leads, visits with planted fabrications, reviews, a rotation) and print
        what happened: the demo and the load generator. Needs `ironarmy up` (movable clock)."""
        settings = ServiceSettings()
        options = SimulationOptions(
            base_url=base_url,
            reps=reps,
            days=days,
            seed=seed,
            kafka_bootstrap_servers=kafka or settings.kafka_bootstrap_servers,
            topic_prefix=topic_prefix or settings.topic_prefix,
            jwt_secret=settings.jwt_secret.get_secret_value(),
            jwt_issuer=settings.jwt_issuer,
        )
        try:
            options.check()
        except ValueError as error:
            raise typer.BadParameter(str(error)) from error
        # Progress goes to stderr, so --json output stays clean on stdout.
        progress_console = Console(stderr=True)
        try:
            summary = asyncio.run(simulate(options, progress_console))
        except (SimulationError, httpx.HTTPError, KafkaError) as error:
            progress_console.print(f"[red]simulation stopped: {error}")
            raise typer.Exit(1) from error
        if as_json:
            typer.echo(summary.as_json())
        else:
            print_summary(summary, Console())
