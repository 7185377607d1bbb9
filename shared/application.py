"""The eventsourcing Application every service builds on: its store, its transcodings,
and exactly-once processing of events consumed from other services."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    EventStore,
    InfrastructureFactory,
    IntegrityError,
    JSONTranscoder,
    ProcessRecorder,
    Recording,
    StoredEvent,
    Tracking,
    Transcoding,
)
from eventsourcing.popo import POPOFactory
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import Environment, get_topic, strtobool

from shared.chain import ChainedEventStore, ChainedMapper
from shared.domain import Conflict, DomainError, Meta, direct_events, stable_id
from shared.events.base import Envelope
from shared.persistence import (
    BatchedSQLiteProcessRecorder,
    GroupedPostgresProcessRecorder,
    InMemoryProcessRecorder,
    cache_statements,
    select_after,
    select_latest,
    select_positions,
    select_streams_of_topic,
)

T = TypeVar("T")


class DataclassAsDict(Transcoding):
    """Stores a frozen dataclass of plain fields (nested registered types are fine)."""

    def __init__(self, cls: type[Any], name: str) -> None:
        self.type = cls
        self.name = name
        self._fields = tuple(f.name for f in dataclasses.fields(cls))

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self._fields}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class TimedeltaAsSeconds(Transcoding):
    type = timedelta
    name = "timedelta_s"

    def encode(self, obj: timedelta) -> float:
        return obj.total_seconds()

    def decode(self, data: float) -> timedelta:
        return timedelta(seconds=data)


def inbox_name(consumer: str, source_aggregate_id: str) -> str:
    """The tracking record that says how far one consumer has applied one source aggregate's
    events (the version of the last one applied).

    Kafka offsets make a redelivered *message* harmless; this makes a re-published *event* (the
    relay resends after a crash, under a new offset) harmless too. It is a row of the store's
    tracking table, written with what the event derived: a position the store moves only forward,
    so a batch that would move it back (another consumer got there first) is refused whole."""
    return f"inbox:{consumer}:{source_aggregate_id}"


# The tracking record that says a store's inbox cursors (below) are carried over into rows.
INBOX_CARRIED_OVER = "inbox:__carried_over__"


@direct_events
class InboxCursor(Aggregate):
    """How far one consumer had applied one source aggregate's events, as stores kept it before
    the positions became rows of the tracking table (`inbox_name`): an aggregate, with an event
    per advance. Kept so that those stores still read; the first consumed batch of such a store
    carries each cursor's position over into its row (`carry_over_inbox_cursors`).
    """

    @staticmethod
    def create_id(consumer: str, source_aggregate_id: str) -> UUID:
        return stable_id("inbox", consumer, source_aggregate_id)

    def __init__(self, consumer: str, source_aggregate_id: str) -> None:
        self.consumer = consumer
        self.source_aggregate_id = source_aggregate_id
        self.position = 0

    @event("Advanced")
    def advance(self, position: int) -> None:
        self.position = position


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One consumed message, as the application needs to know it."""

    consumer: str  # consumer group: one tracking stream per group, topic and partition
    topic: str
    partition: int
    offset: int
    source_aggregate_id: str
    source_version: int

    @property
    def tracking_name(self) -> str:
        return tracking_name(self.consumer, self.topic, self.partition)


def tracking_name(consumer: str, topic: str, partition: int) -> str:
    """One tracking stream per consumer group, topic and partition."""
    return f"{consumer}:{topic}:{partition}"


class ConcurrentChange(Conflict, IntegrityError):
    """Two commands raced on one aggregate and this one lost: 409 with the current version.

    Still an IntegrityError, so code that retries from a fresh read keeps working."""


class StepFailed(Exception):
    """Step `index` of a consumed batch was refused by the domain; nothing was saved."""

    def __init__(self, index: int, error: DomainError) -> None:
        super().__init__(f"step {index}: {error}")
        self.index = index
        self.error = error


