"""The eventsourcing Application every service builds on: its store, its transcodings,
and exactly-once processing of events consumed from other services."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)

from shared.domain import Meta, stable_id

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


class InboxCursor(Aggregate):
    """How far one consumer has applied one source aggregate's events.

    Kafka offsets make a redelivered *message* harmless; this makes a re-published *event*
    (the relay resends after a crash, under a new offset) harmless too.
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
        return f"{self.consumer}:{self.topic}:{self.partition}"


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

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._read_lock = threading.RLock()
        self._read_position = 0
        self.read_models: Sequence[ReadModel] = self.construct_read_models()
        # Told (from whichever thread saved) that new events are stored: the relay wakes up.
        self.on_recorded: list[Callable[[], None]] = []

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        super()._notify(recordings)
        if recordings:
            for listener in self.on_recorded:
                listener()

    def construct_read_models(self) -> Sequence[ReadModel]:
        return ()

    def catch_up(self) -> int:
        """Feed every stored event not yet seen to the read models; returns the log position."""
        with self._read_lock:
            while True:
                notifications = self.recorder.select_notifications(
                    self._read_position, self.catch_up_batch, inclusive_of_start=False
                )
                for notification in notifications:
                    domain_event = self.mapper.to_domain_event(notification)
                    for read_model in self.read_models:
                        read_model.apply(domain_event)
                    self._read_position = notification.id
                if len(notifications) < self.catch_up_batch:
                    return self._read_position

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the read models still and up to date while a query reads them."""
        with self._read_lock:
            self.catch_up()
            yield

    def rebuild_read_models(self) -> int:
        """Drop the read models and build them again from the first stored event."""
        with self._read_lock:
            self.read_models = self.construct_read_models()
            self._read_position = 0
            return self.catch_up()

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

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
        name = Delivery(consumer, topic, partition, 0, "", 0).tracking_name
        return self.process_recorder.max_tracking_id(name)

    def process_delivery(self, delivery: Delivery, handle: Callable[[], Sequence[Aggregate | None]]) -> bool:
        """Apply one consumed event once: new events, inbox cursor and offset in one transaction.

        Returns False when the event had already been applied (redelivered or re-published).
        A concurrent command on the same aggregate makes the save fail; then it is retried
        from a fresh read.
        """
        tracking = Tracking(delivery.tracking_name, delivery.offset)
        for attempt in range(self.conflict_retries + 1):
            cursor_id = InboxCursor.create_id(delivery.consumer, delivery.source_aggregate_id)
            try:
                cursor: Any = self.repository.get(cursor_id)
            except AggregateNotFoundError:
                cursor = InboxCursor(delivery.consumer, delivery.source_aggregate_id)
            assert isinstance(cursor, InboxCursor)
            processing: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
            fresh = delivery.source_version > cursor.position
            if fresh:
                processing.collect_events(*handle())
                cursor.advance(delivery.source_version)
                processing.collect_events(cursor)
            try:
                recordings = self._record(processing)
            except IntegrityError:
                if self._already_tracked(tracking):
                    return False
                if attempt == self.conflict_retries:
                    raise
                continue
            self._notify(recordings)
            return fresh
        raise AssertionError("unreachable")

    def _already_tracked(self, tracking: Tracking) -> bool:
        return self.process_recorder.has_tracking_id(tracking.application_name, tracking.notification_id)
