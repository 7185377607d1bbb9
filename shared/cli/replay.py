"""`ironarmy replay`: rebuild a service's read models and check that they answer as the live one does.

visits is rebuilt from the Kafka topics alone (services/visits/rebuild.py: the leads topic, then its
own, from offset 0, into a fresh store: a temporary SQLite file that IRONARMY_REPLAY_PROCESSES
processes share, a partition each, or memory when that is 1). leads, reviews and rotation cannot
be: most of their events are internal to their store and never published (a rep's quota, a
review's scores, a plan's solution), so their read models are rebuilt from their own event store
into a fresh application instance, and what Kafka can prove is checked against that store: every
event on the service's topic is a stored event in the same form, every public stored event is on
the topic, and every message of the topics it consumes has been applied.

The rebuilt instance then answers the service's read routes in this process, and its answers are
compared with the live service's through the gateway (and, for visits, with its store's).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import orjson
import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from shared.application import ReadModel, ServiceApplication
from shared.auth import TokenAuthority
from shared.cli.audit import DEFAULT_GATEWAY, service_spec
from shared.cli.processes import available_services
from shared.clock import Clock, MovableClock
from shared.events.base import SERVICES
from shared.service import ServiceContext, build_service, make_clock
from shared.settings import ServiceSettings
from shared.web import create_app

console = Console()
progress_console = Console(stderr=True)

PAGE = 500  # the largest page the list routes give
RETRIED = {429, 502, 503, 504}  # the gateway's rate limit, or a service busy for a moment
MAX_SHOWN = 20  # differences listed per check


# --- the report -------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool | None  # None: could not be made
    detail: str
    differences: list[str] = field(default_factory=list)
    decisive: bool = True  # does it say whether the rebuilt state equals the live one


@dataclass
class ServiceReplay:
    service: str
    mode: str
    events: int = 0
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def verdict(self) -> str:
        if any(c.ok is False for c in self.checks):
            return "different"
        if any(c.ok and c.decisive for c in self.checks):
            return "equal"
        return "not compared"

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "events_per_second": round(self.events_per_second, 1),
            "verdict": self.verdict,
        }


# --- reading the topics -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """What a replay reads of one partition: offsets from `start` up to, not including, `end`."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return max(self.end - self.start, 0)


async def topic_spans(bootstrap: str, topic: str, since: datetime | None) -> dict[int, Span]:
    """Each partition from its first offset (or the first at or after `since`) to its end now;
    nothing for a topic that does not exist (a replay creates no topics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    if described["error_code"] or not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
            starts = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in partitions}
        return {tp.partition: Span(starts[tp], ends[tp]) for tp in sorted(partitions)}
    finally:
        await consumer.stop()


async def read_spans(
    bootstrap: str,
    topic: str,
    spans: dict[int, Span],
    on_record: Callable[[ConsumerRecord], None],
    *,
    stall_seconds: float = 30.0,
) -> int:
    """Read every record of the spans (without a consumer group); returns how many."""
    todo = {TopicPartition(topic, p): span for p, span in spans.items() if span.size}
    if not todo:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    read = 0
    try:
        consumer.assign(list(todo))
        for tp, span in todo.items():
            consumer.seek(tp, span.start)
        remaining = set(todo)
        last_progress = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < todo[tp].end:
                        on_record(record)
                        read += 1
                if records:
                    last_progress = time.monotonic()
                if await consumer.position(tp) >= todo[tp].end:
                    remaining.discard(tp)
            if time.monotonic() - last_progress > stall_seconds:
                raise TimeoutError(f"{topic}: no records for {stall_seconds:.0f}s before the end")
        return read
    finally:
        await consumer.stop()


# --- what the store says it published -----------------------------------------------------------


@dataclass(frozen=True)
class StoredPublic:
    digest: bytes
    notification_id: int
    recorded_at: datetime


def _digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


def stored_public_events(context: ServiceContext[Any]) -> tuple[dict[str, StoredPublic], int]:
    """Every public event in the store, in the form the relay sends it, by event id; and how far
    the relay says it has published."""
    relay = context.relay
    published = relay.published_position()
    found: dict[str, StoredPublic] = {}
    position = 0
    while True:
        outgoing, last = relay.read_batch(position)
        if last == position:
            return found, published
        for message in outgoing:
            envelope = orjson.loads(message.value)
            found[envelope["event_id"]] = StoredPublic(
                _digest(message.value),
                message.notification_id,
                datetime.fromisoformat(envelope["recorded_at"]),
            )
        position = last


def _envelope_differences(context: ServiceContext[Any], notification_id: int, on_topic: bytes) -> str:
    """Which envelope fields differ between the stored event and the topic's copy of it."""
    outgoing, _ = context.relay.read_batch(notification_id - 1)
    stored = next((o.value for o in outgoing if o.notification_id == notification_id), None)
    if stored is None:
        return "not readable from the store"
    a, b = orjson.loads(stored), orjson.loads(on_topic)
    return ", ".join(sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))) or "bytes only"