def project(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its per-event `isinstance` against a runtime
    Protocol, which costs ~10 µs in Python 3.11: more than applying most events. Every event the
    services store is an aggregate event with `mutate`."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


# Immutable values an aggregate's copy can share rather than walk (what copy.deepcopy would
# rebuild at length for a UUID or a datetime, it can only rebuild equal).
_SHARED = frozenset({str, int, float, bool, bytes, type(None), UUID, datetime, date, timedelta})


def copy_aggregate(aggregate: T) -> T:
    """What `copy.deepcopy` gives, sooner: the aggregate's attributes that are immutable values
    are shared, every other one is deep-copied as usual (one memo, so shared parts stay shared);
    a class with a `__deepcopy__` of its own copies itself."""
    cls = type(aggregate)
    if hasattr(cls, "__deepcopy__"):
        return copy.deepcopy(aggregate)
    copied = object.__new__(cls)
    memo: dict[int, Any] = {id(aggregate): copied}
    copied.__dict__.update(
        {
            name: value if type(value) in _SHARED else copy.deepcopy(value, memo)
            for name, value in vars(aggregate).items()
        }
    )
    return copied


class ServiceRepository(Repository[UUID]):
    """The library's repository, projecting with `project` unless told otherwise, and copying
    what it gives from its cache with `copy_aggregate`."""

    def get(
        self,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        projector_func: Any = project,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        aggregate = super().get(
            aggregate_id,
            version=version,
            projector_func=projector_func,
            fastforward_skipping=fastforward_skipping,
            deepcopy_from_cache=False,
        )
        if self.cache is not None and version is None and deepcopy_from_cache and self.deepcopy_from_cache:
            return copy_aggregate(aggregate)  # the cache's own: a command changes a copy
        return aggregate


class _BatchRepository:
    """The repository as a consumed batch sees it: what the batch changed, else what was read
    for it beforehand (`preloaded`: found, or known not to be in the store), else the store."""

    def __init__(self, store: Repository[UUID], pending: dict[UUID, Any], preloaded: Preloaded) -> None:
        self.store = store
        self.pending = pending
        self.preloaded = preloaded

    def get(self, aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # a historical version: straight from the store
            return self.store.get(aggregate_id, *args, **kwargs)
        if aggregate_id not in self.pending:
            self.pending[aggregate_id] = self._load(aggregate_id)
        return self.pending[aggregate_id]

    def __contains__(self, aggregate_id: UUID) -> bool:
        """Loads what it finds, as the library's `in` does, but keeps it for the `get` that
        usually follows (the library would load it again)."""
        if aggregate_id in self.pending:
            return True
        try:
            self.pending[aggregate_id] = self._load(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    def _load(self, aggregate_id: UUID) -> Any:
        if aggregate_id in self.preloaded.absent:
            raise AggregateNotFoundError(aggregate_id)
        if aggregate_id in self.preloaded.aggregates:
            return self.preloaded.aggregates.pop(aggregate_id)
        return self.store.get(aggregate_id)


@dataclasses.dataclass
class Preloaded:
    """What a batch names, read before it is applied: the aggregates found, the ids of those the
    store does not hold, and the inbox positions asked for (0 for a source not seen before)."""

    aggregates: dict[UUID, Any] = dataclasses.field(default_factory=dict)
    absent: frozenset[UUID] = frozenset()
    positions: dict[str, int] = dataclasses.field(default_factory=dict)


class _Batch:
    """Aggregates changed while applying consumed events, to be saved in one transaction with the
    inbox positions the batch advanced."""

    def __init__(
        self, store: Repository[UUID], preloaded: Preloaded, position_of: Callable[[str], int]
    ) -> None:
        self.pending: dict[UUID, Any] = {}
        self.repository = _BatchRepository(store, self.pending, preloaded)
        self.positions = preloaded.positions  # inbox name → the version applied up to
        self.advanced: dict[str, int] = {}  # written once per batch, not per event
        self._position_of = position_of  # for a source the batch did not name

    def apply(self, delivery: Delivery, handle: Callable[[], Sequence[Aggregate | None]]) -> bool:
        name = inbox_name(delivery.consumer, delivery.source_aggregate_id)
        position = self.positions.get(name)
        if position is None:
            position = self.positions[name] = self._position_of(name)
        if delivery.source_version <= position:
            return False
        for aggregate in handle():
            if aggregate is not None:
                self.pending[aggregate.id] = aggregate
        self.positions[name] = self.advanced[name] = delivery.source_version
        return True

    def trackings(self) -> list[Tracking]:
        return [Tracking(name, position) for name, position in self.advanced.items()]


def in_store_order(items: Iterable[T], aggregate_id: Callable[[T], UUID]) -> list[T]:
    """The items in the order of their aggregates' ids in the stores' index on (originator id,
    version): a UUID's 128-bit number, which is how SQLite's hex text and PostgreSQL's uuid sort.

    For a bulk write saved in batches (a daily distribution, a sweep of overdue leads): in this
    order each batch inserts into one stretch of the index, where in any other order every event
    of a batch lands on a page of its own all over it, and each commit writes all those pages
    again. The 10,000 × 40 distribution on SQLite wrote 3.1 GB (its log and the checkpoints) in
    allocation order, 0.5 GB in this one; its commits took 12.5 → 1.6 µs an assignment."""
    return sorted(items, key=lambda item: aggregate_id(item).int)


def collect(processing: ProcessingEvent[UUID], objs: Iterable[Any]) -> None:
    """ProcessingEvent.collect_events without its runtime protocol checks for our aggregates
    (a fifth of the cost of a save of small aggregates)."""
    for obj in objs:
        if isinstance(obj, Aggregate):
            processing.events.extend(obj.collect_events())
            processing.aggregates[obj.id] = obj
        elif obj is not None:
            processing.collect_events(obj)


def snapshot_step(version: int, interval: int) -> int:
    """How many events apart an aggregate at `version` is snapshotted: `interval` until it has
    twenty intervals' worth of events, then twice as many each time its version doubles (a tenth
    to a twentieth of it). A snapshot holds the whole state, which for a long-lived aggregate (a
    rep's visit log) grows with its history; at a fixed interval the snapshots' cost per event
    would grow with it too. So it stays about the same, and a load still replays at most a
    tenth of the history after its snapshot."""
    step = interval
    while version >= 20 * step:
        step *= 2
    return step


class ReadModel:
    """An in-memory view of a service, built only from its own stored domain events.

    It is derived state: dropped and rebuilt from the store (or from Kafka) at will.
    """

    def apply(self, domain_event: Any) -> None:
        raise NotImplementedError


class ServiceApplication(Application[UUID]):
    """Base for the four services' applications.

    Uses a process recorder so that derived events and the consumer's position are
    written in one transaction. Command methods return ids, never aggregates. Queries
    call `catch_up()` first, so read models reflect everything stored, whichever process
    stored it.
    """

    extra_transcodings: ClassVar[Sequence[Transcoding]] = ()
    conflict_retries = 5
    catch_up_batch = 2000

    # A service names the long-lived aggregates it snapshots (`snapshotting_intervals`).
    is_snapshotting_enabled = True

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._inbox_carried_over = False
        self._read_lock = threading.RLock()
        self._read_position = 0
        self.read_models: Sequence[ReadModel] = self.construct_read_models()
        # While a consumed batch is applied in this thread, `repository` reads through it.
        self._local = threading.local()
        # Told (in whichever thread saved) of the events each save stored: the relay's hand-over.
        self.on_recorded: list[Callable[[list[Recording[UUID]]], None]] = []

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save as the library does; when another command got there first, say which aggregate
        and at which version it now stands."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        collect(processing, objs)
        processing.saved_kwargs.update(kwargs)
        try:
            recordings = self._record(processing)
        except IntegrityError as error:
            expected: dict[UUID, int] = {}  # where each stream stood before this save's events
            for domain_event in processing.events:
                expected.setdefault(domain_event.originator_id, domain_event.originator_version - 1)
            for aggregate_id, version in expected.items():
                last = self.recorder.select_events(aggregate_id, desc=True, limit=1)
                current = last[0].originator_version if last else 0
                if current != version:
                    raise ConcurrentChange(
                        f"changed concurrently: it is now at version {current}; read it again and retry",
                        aggregate_id=str(aggregate_id),
                        current_version=current,
                        expected_version=version,
                    ) from error
            raise
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def _record(
        self, processing_event: ProcessingEvent[UUID], *, adopt: bool = False
    ) -> list[Recording[UUID]]:
        """Record the events, and bring the cache's copy of each aggregate saved up to date (the
        caller still holds the aggregate itself); when the store refuses them, forget those.

        Without fast-forwarding (how the services run: one process writes a service's store), a
        read from the cache asks the store nothing, so what the cache holds must be what this
        process saved. A save does not add to the cache, reads do: a distribution saving 400,000
        leads would otherwise copy each into a cache that keeps 5,000. Should another process
        write too, the first conflict on a stale aggregate evicts it and the retry reads the
        store: the unique (aggregate, version) keeps the events right either way. (So does a read
        that missed the cache and loaded an aggregate while a command here saved a newer version
        of it: what it cached is stale until the next write to it conflicts once.)

        `adopt`: the saved aggregates themselves go into the cache, as they are. For a consumed
        batch, whose aggregates nobody holds once it is saved (they are read from the cache or
        preloaded, changed and saved there): the next batch, usually about the same aggregates,
        then reads none of them from the store again."""
        try:
            recordings = self.events.put(
                processing_event.events, tracking=processing_event.tracking, **processing_event.saved_kwargs
            )
        except IntegrityError:
            self._forget(processing_event.aggregates)
            raise
        repository = self._repository
        cache = repository.cache
        if cache is not None and not repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                if adopt:
                    cache.put(aggregate_id, aggregate)
                elif aggregate_id in cache.cache:
                    cache.put(aggregate_id, copy_aggregate(aggregate))
        return recordings

    def _forget(self, aggregates: Iterable[UUID]) -> None:
        cache = self._repository.cache
        if cache is not None:
            for aggregate_id in aggregates:
                with suppress(KeyError):
                    cache.get(aggregate_id, evict=True)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot each aggregate just saved whose version crossed its interval (`snapshot_step`:
        it widens as the aggregate grows), from the aggregate as saved. (The library reads it
        back from the store first, which for a long visit log cost as much again as the
        snapshot; and it walks every saved event even when none of the aggregates saved takes
        snapshots, as most saves.)"""
        intervals = self.snapshotting_intervals
        aggregates = processing_event.aggregates
        if self.snapshots is None or not any(type(a) in intervals for a in aggregates.values()):
            return
        crossed: dict[UUID, Any] = {}
        for domain_event in processing_event.events:
            aggregate = aggregates.get(domain_event.originator_id)
            interval = None if aggregate is None else intervals.get(type(aggregate))
            version = domain_event.originator_version
            if interval is not None and version % snapshot_step(version, interval) == 0:
                crossed[domain_event.originator_id] = aggregate
        # Every Aggregate has a Snapshot class (the library's, or its own).
        snapshots = [type(aggregate).Snapshot.take(aggregate) for aggregate in crossed.values()]
        if snapshots:
            self.snapshots.put(snapshots)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        super()._notify(recordings)
        if recordings:
            self._apply_to_read_models(recordings)
            for listener in self.on_recorded:
                listener(recordings)

    def _apply_to_read_models(self, recordings: list[Recording[UUID]]) -> None:
        """Events this process just stored go straight to the read models when they follow on
        from what the read models have seen; otherwise the next catch_up reads them."""
        with self._read_lock:
            position = self._read_position
            for recording in recordings:
                if recording.notification.id != position + 1:
                    return
                for read_model in self.read_models:
                    read_model.apply(recording.domain_event)
                position = self._read_position = recording.notification.id

    def construct_read_models(self) -> Sequence[ReadModel]:
        return ()

    def catch_up(self) -> int:
        """Feed every stored event not yet seen to the read models; returns the log position.

        The store is read without holding the read models still: saves meanwhile go on applying
        their own events (those are then passed over here), instead of waiting for this query."""
        while True:
            with self._read_lock:
                after = self._read_position
            notifications = self.recorder.select_notifications(
                after, self.catch_up_batch, inclusive_of_start=False
            )
            with self._read_lock:
                for notification in notifications:
                    if notification.id <= self._read_position:
                        continue  # applied meanwhile, by the save that stored it
                    domain_event = self.mapper.to_domain_event(notification)
                    for read_model in self.read_models:
                        read_model.apply(domain_event)
                    self._read_position = notification.id
                if len(notifications) < self.catch_up_batch:
                    return self._read_position

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the read models still while a query reads them, with every event stored before
        the query began applied."""
        self.catch_up()
        with self._read_lock:
            yield

    def rebuild_read_models(self) -> int:
        """Drop the read models and build them again from the first stored event."""
        with self._read_lock:
            self.read_models = self.construct_read_models()
            self._read_position = 0
            return self.catch_up()

    @property
    def repository(self) -> Repository[UUID]:
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            return batch.repository  # type: ignore[no-any-return]
        return self._repository

    def construct_repository(self) -> ServiceRepository:
        """The library's repository, as the library configures it from the environment."""
        env = self.env
        cache_maxsize = env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return ServiceRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(cache_maxsize) if cache_maxsize else None,
            fastforward=strtobool(env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """The library's, its table made under the lock the events' tables were made under (on
        PostgreSQL: processes starting together on a new store)."""
        recorder = self.recorder
        if isinstance(recorder, GroupedPostgresProcessRecorder):
            with recorder.tables_made_one_at_a_time():
                return super().construct_snapshot_store()
        return super().construct_snapshot_store()

    def construct_mapper(self) -> ChainedMapper:
        return ChainedMapper(transcoder=self.construct_transcoder())

    def construct_event_store(self) -> ChainedEventStore:
        return ChainedEventStore(mapper=self.mapper, recorder=self.recorder)

    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        factory = super().construct_factory(env)
        if isinstance(factory, SQLiteFactory):
            cache_statements(factory.datastore)
        return factory

    def construct_recorder(self) -> ProcessRecorder:
        """The library's process recorder for the store, or ours where we have one (a recorder
        named by PROCESS_RECORDER_TOPIC wins): on SQLite and on PostgreSQL, with group commit.
        Ours is named to the library's factory, which makes it as its own (its tables' names,
        their creation)."""
        factory = self.factory
        if isinstance(factory, POPOFactory):
            return InMemoryProcessRecorder()
        for store, ours in (
            (SQLiteFactory, BatchedSQLiteProcessRecorder),
            (PostgresFactory, GroupedPostgresProcessRecorder),
        ):
            if isinstance(factory, store) and not factory.env.get(factory.PROCESS_RECORDER_TOPIC):
                factory.env[factory.PROCESS_RECORDER_TOPIC] = get_topic(ours)
        return factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DataclassAsDict(Meta, "meta"))
        transcoder.register(DateAsISO())
        transcoder.register(TimedeltaAsSeconds())
        for transcoding in self.extra_transcodings:
            transcoder.register(transcoding)

    # --- consuming other services' events exactly once -------------------------------

    def processed_offset(self, consumer: str, topic: str, partition: int) -> int | None:
        """The last offset this consumer applied for a partition (None if none yet)."""
        return self.process_recorder.max_tracking_id(tracking_name(consumer, topic, partition))

    def process_delivery(self, delivery: Delivery, handle: Callable[[], Sequence[Aggregate | None]]) -> bool:
        """Apply one consumed event once; returns False when it had already been applied.

        `handle()` loads, changes and returns the aggregates the event changes (load fresh
        inside it: it may run again after a conflict). Inside `apply_in_one_transaction` the
        changes join that transaction; alone, they are saved with the delivery's offset.
        """
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            return bool(batch.apply(delivery, handle))
        tracking = Tracking(delivery.tracking_name, delivery.offset)
        results = self.apply_in_one_transaction(tracking, [lambda: self.process_delivery(delivery, handle)])
        return results is not None and bool(results[0])

    def apply_in_one_transaction(
        self,
        tracking: Tracking,
        steps: Sequence[Callable[[], T]],
        *,
        touched: Sequence[UUID] = (),
        inbox: Sequence[str] = (),
    ) -> list[T] | None:
        """Run the steps (each applies consumed events through `process_delivery`) and save all
        they changed with one tracking record and the inbox positions they advanced, in one
        transaction: all or nothing.

        A DomainError in step k raises StepFailed(k) and saves nothing. A conflict with a
        concurrent command is retried from fresh reads. None: the tracking record was already
        there (another consumer instance got here first), so nothing was applied. `touched`: the
        aggregates the steps will read, as far as known (`aggregates_touched`), and `inbox` the
        positions (`inbox_names`); those not cached are read together beforehand (`preload`)
        instead of in queries of their own.
        """
        self.carry_over_inbox_cursors()
        for attempt in range(self.conflict_retries + 1):
            batch = _Batch(self._repository, self.preload(touched, inbox), self._inbox_position)
            self._local.batch = batch
            try:
                results = []
                for index, step in enumerate(steps):
                    try:
                        results.append(step())
                    except DomainError as error:
                        raise StepFailed(index, error) from error
            finally:
                self._local.batch = None
            processing: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
            collect(processing, batch.pending.values())
            processing.saved_kwargs["trackings"] = batch.trackings()
            try:
                recordings = self._record(processing, adopt=True)
            except IntegrityError:
                if self._already_tracked(tracking):
                    return None
                if attempt == self.conflict_retries:
                    raise
                continue
            self._take_snapshots(processing)
            self._notify(recordings)
            return results
        raise AssertionError("unreachable")

    def touched_by(self, consumer: str, consumed: Iterable[tuple[Envelope, Any]]) -> list[UUID]:
        """The aggregates of this service that applying these consumed events will read, as far
        as the service names them (`aggregates_touched`)."""
        touched: list[UUID] = []
        for envelope, payload in consumed:
            touched.extend(self.aggregates_touched(envelope, payload))
        return touched

    @staticmethod
    def inbox_names(consumer: str, envelopes: Iterable[Envelope]) -> list[str]:
        """The inbox positions applying these consumed events reads: one per source aggregate."""
        return list(dict.fromkeys(inbox_name(consumer, envelope.aggregate_id) for envelope in envelopes))

    def aggregates_touched(self, envelope: Envelope, event: Any) -> Iterable[UUID]:
        """The aggregates of this service that applying a consumed event reads, where a service
        can tell: none by default. Naming them only spares reads; a wrong or missing name changes
        nothing else."""
        return ()

    def preload(self, ids: Sequence[UUID], inbox: Sequence[str] = ()) -> Preloaded:
        """Of these aggregates, those not cached, read together: their latest snapshots in one
        query, the events after them in another (a query each per few hundred); those with
        neither are not in the store. And the inbox positions named, in a query per few hundred.
        Nothing, from a store these queries do not know."""
        positions: dict[str, int] = {}
        if inbox:
            found = select_positions(self.recorder, inbox)
            if found is not None:
                positions = {name: found.get(name, 0) for name in inbox}
        cache = self._repository.cache
        wanted = list({i for i in ids if cache is None or i not in cache.cache})
        if not wanted:
            return Preloaded(positions=positions)
        snapshots: dict[UUID | str, StoredEvent] = {}
        if self.snapshots is not None:
            latest = select_latest(self.snapshots.recorder, wanted)
            if latest is None:
                return Preloaded(positions=positions)
            snapshots = {stored.originator_id: stored for stored in latest}
        after: dict[UUID | str, int] = {
            i: snapshots[i].originator_version if i in snapshots else 0 for i in wanted
        }
        events = select_after(self.recorder, after)
        if events is None:
            return Preloaded(positions=positions)
        streams: dict[UUID | str, list[StoredEvent]] = {}
        for stored in events:
            streams.setdefault(stored.originator_id, []).append(stored)
        if isinstance(self.events, ChainedEventStore):  # the chain's heads, as a read remembers them
            self.events.remember_last([stream[-1] for stream in streams.values()])
        aggregates: dict[UUID, Any] = {}
        for i in wanted:
            stored_events = streams.get(i, [])
            if i in snapshots:
                stored_events = [snapshots[i], *stored_events]
            if stored_events:
                aggregates[i] = project(None, map(self.mapper.to_domain_event, stored_events))
        return Preloaded(aggregates, frozenset(i for i in wanted if i not in aggregates), positions)

    def _inbox_position(self, name: str) -> int:
        return self.process_recorder.max_tracking_id(name) or 0

    def carry_over_inbox_cursors(self) -> None:
        """Once a store: the positions of the inbox cursors it kept as aggregates (`InboxCursor`),
        written as the rows that keep them now, before any consumed batch reads them."""
        if self._inbox_carried_over:
            return
        recorder = self.process_recorder
        if recorder.max_tracking_id(INBOX_CARRIED_OVER) is None:
            positions = []
            for cursor_id in select_streams_of_topic(self.recorder, get_topic(InboxCursor.Created)) or ():
                cursor: InboxCursor = self._repository.get(UUID(str(cursor_id)))
                if cursor.position > 0:
                    name = inbox_name(cursor.consumer, cursor.source_aggregate_id)
                    positions.append(Tracking(name, cursor.position))
            try:
                self.events.put([], trackings=[*positions, Tracking(INBOX_CARRIED_OVER, 1)])
            except IntegrityError:
                if recorder.max_tracking_id(INBOX_CARRIED_OVER) is None:
                    raise
        self._inbox_carried_over = True

    def _already_tracked(self, tracking: Tracking) -> bool:
        return self.process_recorder.has_tracking_id(tracking.application_name, tracking.notification_id)
