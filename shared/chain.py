"""Tamper evidence: every stored event carries a hash chained to the previous event of its
stream, so an edited, removed or reordered event breaks the chain where it happened.

The link is appended to the stored state after a NUL byte (which JSON never contains), so the
library still stores and reads events as usual; `verify` walks a store and names the first
broken link.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    EventStore,
    Mapper,
    MapperDeserialisationError,
    Notification,
    Recording,
    StoredEvent,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from shared.codec import codec_for
from shared.persistence import select_states_at

MARK = b"\x00"
GENESIS = "0" * 64
LINK_LENGTH = 1 + 64


def split(state: bytes) -> tuple[bytes, str | None]:
    """The event's own state, and its chain link (None for an event stored without one)."""
    if len(state) > LINK_LENGTH and state[-LINK_LENGTH : -LINK_LENGTH + 1] == MARK:
        return state[:-LINK_LENGTH], state[-64:].decode()
    return state, None


def link(previous: str, originator_id: UUID | str, version: int, topic: str, body: bytes) -> str:
    digest = hashlib.sha256(f"{previous}|{originator_id}|{version}|{topic}|".encode())
    digest.update(body)
    return digest.hexdigest()


class ChainedMapper(Mapper[UUID]):
    """Stores an event's state as typed JSON when its class allows (shared.codec), else in the
    library's tagged JSON; reads events whether or not they carry a chain link."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(*self.to_parts(domain_event))

    def to_parts(self, domain_event: Any) -> tuple[UUID, int, str, bytes]:
        """The stored event's columns: originator id and version, topic, state."""
        cls = type(domain_event)
        codec = codec_for(cls)
        if codec is None or self.cipher or self.compressor:
            stored = super().to_stored_event(domain_event)
            return stored.originator_id, stored.originator_version, stored.topic, stored.state  # type: ignore[return-value]
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        return originator_id, originator_version, get_topic(cls), codec.encode(state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        body, _ = split(stored_event.state)
        cls = resolve_topic(stored_event.topic)
        codec = codec_for(cls)
        if codec is None or self.cipher or self.compressor:
            return self._from_tagged(stored_event, body)
        try:
            state = codec.decode(body)
        except msgspec.MsgspecError as error:
            if b'"_type_":' in body:  # stored before typed JSON, in the library's tagged form
                return self._from_tagged(stored_event, body)
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{stored_event.topic}', "
                f"originator_id '{stored_event.originator_id}' and "
                f"originator_version {stored_event.originator_version}: {error}"
            ) from error
        originator_id = stored_event.originator_id
        state["originator_id"] = find_id_convertor(cls, type(originator_id))(originator_id)  # type: ignore[arg-type]
        state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event

    def _from_tagged(self, stored_event: StoredEvent, body: bytes) -> Any:
        """The library's own reading of a state in its tagged JSON, without the chain link."""
        if len(body) != len(stored_event.state):
            stored_event = StoredEvent(
                stored_event.originator_id, stored_event.originator_version, stored_event.topic, body
            )
        return super().to_domain_event(stored_event)