async def check_own_topic(
    context: ServiceContext[Any], since: datetime | None, progress: Progress
) -> tuple[Check, int, float]:
    """The service's topic carries exactly the public form of its stored events (since `since`)."""
    settings = context.settings
    topic = context.relay.topic
    stored, published = await asyncio.to_thread(stored_public_events, context)
    spans = await topic_spans(settings.kafka_bootstrap_servers, topic, since)
    task = progress.add_task(f"{topic}: topic against store", total=sum(s.size for s in spans.values()))
    seen: set[str] = set()
    resent = 0
    unknown: list[str] = []
    altered: list[tuple[str, int, bytes]] = []

    def on_record(record: ConsumerRecord) -> None:
        nonlocal resent
        progress.advance(task)
        try:
            event_id = str(orjson.loads(record.value)["event_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            unknown.append(f"{topic}[{record.partition}]@{record.offset}: not an envelope")
            return
        if event_id in seen:
            resent += 1  # the relay sends again after a crash; consumers know it by its id
        seen.add(event_id)
        mine = stored.get(event_id)
        if mine is None:
            where = f"{topic}[{record.partition}]@{record.offset}"
            unknown.append(f"{where}: event {event_id} is not in the store")
        elif mine.digest != _digest(record.value):
            altered.append((event_id, mine.notification_id, record.value))

    started = time.monotonic()
    read = await read_spans(settings.kafka_bootstrap_servers, topic, spans, on_record)
    seconds = time.monotonic() - started
    missing = [
        f"event {event_id} (notification {s.notification_id}) was published but is not on {topic}"
        for event_id, s in stored.items()
        if s.notification_id <= published
        and event_id not in seen
        and (since is None or s.recorded_at >= since)
    ]
    differences = [*unknown, *missing]
    for event_id, nid, value in altered[:MAX_SHOWN]:
        fields = await asyncio.to_thread(_envelope_differences, context, nid, value)
        differences.append(f"event {event_id} differs from the stored one in: {fields}")
    differences += [f"event {event_id} differs" for event_id, _, _ in altered[MAX_SHOWN:]]
    window = f" since {since.isoformat()}" if since else ""
    in_store = sum(1 for s in stored.values() if since is None or s.recorded_at >= since)
    detail = (
        f"{read} messages{window}, {len(seen)} events ({resent} sent again); "
        f"{in_store} public in the store{window}"
    )
    return Check(f"{topic} ↔ store", not differences, detail, differences), read, seconds


async def check_consumed(context: ServiceContext[Any]) -> Check:
    """Every message of the topics the service consumes has been applied (or parked)."""
    if not context.consumers:
        return Check("consumed topics", True, "consumes no topic", decisive=False)
    consumer = context.consumers[0]
    application = context.application
    behind: list[str] = []
    messages = 0
    for topic in consumer.topics:
        spans = await topic_spans(context.settings.kafka_bootstrap_servers, topic, None)
        for partition, span in sorted(spans.items()):
            messages += span.size
            applied = await asyncio.to_thread(
                application.processed_offset, consumer.group_id, topic, partition
            )
            next_offset = 0 if applied is None else applied + 1
            if next_offset < span.end:
                behind.append(f"{topic}[{partition}]: {span.end - next_offset} messages not applied")
    detail = f"{', '.join(consumer.topics)}: {messages} messages, all applied" if not behind else "behind"
    return Check("consumed topics", not behind, detail, behind)


async def settle(context: ServiceContext[Any], seconds: float) -> None:
    """Give the live service a moment to publish what it stored and apply what it consumes."""
    application = context.application
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stored = await asyncio.to_thread(application.recorder.max_notification_id) or 0
        relayed = await asyncio.to_thread(context.relay.published_position)
        if relayed >= stored and (await check_consumed(context)).ok:
            return
        await asyncio.sleep(0.2)


# --- rebuilding ---------------------------------------------------------------------------------


class _Counter(ReadModel):
    """Counts the events fed to the read models, for the progress bar."""

    def __init__(self) -> None:
        self.events = 0

    def apply(self, domain_event: Any) -> None:
        self.events += 1


async def _follow(job: asyncio.Task[Any], tick: Callable[[], Any]) -> Any:
    while not job.done():
        await asyncio.wait({job}, timeout=0.1)
        await tick()
    return job.result()


async def rebuild_from_store(context: ServiceContext[Any], progress: Progress) -> tuple[int, float]:
    """A fresh instance on the store: its read models built from the first stored event."""
    application: ServiceApplication = context.application
    total = await asyncio.to_thread(application.recorder.max_notification_id) or 0
    counter = _Counter()
    application.read_models = (*application.read_models, counter)
    task = progress.add_task(f"{context.spec.name}: read models from the store", total=total)

    async def tick() -> None:
        progress.update(task, completed=counter.events)

    started = time.monotonic()
    position: int = await _follow(asyncio.create_task(asyncio.to_thread(application.catch_up)), tick)
    progress.update(task, completed=position, total=max(total, position))
    return position, time.monotonic() - started


async def rebuild_visits_from_topics(
    fresh: ServiceContext[Any], progress: Progress, timeout: float
) -> tuple[Check, int, float]:
    """The visits rebuild from the leads topic and the visits topic, from offset 0."""
    from services.visits.rebuild import rebuild_from_topics

    settings = fresh.settings
    application = fresh.application
    bootstrap = settings.kafka_bootstrap_servers
    topics = [settings.topic("leads"), settings.topic("visits")]
    spans = {topic: await topic_spans(bootstrap, topic, None) for topic in topics}
    group_id = f"{settings.topic_prefix}.visits.replay.{uuid.uuid4().hex[:12]}"
    task = progress.add_task(
        "visits: from the leads and visits topics",
        total=sum(s.size for by_partition in spans.values() for s in by_partition.values()),
    )

    def applied() -> int:
        done = 0
        for topic, by_partition in spans.items():
            for partition, span in by_partition.items():
                offset = application.processed_offset(group_id, topic, partition)
                if offset is not None:
                    done += min(offset + 1, span.end) - span.start
        return done

    async def tick() -> None:
        progress.update(task, completed=await asyncio.to_thread(applied))

    missing = [topic for topic, by_partition in spans.items() if not by_partition]
    if missing:  # the rebuild would create them; there is nothing to read
        return Check("flags derived again", None, f"no topic {', '.join(missing)}", decisive=False), 0, 0.0
    started = time.monotonic()
    job = asyncio.create_task(
        rebuild_from_topics(
            application,
            bootstrap_servers=bootstrap,
            topic_prefix=settings.topic_prefix,
            group_id=group_id,
            partitions=settings.topic_partitions,
            processes=settings.replay_processes,
            timeout=timeout,
        )
    )
    report = await _follow(job, tick)
    seconds = time.monotonic() - started
    await tick()
    events = sum(
        max(report.positions.get(topic, {}).get(p, span.end) - span.start, 0)
        for topic, by_partition in spans.items()
        for p, span in by_partition.items()
    )
    check = Check(
        "flags derived again",
        not report.divergences,
        f"{report.flags} flags from {events} messages (consumer group {group_id})",
        list(report.divergences),
    )
    return check, events, seconds


# --- asking both sides the same questions ------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    path: str
    paged: bool = False


class Answers:
    """GETs against one side (the rebuilt instance in process, or the live service)."""

    def __init__(self, client: httpx.AsyncClient, label: str) -> None:
        self.client = client
        self.label = label

    async def _get(self, path: str) -> tuple[int, Any]:
        delay = 0.1
        deadline = time.monotonic() + 30
        while True:
            response = await self.client.get(path)
            if response.status_code not in RETRIED or time.monotonic() > deadline:
                break
            await asyncio.sleep(delay)  # back off while the gateway's rate limit refills
            delay = min(delay * 2, 2.0)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body

    async def answer(self, probe: Probe) -> tuple[int, Any]:
        if not probe.paged:
            return await self._get(probe.path)
        items: list[Any] = []
        joiner = "&" if "?" in probe.path else "?"
        while True:
            status, page = await self._get(f"{probe.path}{joiner}limit={PAGE}&offset={len(items)}")
            if status != 200 or not isinstance(page, list):
                return status, page
            items.extend(page)
            if len(page) < PAGE:
                return status, items

    async def answers(
        self, probes: Sequence[Probe], progress: Progress, task: TaskID
    ) -> dict[str, tuple[int, Any]]:
        limit = asyncio.Semaphore(8)

        async def one(probe: Probe) -> tuple[str, tuple[int, Any]]:
            async with limit:
                result = await self.answer(probe)
            progress.advance(task)
            return probe.path, result

        return dict(await asyncio.gather(*(one(p) for p in probes)))


def in_process(context: ServiceContext[Any], token: str, label: str) -> Answers:
    """The service's own routes over an instance that is not started (no relay, no consumers)."""
    transport = httpx.ASGITransport(app=create_app(context))
    client = httpx.AsyncClient(
        transport=transport, base_url="http://replay", headers={"Authorization": f"Bearer {token}"}
    )
    return Answers(client, label)


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


IDENTITIES = (
    "event_id",
    "flag_id",
    "visit_id",
    "look_back_id",
    "breach_id",
    "case_id",
    "review_id",
    "plan_id",
    "lead_id",
    "manager_id",
    "rep_id",
    "code",
)


def _identity(left: list[Any], right: list[Any]) -> str | None:
    """The field that tells the items of both lists apart, when there is one."""

    def tells_apart(side: list[Any], key: str) -> bool:
        values = [str(item.get(key)) for item in side if item.get(key) is not None]
        return len(values) == len(side) and len(set(values)) == len(side)

    items = left + right
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    return next((k for k in IDENTITIES if tells_apart(left, k) and tells_apart(right, k)), None)


def differences(left: Any, right: Any, where: str, labels: tuple[str, str]) -> Iterator[str]:
    """Where two JSON answers differ, as paths into them; list items are matched by their id."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            if key not in right:
                yield f"{where}.{key}: only in {labels[0]}"
            elif key not in left:
                yield f"{where}.{key}: only in {labels[1]}"
            else:
                yield from differences(left[key], right[key], f"{where}.{key}", labels)
    elif isinstance(left, list) and isinstance(right, list):
        key = _identity(left, right)
        if key is None:
            if len(left) != len(right):
                yield f"{where}: {len(left)} items in {labels[0]}, {len(right)} in {labels[1]}"
            for index, (a, b) in enumerate(zip(left, right, strict=False)):
                yield from differences(a, b, f"{where}[{index}]", labels)
            return
        a_by = {str(item[key]): item for item in left}
        b_by = {str(item[key]): item for item in right}
        for ours, theirs, label in ((a_by, b_by, labels[0]), (b_by, a_by, labels[1])):
            for value, item in ours.items():
                if value not in theirs:
                    what = item.get("event_type") or item.get("rule") or item.get("status") or ""
                    yield f"{where}: {key} {value} {what} only in {label}".replace("  ", " ")
        common = [value for value in a_by if value in b_by]
        for value in common:
            yield from differences(a_by[value], b_by[value], f"{where}[{key}={value}]", labels)
        if [v for v in b_by if v in a_by] != common:
            yield f"{where}: the same items in another order"
    elif left != right:
        yield f"{where}: {labels[0]} {_short(left)} ≠ {labels[1]} {_short(right)}"


def _by(*keys: str) -> Callable[[Any], Any]:
    def normalise(body: Any) -> Any:
        if not isinstance(body, list):
            return body
        return sorted(body, key=lambda item: tuple(str(item.get(k)) for k in keys))

    return normalise


def _normaliser(service: str, path: str) -> Callable[[Any], Any]:
    """What may legitimately differ in order: events stored at one clock instant come from two
    topics in another order in a rebuild; summaries arrive per partition."""
    if service == "visits" and path.startswith("/audit/"):
        return _by("at", "event_id", "summary")
    if service == "visits" and path.startswith("/minor-breaches/summaries"):
        return _by("week_start", "rep_id")
    return lambda body: body


async def compare(
    service: str,
    probes: Sequence[Probe],
    rebuilt: Answers,
    live: Answers,
    progress: Progress,
    note: str = "",
) -> Check:
    task = progress.add_task(f"{service}: {rebuilt.label} vs {live.label}", total=2 * len(probes))
    left, right = await asyncio.gather(
        rebuilt.answers(probes, progress, task), live.answers(probes, progress, task)
    )
    found: list[str] = []
    for probe in probes:
        (status_a, body_a), (status_b, body_b) = left[probe.path], right[probe.path]
        if status_a != status_b:
            found.append(f"GET {probe.path}: {rebuilt.label} {status_a}, {live.label} {status_b}")
            continue
        normalise = _normaliser(service, probe.path)
        found.extend(
            differences(
                normalise(body_a), normalise(body_b), f"GET {probe.path}", (rebuilt.label, live.label)
            )
        )
    return Check(
        f"{rebuilt.label} = {live.label}",
        not found,
        f"{len(probes)} queries asked of both{note}",
        found,
    )


# --- the questions, per service -----------------------------------------------------------------


def _q(value: str) -> str:
    return quote(value, safe="")


class Sampler:
    """Which entities of each kind both sides are asked about: all of them, or an even spread of
    at most `limit` (the lists and counts the routes give are always compared whole)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kinds: dict[str, tuple[int, int]] = {}  # kind → (asked about, known)

    def __call__(self, kind: str, ids: set[str]) -> list[str]:
        every = sorted(ids)
        chosen = every
        if self.limit and len(every) > self.limit:
            step = len(every) / self.limit
            chosen = [every[int(i * step)] for i in range(self.limit)]
        self.kinds[kind] = (len(chosen), len(every))
        return chosen

    @property
    def note(self) -> str:
        sampled = [f"{n} of {of} {kind}" for kind, (n, of) in self.kinds.items() if n < of]
        return f"; sampled {', '.join(sampled)} (--sample 0: all)" if sampled else ""


def visits_probes(apps: Sequence[Any], now: datetime, pick: Sampler) -> list[Probe]:
    leads: set[str] = set()
    reps: set[str] = set()
    for app in apps:
        with app.reading():
            leads |= set(app.audit.by_lead)
            reps |= set(app.audit.by_rep)
    probes = [
        Probe("/visits", paged=True),
        Probe("/flags", paged=True),
        Probe("/minor-breaches"),
        Probe("/minor-breaches/summaries"),
        Probe("/look-backs"),
    ]
    for lead in pick("leads", leads):
        probes += [Probe(f"/leads/{_q(lead)}/owners"), Probe(f"/audit/leads/{_q(lead)}")]
    probes += [Probe(f"/audit/reps/{_q(rep)}") for rep in pick("reps", reps)]
    return probes


def leads_probes(apps: Sequence[Any], now: datetime, pick: Sampler) -> list[Probe]:
    regions: set[str] = set()
    reps: set[str] = set()
    leads: set[str] = set()
    for app in apps:
        with app.reading():
            book = app.book
            regions |= set(book.status_counts) | set(book.reps_by_region) | set(book.regions)
            reps |= set(book.reps)
            leads |= {str(lead_id) for lead_id in book.leads}
    probes = [Probe("/pool")]
    for region in sorted(regions):
        probes += [Probe(f"/pool/{_q(region)}/leads?limit={PAGE}"), Probe(f"/regions/{_q(region)}")]
    for rep in pick("reps", reps):
        probes += [Probe(f"/reps/{_q(rep)}"), Probe(f"/reps/{_q(rep)}/workbench")]
    probes += [Probe(f"/leads/{lead}") for lead in pick("leads", leads)]
    return probes


def _quarter(moment: datetime) -> str:
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


def reviews_probes(apps: Sequence[Any], now: datetime, pick: Sampler) -> list[Probe]:
    region_quarters: set[tuple[str, str]] = set()
    reviews: set[str] = set()
    cases: set[str] = set()
    reps: set[str] = set()
    for app in apps:
        with app.reading():
            region_quarters |= set(app.board.by_region_quarter)
            reviews |= {str(review_id) for review_id in app.board.reviews}
            cases |= {str(case_id) for case_id in app.desk.cases}
            reps |= set(app.roster.reps) | set(app.board.by_rep)
    quarters = sorted({quarter for _, quarter in region_quarters} | {_quarter(now)})
    probes = [Probe("/red-line-rules"), Probe("/red-line-cases")]
    probes += [Probe(f"/red-line-cases/{case}") for case in pick("red-line cases", cases)]
    for region, quarter in sorted(region_quarters):
        probes += [
            Probe(f"/reviews?region={_q(region)}&quarter={quarter}"),
            Probe(f"/regions/{_q(region)}/distribution?quarter={quarter}"),
        ]
    for review in pick("reviews", reviews):
        probes += [Probe(f"/reviews/{review}"), Probe(f"/reviews/{review}/evidence")]
    for rep in pick("reps", reps):
        probes.append(Probe(f"/reps/{_q(rep)}/reviews"))
        probes += [Probe(f"/reps/{_q(rep)}/results?quarter={quarter}") for quarter in quarters]
    return probes


def rotation_probes(apps: Sequence[Any], now: datetime, pick: Sampler) -> list[Probe]:
    regions: set[str] = set()
    managers: set[str] = set()
    plans: set[str] = set()
    for app in apps:
        regions |= {region.code for region in app.regions()}
        managers |= {manager.manager_id for manager in app.managers()}
        plans |= {str(plan.plan_id) for plan in app.plans(None)}
    probes = [
        Probe("/regions"),
        Probe("/managers"),
        Probe("/deferral-requests"),
        Probe("/plans"),
        Probe(f"/due?as_of={_q(now.isoformat())}"),
    ]
    probes += [Probe(f"/regions/{_q(code)}") for code in pick("regions", regions)]
    for manager in pick("managers", managers):
        probes += [Probe(f"/managers/{_q(manager)}"), Probe(f"/managers/{_q(manager)}/history")]
    probes += [Probe(f"/plans/{plan}") for plan in pick("plans", plans)]
    return probes


PROBES: dict[str, Callable[[Sequence[Any], datetime, Sampler], list[Probe]]] = {
    "visits": visits_probes,
    "leads": leads_probes,
    "reviews": reviews_probes,
    "rotation": rotation_probes,
}


# --- one service ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """The live service through the gateway, when it answers."""

    client: httpx.AsyncClient | None
    clock: Clock
    note: str


async def reach_live(service: str, api: str | None, token: str, settings: ServiceSettings) -> Live:
    if api is None:
        return Live(None, make_clock(settings), "not asked")
    base = f"{api.rstrip('/')}/{service}"
    client = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        response = await client.get("/_clock")
    except httpx.HTTPError as error:
        await client.aclose()
        return Live(None, make_clock(settings), f"not reachable at {base} ({error.__class__.__name__})")
    if response.status_code != 200:
        await client.aclose()
        return Live(None, make_clock(settings), f"{base}/_clock answered {response.status_code}")
    # The rebuilt instance answers at the live service's time (workbenches, due lists, overdue).
    clock = MovableClock(datetime.fromisoformat(response.json()["now"]))
    return Live(client, clock, base)


def _store_name(settings: ServiceSettings, service: str) -> str:
    if settings.store == "sqlite":
        return f"sqlite {settings.data_dir / f'{service}.sqlite'}"
    if settings.store == "postgres":
        return f"postgres {settings.postgres_host}:{settings.postgres_port}/{settings.postgres_dbname}"
    return settings.store


def _rebuild_store(settings: ServiceSettings, stack: AsyncExitStack) -> ServiceSettings:
    """Where a rebuild from the topics writes: a store of its own that its processes can open (a
    SQLite file in a directory removed afterwards), or memory when it runs in one process."""
    if settings.replay_processes == 1:
        return settings.model_copy(update={"store": "memory"})
    directory = Path(tempfile.mkdtemp(prefix="ironarmy-replay-"))
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    return settings.model_copy(update={"store": "sqlite", "data_dir": directory})


async def replay_service(
    service: str,
    *,
    since: datetime | None,
    api: str | None,
    settle_seconds: float,
    timeout: float,
    sample: int,
    progress: Progress,
) -> ServiceReplay:
    spec = service_spec(service)
    settings = spec.settings_class()
    token = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer).issue(
        "replay", "admin"
    )
    store = _store_name(settings, service)
    if settings.store == "sqlite" and not (settings.data_dir / f"{service}.sqlite").exists():
        # Opening it would create an empty store: compare nothing rather than a wrong place.
        report = ServiceReplay(service, "not replayed")
        report.checks.append(Check("store", None, f"no store at {store} (IRONARMY_DATA_DIR?)"))
        return report
    # A window check reads the topics and the store only; a rebuild is compared with the live API.
    live = await reach_live(service, None if since else api, token, settings)
    async with AsyncExitStack() as stack:
        if live.client is not None:
            stack.push_async_callback(live.client.aclose)
        # The live store, opened by an instance that is never started: it only reads, and its
        # cached aggregates are brought up to date with what the live service writes meanwhile.
        stored = build_service(
            spec, settings.model_copy(update={"aggregate_cache_fastforward": True}), live.clock
        )
        stack.callback(stored.application.close)
        await settle(stored, settle_seconds)
        if not await asyncio.to_thread(stored.application.recorder.max_notification_id):
            progress_console.print(f"[yellow]{service}: the store ({store}) holds no events")

        if since is not None:
            check, read, seconds = await check_own_topic(stored, since, progress)
            report = ServiceReplay(service, f"window since {since.isoformat()} ({store})", read, seconds)
            report.checks += [check, await check_consumed(stored)]
            return report

        now = live.clock.now()
        pick = Sampler(sample)
        rebuilt_label = "rebuilt"
        if service == "visits":
            fresh = build_service(spec, _rebuild_store(settings, stack), live.clock)
            stack.callback(fresh.application.close)
            check, events, seconds = await rebuild_visits_from_topics(fresh, progress, timeout)
            report = ServiceReplay(service, "rebuilt from the topics", events, seconds, [check])
            rebuilt = in_process(fresh, token, rebuilt_label)
            stack.push_async_callback(rebuilt.client.aclose)
            as_stored = in_process(stored, token, "store")
            stack.push_async_callback(as_stored.client.aclose)
            # Questions about what only one side knows (a lead, a rep) are asked of both.
            probes = PROBES[service]([fresh.application, stored.application], now, pick)
            report.checks.append(await compare(service, probes, rebuilt, as_stored, progress, pick.note))
        else:
            events, seconds = await rebuild_from_store(stored, progress)
            report = ServiceReplay(service, f"rebuilt from the store ({store})", events, seconds)
            rebuilt = in_process(stored, token, rebuilt_label)
            stack.push_async_callback(rebuilt.client.aclose)
            probes = PROBES[service]([stored.application], now, pick)

        # Kafka's side of the store: checked, but the state comparisons below are the verdict.
        topic_check, _, _ = await check_own_topic(stored, None, progress)
        consumed_check = await check_consumed(stored)
        topic_check.decisive = consumed_check.decisive = False
        report.checks += [topic_check, consumed_check]
        if live.client is None:
            report.checks.append(Check("live API", None, live.note, decisive=False))
        else:
            report.checks.append(
                await compare(service, probes, rebuilt, Answers(live.client, "live"), progress, pick.note)
            )
        return report
    raise AssertionError("unreachable")  # for mypy: the block above always returns


# --- the command ------------------------------------------------------------------------------------


def _print(report: ServiceReplay) -> None:
    colour = {"equal": "green", "different": "red"}.get(report.verdict, "yellow")
    table = Table(title=f"{report.service}: {report.mode}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in report.checks:
        result = {True: "[green]ok", False: "[red]DIFFERENT", None: "[yellow]skipped"}[check.ok]
        table.add_row(check.name, result, check.detail)
    console.print(table)
    for check in report.checks:
        for difference in check.differences[:MAX_SHOWN]:
            console.print(f"  [red]✗[/] {check.name}: {difference}", highlight=False)
        if len(check.differences) > MAX_SHOWN:
            console.print(f"  … and {len(check.differences) - MAX_SHOWN} more differences")
    console.print(
        f"[{colour}]{report.service}: {report.verdict}[/] · {report.events} events in "
        f"{report.seconds:.2f}s ({report.events_per_second:,.0f} events/s)"
    )


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"not an ISO time: {value!r}") from error
    if moment.tzinfo is None:
        raise typer.BadParameter("say the timezone (e.g. 2026-03-02T08:00:00Z)")
    return moment


async def _replay_all(
    services: list[str],
    since: datetime | None,
    api: str | None,
    settle_seconds: float,
    timeout: float,
    sample: int,
    quiet: bool,
) -> list[ServiceReplay]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    reports = []
    with Progress(*columns, console=progress_console, disable=quiet) as progress:
        for service in services:
            reports.append(
                await replay_service(
                    service,
                    since=since,
                    api=api,
                    settle_seconds=settle_seconds,
                    timeout=timeout,
                    sample=sample,
                    progress=progress,
                )
            )
    return reports


def register(app: typer.Typer) -> None:
    @app.command()
    def replay(
        service: Annotated[str, typer.Argument(help="leads, visits, reviews, rotation, or all")],
        since: Annotated[
            str | None,
            typer.Option(
                help="check only the window since this wall-clock ISO time (Kafka's offsets_for_times; "
                "not the business clock) instead of rebuilding: a read model is not rebuilt from a "
                "window alone"
            ),
        ] = None,
        api: Annotated[
            str,
            typer.Option(envvar="IRONARMY_GATEWAY_URL", help="the gateway the live services answer on"),
        ] = DEFAULT_GATEWAY,
        no_api: Annotated[bool, typer.Option("--no-api", help="do not ask the live services")] = False,
        settle: Annotated[
            float, typer.Option(help="seconds to wait for the live service to publish and consume")
        ] = 30.0,
        timeout: Annotated[float, typer.Option(help="seconds a rebuild from the topics may take")] = 300.0,
        sample: Annotated[
            int,
            typer.Option(
                min=0,
                help="ask about at most this many of each kind of entity (leads, reps, …), evenly "
                "spread; lists and counts are always compared whole; 0: every one",
            ),
        ] = 200,
        json: Annotated[bool, typer.Option("--json", help="the report as JSON on stdout")] = False,
    ) -> None:
        """Rebuild a service's read models and say whether they equal the live service's.

        visits is rebuilt from the Kafka topics alone (leads, then visits, from offset 0) into a
        fresh in-memory store. leads, reviews and rotation keep internal events that never reach
        Kafka, so they are rebuilt from their own event store into a fresh instance, and the
        topics are checked against that store: every event on the service's topic is stored in
        the same form, every published stored event is on it, every consumed message is applied.
        The rebuilt instance's answers to the service's read routes are compared with the live
        service's through the gateway (visits: and with its store's). Reports events/s; exit 1
        when anything differs, 2 when there was nothing to compare with. Settings (store, Kafka,
        topic prefix) come from IRONARMY_* as for the services."""
        services = available_services() if service == "all" else [service]
        if service != "all" and service not in SERVICES:
            raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)} or all")
        reports = asyncio.run(
            _replay_all(services, _since(since), None if no_api else api, settle, timeout, sample, quiet=json)
        )
        if json:
            typer.echo(orjson.dumps([r.as_json() for r in reports], default=str).decode())
        else:
            for report in reports:
                _print(report)
        verdicts = {r.verdict for r in reports}
        if "different" in verdicts:
            raise typer.Exit(1)
        if "not compared" in verdicts:
            raise typer.Exit(2)
