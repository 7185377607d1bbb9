"""Typed JSON for stored events: what it accepts, that values come back as they went in, and
that an event whose values do not match its annotations is refused, not silently changed."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, Snapshot, event
from eventsourcing.persistence import Mapper

from shared.application import ServiceApplication
from shared.chain import ChainedMapper, split
from shared.codec import CodecMismatch, EventCodec, codec_for, same, supported
from shared.domain import Meta

AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
META = Meta("rep-1", "rep", AT, "corr-1", "cause-1")


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Point:
    lat: float
    lon: float


@dataclasses.dataclass(frozen=True)
class Loose:
    anything: Any


class Ledger(Aggregate):
    def __init__(self, owner: str, meta: Meta) -> None:
        self.owner = owner

    @event("Noted")
    def note(
        self,
        ref: UUID,
        day: date,
        lock: timedelta,
        points: tuple[Point, ...],
        tags: Sequence[str],
        scores: Mapping[str, int],
        colour: Colour,
        rating: int | None,
        where: Point | None,
        meta: Meta,
    ) -> None:
        self.last = ref

    @event("Loosely")
    def loosely(self, payload: dict[str, Any], meta: Meta) -> None:
        self.payload = payload


class Plain(TypedDict):
    where: Point
    names: list[str]


class Partial(TypedDict, total=False):
    where: Point


class Vague(TypedDict):
    anything: Any


@pytest.mark.parametrize(
    "annotation",
    [
        Plain,
        str,
        int,
        float,
        bool,
        datetime,
        date,
        timedelta,
        UUID,
        Colour,
        Point,
        Meta,
        int | None,
        tuple[Point, ...],
        tuple[str, int],
        Sequence[Point],
        Mapping[str, int],
        dict[UUID, str],
        frozenset[str],
    ],
)
def test_plain_values_dataclasses_and_containers_of_them_are_supported(annotation: Any) -> None:
    assert supported(annotation)


@pytest.mark.parametrize(
    "annotation",
    [
        Any,
        object,
        Loose,
        dict,
        list,
        dict[str, Any],
        int | str | Point,
        Point | Meta,
        dict[Point, int],
        Partial,  # a missing key would come back missing, or fail
        Vague,
    ],
)
def test_anything_that_could_come_back_as_another_type_is_not(annotation: Any) -> None:
    assert not supported(annotation)


def noted(ledger: Ledger) -> Any:
    ledger.note(
        uuid4(),
        date(2026, 3, 2),
        timedelta(hours=48),
        (Point(30.1, 120.2),),
        ["a", "b"],
        {"x": 1},
        Colour.RED,
        None,
        Point(1.5, 2.5),
        META,
    )
    return ledger.collect_events()[-1]


def test_an_event_comes_back_from_its_stored_state_equal_and_of_the_same_types() -> None:
    mapper = ChainedMapper(transcoder=ServiceApplication().construct_transcoder())
    original = noted(Ledger("o", META))
    back = mapper.to_domain_event(mapper.to_stored_event(original))
    assert type(back) is type(original)
    for name, value in vars(original).items():
        assert same(value, getattr(back, name)), name
    assert isinstance(back.points, tuple) and isinstance(back.points[0], Point)
    assert back.meta == META and back.meta.at.tzinfo is not None
    assert back.colour is Colour.RED and back.lock == timedelta(hours=48) and back.rating is None


def test_the_stored_state_is_plain_json_a_reader_can_follow() -> None:
    mapper = ChainedMapper(transcoder=ServiceApplication().construct_transcoder())
    state = mapper.to_stored_event(noted(Ledger("o", META))).state
    assert b'"day":"2026-03-02"' in state and b'"_type_"' not in state
    assert b'"at":"2026-03-02T09:30:15.123456Z"' in state


def test_events_and_snapshots_with_free_form_state_keep_the_tagged_json() -> None:
    app = ServiceApplication()
    mapper = ChainedMapper(transcoder=app.construct_transcoder())
    ledger = Ledger("o", META)
    ledger.loosely({"when": AT, "ref": UUID(int=7)}, META)
    loosely = ledger.collect_events()[-1]
    assert codec_for(type(loosely)) is None and codec_for(Snapshot) is None
    back = mapper.to_domain_event(mapper.to_stored_event(loosely))
    assert back.payload == {"when": AT, "ref": UUID(int=7)}
    snapshot = Snapshot.take(ledger)
    assert mapper.to_domain_event(mapper.to_stored_event(snapshot)).state == snapshot.state


def test_a_stored_event_with_its_chain_link_reads_as_without() -> None:
    mapper = ChainedMapper(transcoder=ServiceApplication().construct_transcoder())
    stored = mapper.to_stored_event(noted(Ledger("o", META)))
    linked = dataclasses.replace(stored, state=stored.state + b"\x00" + b"f" * 64)
    assert split(linked.state) == (stored.state, "f" * 64)
    assert vars(mapper.to_domain_event(linked)) == vars(mapper.to_domain_event(stored))


def test_an_event_stored_under_a_text_id_reads_with_its_uuid() -> None:
    """The mapper remembers what a topic reads as per type of stored id: the library's stores hand
    back UUIDs or their text, and either gives the event its UUID."""
    mapper = ChainedMapper(transcoder=ServiceApplication().construct_transcoder())
    original = noted(Ledger("o", META))
    stored = mapper.to_stored_event(original)
    as_text = dataclasses.replace(stored, originator_id=str(stored.originator_id))
    for _ in range(2):  # the second time from what the mapper remembers
        for each in (stored, as_text, stored):
            back = mapper.to_domain_event(each)
            assert type(back.originator_id) is UUID and vars(back) == vars(original)


def test_a_value_that_would_come_back_as_another_type_is_refused_when_checking() -> None:
    cls = type(noted(Ledger("o", META)))
    checking = EventCodec(cls, {"owner": str, "at": datetime}, check=True)
    with pytest.raises(CodecMismatch, match="owner"):
        checking.encode({"owner": UUID(int=1), "at": AT})  # a UUID in a str field
    not_checking = EventCodec(cls, {"owner": str, "at": datetime}, check=False)
    assert not_checking.decode(not_checking.encode({"owner": UUID(int=1), "at": AT}))["owner"] == str(
        UUID(int=1)
    )


def test_a_state_with_fields_its_annotations_do_not_name_is_refused() -> None:
    codec = EventCodec(Ledger, {"owner": str}, check=False)
    with pytest.raises(CodecMismatch, match="extra"):
        codec.encode({"owner": "o", "extra": 1})


def test_an_event_stored_in_the_tagged_json_of_before_still_reads() -> None:
    transcoder = ServiceApplication().construct_transcoder()
    original = Ledger("o", META).collect_events()[0]
    tagged = Mapper(transcoder=transcoder).to_stored_event(original)  # the library's own form
    assert b'"_type_"' in tagged.state and codec_for(type(original)) is not None
    back = ChainedMapper(transcoder=transcoder).to_domain_event(tagged)
    assert vars(back) == vars(original) and back.meta == META