class ChainedEventStore(EventStore[UUID]):
    """Appends each event's link; remembers the head of recently read or written streams."""

    heads_max = 200_000

    def __init__(self, mapper: Mapper[UUID], recorder: AggregateRecorder) -> None:
        super().__init__(mapper, recorder)
        self._heads: OrderedDict[UUID | str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, heads: dict[UUID | str, tuple[int, str]]) -> None:
        with self._lock:
            for originator_id, head in heads.items():
                known = self._heads.get(originator_id)
                if known is None or known[0] < head[0]:
                    self._heads[originator_id] = head
                self._heads.move_to_end(originator_id)
            while len(self._heads) > self.heads_max:
                self._heads.popitem(last=False)

    def remember_last(self, stored_events: Sequence[StoredEvent]) -> None:
        """Remember the heads of the streams whose last stored events these are."""
        heads: dict[UUID | str, tuple[int, str]] = {}
        for stored in stored_events:
            chain = split(stored.state)[1]
            if chain is not None:
                heads[stored.originator_id] = (stored.originator_version, chain)
        self._remember(heads)

    def _previous(self, originator_id: UUID | str, version: int) -> str:
        if version == 1:
            return GENESIS
        with self._lock:
            head = self._heads.get(originator_id)
        if head is not None and head[0] == version - 1:
            return head[1]
        rows = self.recorder.select_events(originator_id, lte=version - 1, desc=True, limit=1)
        if not rows or rows[0].originator_version != version - 1:
            return GENESIS  # a gap: verify will name it
        return split(rows[0].state)[1] or GENESIS

    def _look_up_heads(self, domain_events: Sequence[Any]) -> dict[UUID | str, tuple[int, str]]:
        """The heads this put needs that are not remembered, read in a few queries: a batch of
        thousands of aggregates read from a read model would otherwise read them one by one."""
        wanted: dict[UUID | str, int] = {}  # stream → the version whose link is needed
        seen: set[UUID | str] = set()
        last: UUID | str | None = None
        with self._lock:
            heads = self._heads
            for domain_event in domain_events:
                key = domain_event.originator_id
                if key is last or key in seen:
                    continue  # its first event in this put is the one that links to the store
                last = key
                seen.add(key)
                version = domain_event.originator_version
                head = heads.get(key)
                if version > 1 and (head is None or head[0] != version - 1):
                    wanted[key] = version - 1
        if len(wanted) < 2:
            return {}  # nothing to gain over _previous
        by_version: dict[int, list[UUID | str]] = {}
        for key, version in wanted.items():
            by_version.setdefault(version, []).append(key)
        found: dict[UUID | str, tuple[int, str]] = {}
        for version, keys in by_version.items():
            for key, state in select_states_at(self.recorder, version, keys):
                chain = split(state)[1]
                if chain is not None:
                    found[key] = (version, chain)
        return found

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[UUID]]:
        to_parts = self.mapper.to_parts  # type: ignore[attr-defined]
        written: dict[UUID | str, tuple[int, str]] = self._look_up_heads(domain_events)
        stored_events = []
        # An aggregate's events come one after another: follow its chain without dict lookups.
        key: UUID | str | None = None
        name, version, chain = "", 0, GENESIS
        for domain_event in domain_events:
            event_key, event_version, topic, state = to_parts(domain_event)
            if event_key is not key or event_version != version + 1:
                if key is not None:
                    written[key] = (version, chain)
                key, name = event_key, str(event_key)
                head = written.get(key)
                if head is not None and head[0] == event_version - 1:
                    chain = head[1]
                else:
                    chain = self._previous(key, event_version)
            version = event_version
            chain = link(chain, name, version, topic, state)
            # A notification from the start (the recorder reads it as the stored event it is); its
            # id is filled in once the store has said it, before anyone else sees it.
            stored_events.append(Notification(key, version, topic, state + MARK + chain.encode(), 0))
        if key is not None:
            written[key] = (version, chain)
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        self._remember(written)  # only what was really written
        if not notification_ids:
            return []
        recordings = []
        for domain_event, notification, notification_id in zip(
            domain_events, stored_events, notification_ids, strict=True
        ):
            object.__setattr__(notification, "id", notification_id)  # frozen, and not yet shared
            recordings.append(Recording(domain_event, notification))
        return recordings

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[Any]:
        rows = self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        if rows and not desc and lte is None:
            self.remember_last(rows[-1:])
        return map(self.mapper.to_domain_event, rows)


@dataclass(frozen=True)
class BrokenLink:
    notification_id: int
    originator_id: str
    originator_version: int
    reason: str


@dataclass(frozen=True)
class Verified:
    events: int
    streams: int
    broken: BrokenLink | None


def verify(recorder: ApplicationRecorder, page: int = 5000) -> Verified:
    """Walk the whole store in order and recompute every stream's chain."""
    heads: dict[str, tuple[int, str]] = {}
    position, events = 0, 0
    while True:
        notifications = recorder.select_notifications(position, page, inclusive_of_start=False)
        for n in notifications:
            events += 1
            key = str(n.originator_id)
            body, chain = split(n.state)
            version, previous = heads.get(key, (0, GENESIS))
            if n.originator_version != version + 1:
                why = f"expected version {version + 1} of this stream, found {n.originator_version}"
                return Verified(events, len(heads), BrokenLink(n.id, key, n.originator_version, why))
            if chain is None:
                return Verified(
                    events, len(heads), BrokenLink(n.id, key, n.originator_version, "no chain link")
                )
            if chain != link(previous, n.originator_id, n.originator_version, n.topic, body):
                why = "hash does not match the event's content and the previous link (edited?)"
                return Verified(events, len(heads), BrokenLink(n.id, key, n.originator_version, why))
            heads[key] = (n.originator_version, chain)
            position = n.id
        if len(notifications) < page:
            return Verified(events, len(heads), None)
