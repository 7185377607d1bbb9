"""Stored event state as typed JSON: encoded and decoded in C (msgspec) from the event class's
own annotations, instead of the library's tagged JSON that calls back into Python for every
datetime, UUID and dataclass.

An event class whose fields are all of types this module knows (plain values, datetimes,
dates, timedeltas, UUIDs, enums, frozen dataclasses and TypedDicts of those, and tuples,
sequences, sets, mappings and optionals of them) gets a codec; any other (a snapshot's
free-form `state`, a field typed `Any`) keeps the library's transcoder. A snapshot class that
types its `state` (a TypedDict of the aggregate's attributes) gets one too. Which one applies
is a property of the class, so it is the same when the event is written and when it is read.

With IRONARMY_CHECK_CODEC=1 (the test suite sets it) every encoded state is decoded again at
once and compared, type for type, with what was encoded: an event whose runtime values do not
match its annotations (a UUID in a `str` field, a list in a `tuple` one) fails loudly there
instead of changing type on the way back from the store.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from collections import abc
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypedDict
from uuid import UUID

import msgspec

_LEAVES: frozenset[Any] = frozenset(
    {str, int, float, bool, type(None), bytes, datetime, date, time, timedelta, UUID, Decimal}
)
_SEQUENCES: frozenset[Any] = frozenset(
    {list, tuple, set, frozenset, abc.Sequence, abc.Set, abc.MutableSequence, abc.Collection}
)
_MAPPINGS: frozenset[Any] = frozenset({dict, abc.Mapping, abc.MutableMapping})
_UNIONS: frozenset[Any] = frozenset({typing.Union, types.UnionType})
# The identity of an event (the store's columns), and what the class says of itself.
_NOT_STATE = frozenset({"originator_id", "originator_version"})

CHECK = os.environ.get("IRONARMY_CHECK_CODEC", "") not in ("", "0")

_encoder = msgspec.json.Encoder()


class CodecMismatch(TypeError):
    """An event's values do not survive the trip through its own annotations."""


def supported(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a value of this annotation comes back from typed JSON as the same value."""
    if annotation in _LEAVES:
        return True
    if typing.is_typeddict(annotation):
        if annotation in seen or not annotation.__total__:
            return False
        try:
            hints = typing.get_type_hints(annotation)
        except (NameError, TypeError):
            return False
        return all(supported(hint, seen | {annotation}) for hint in hints.values())
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return True
        if dataclasses.is_dataclass(annotation):
            if annotation in seen:
                return False  # recursive types: not worth the risk
            if not all(f.init for f in dataclasses.fields(annotation)):
                return False
            try:
                hints = typing.get_type_hints(annotation)
            except (NameError, TypeError):
                return False
            fields = {f.name for f in dataclasses.fields(annotation)}
            return all(supported(hints[name], seen | {annotation}) for name in fields)
        return False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return all(type(a) in (str, int, bool) for a in args)
    if origin in _UNIONS:
        # Optional[X] only: a union of two rich types is ambiguous in JSON.
        rich = [a for a in args if a is not type(None)]
        return len(rich) == 1 and supported(rich[0], seen)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return supported(args[0], seen)
        return bool(args) and all(supported(a, seen) for a in args)
    if origin in _SEQUENCES:
        return len(args) == 1 and supported(args[0], seen)
    if origin in _MAPPINGS:
        return len(args) == 2 and args[0] in (str, int, UUID) and supported(args[1], seen)
    return False


class EventCodec:
    """Encodes one event class's state dict and decodes it back, typed, in one C call each."""

    def __init__(self, cls: type[Any], hints: dict[str, Any], *, check: bool = CHECK) -> None:
        self.cls = cls
        self.check = check
        self.fields = frozenset(hints)
        self._order = tuple(hints)  # the order the library's __init__ sets them in, usually
        state_type = TypedDict(f"{cls.__qualname__}State", hints)  # type: ignore[misc]
        self._decoder: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(state_type)

    def encode(self, state: dict[str, Any]) -> bytes:
        if tuple(state) != self._order and state.keys() != self.fields:
            raise CodecMismatch(
                f"{self.cls.__qualname__}: state has fields {sorted(state)}, "
                f"its annotations say {sorted(self.fields)}"
            )
        encoded = _encoder.encode(state)
        if self.check:
            back = self.decode(encoded)
            for name, value in state.items():
                if not same(value, back[name]):
                    raise CodecMismatch(
                        f"{self.cls.__qualname__}.{name}: {value!r} comes back as {back[name]!r}"
                    )
        return encoded

    def decode(self, data: bytes) -> dict[str, Any]:
        return self._decoder.decode(data)


_CODECS: dict[type[Any], EventCodec | None] = {}


def codec_for(cls: type[Any]) -> EventCodec | None:
    """The typed codec of an event class, or None when its state must stay in tagged JSON."""
    try:
        return _CODECS[cls]
    except KeyError:
        codec = _CODECS[cls] = _make_codec(cls)
        return codec


def _make_codec(cls: type[Any]) -> EventCodec | None:
    if getattr(cls, "class_version", 1) > 1:
        return None  # upcast from older shapes by the library
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        return None
    state = {
        name: hint
        for name, hint in hints.items()
        if name not in _NOT_STATE and typing.get_origin(hint) is not typing.ClassVar
    }
    if not state or not all(supported(hint) for hint in state.values()):
        return None
    return EventCodec(cls, state)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (a tuple and a list of the same items are
    the same: sequence-typed fields come back as lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and bool(a == b)
