"""`shared.domain.direct_events`: an aggregate's @event methods called without the library's
per-call argument matching trigger the same events, accept and refuse the same calls, and apply
the same way."""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, CommandMethodDecorator, event

import services
import shared
from shared.domain import direct_events


def counter_body() -> dict[str, Any]:
    """The same aggregate body for two classes (each class its own topic, so two of them)."""

    def __init__(self: Any, name: str) -> None:
        self.name = name
        self.total = 0
        self.notes: list[str] = []

    @event("Counted")
    def count(self: Any, by: int, step: int = 1, *, note: str, tag: str | None = None) -> None:
        """Count `by` `step` times."""
        self.total += by * step
        self.notes.append(f"{note}/{tag}")

    @event("Renamed")
    def _renamed(self: Any, name: str) -> None:
        self.name = name

    def rename(self: Any, name: str) -> None:
        if not name:
            raise ValueError("a name")
        self._renamed(name)

    class Moved(Aggregate.Event):  # an event class of its own, its fields the method's parameters
        to: str

    @event(Moved)
    def move(self: Any, to: str) -> None:
        self.place = to

    class Noted(Aggregate.Event):  # one whose fields are not: the library's way
        text: str

    @event(Noted)
    def note(self: Any, text: str, loud: bool = False) -> None:
        self.noted = text.upper() if loud else text

    return {
        "__init__": __init__,
        "count": count,
        "_renamed": _renamed,
        "rename": rename,
        "Moved": Moved,
        "move": move,
        "Noted": Noted,
        "note": note,
        "__module__": __name__,
    }


LibraryCounter = type("LibraryCounter", (Aggregate,), counter_body())
DirectCounter = direct_events(type("DirectCounter", (Aggregate,), counter_body()))


def make_counter(*, direct: bool) -> type[Any]:
    return DirectCounter if direct else LibraryCounter


IDENTITY = ("originator_id", "timestamp", "originator_topic")  # differ between the two classes

# (The library asks for a keyword-only parameter even when it has a default: every call names `tag`.)
CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((2,), {"note": "a", "tag": None}),
    ((2, 3), {"note": "b", "tag": "t"}),
    ((), {"by": 4, "note": "c", "tag": "u"}),
    ((5,), {"step": 2, "note": "d", "tag": None}),
]


def counted(cls: type[Any]) -> Any:
    counter = cls("c")
    for args, kwargs in CALLS:
        counter.count(*args, **kwargs)
    counter.rename("d")
    counter.move("north")
    counter.note("hello")
    return counter


def test_the_same_events_with_the_same_attributes_and_the_same_state() -> None:
    library, direct = counted(make_counter(direct=False)), counted(make_counter(direct=True))
    events = library.collect_events(), direct.collect_events()
    assert [type(e).__name__ for e in events[0]] == [type(e).__name__ for e in events[1]]
    for ours, theirs in zip(*events, strict=True):
        mine = {k: v for k, v in vars(ours).items() if k not in IDENTITY}
        assert mine == {k: v for k, v in vars(theirs).items() if k not in IDENTITY}
    state = ("total", "notes", "name", "place", "noted", "version")
    assert [getattr(direct, a) for a in state] == [getattr(library, a) for a in state]
    assert direct.notes == ["a/None", "b/t", "c/u", "d/None"]
    # A default is given to the event, as the library gives it.
    assert [e.step for e in events[1][1:5]] == [1, 3, 1, 2]


def test_applying_the_events_again_rebuilds_the_aggregate() -> None:
    cls = make_counter(direct=True)
    counter = counted(cls)
    replayed = None
    for domain_event in counter.collect_events():
        replayed = copy.copy(domain_event).mutate(replayed)
    assert replayed is not None
    assert (replayed.total, replayed.notes, replayed.name) == (counter.total, counter.notes, counter.name)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {"note": "x"}),  # missing a positional
        ((1,), {}),  # missing a keyword-only one
        ((1, 2, 3), {"note": "x"}),  # too many positionals
        ((1,), {"note": "x", "colour": "red"}),  # an unknown name
        ((1,), {"by": 1, "note": "x"}),  # one given twice
    ],
)
def test_a_call_the_library_refuses_is_refused(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for direct in (False, True):
        counter = make_counter(direct=direct)("c")
        with pytest.raises(TypeError):
            counter.count(*args, **kwargs)
        assert counter.collect_events()[1:] == []  # nothing triggered


def test_the_method_keeps_its_name_and_signature() -> None:
    cls = make_counter(direct=True)
    assert cls.count.__name__ == "count" and cls.count.__doc__ == make_counter(direct=False).count.__doc__
    assert list(inspect.signature(cls.count).parameters) == ["self", "by", "step", "note", "tag"]
    assert cls.count is not LibraryCounter.count  # replaced: the test above compares two ways
    assert cls.move is not LibraryCounter.move
    assert type(vars(cls)["note"]) is type(vars(LibraryCounter)["note"])  # left to the library


def test_every_aggregate_of_the_services_triggers_its_events_directly() -> None:
    """A new aggregate without the decorator would still work, only slower: caught here."""
    left: list[str] = []
    for package in (services, shared):
        for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(module_info.name)
            for cls in vars(module).values():
                if not (
                    isinstance(cls, type) and issubclass(cls, Aggregate) and cls.__module__ == module.__name__
                ):
                    continue
                left += [
                    f"{cls.__qualname__}.{name}"
                    for name, attribute in vars(cls).items()
                    if isinstance(attribute, CommandMethodDecorator) and name != "__init__"
                ]
    assert left == []
