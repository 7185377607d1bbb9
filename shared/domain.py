"""Pure building blocks every service's domain shares: who did a thing and when, and domain errors."""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import (
    CanMutateAggregate,
    CommandMethodDecorator,
    DecoratedFuncCaller,
    decorated_func_callers,
)

ROLES = ("rep", "manager", "qc", "hr", "ops", "admin", "system")

# Ids derived from natural keys (a company, a consumer cursor) are stable across replays.
IRONARMY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:ironarmy")


@lru_cache(maxsize=1 << 16, typed=True)
def stable_id(*parts: object) -> UUID:
    """A UUID that is the same every time for the same natural key (and, for recent keys, the
    same object: uuid5 costs a SHA-1, and consumers derive two ids a message)."""
    return uuid5(IRONARMY_NAMESPACE, "/".join(str(p) for p in parts))


_NAMESPACE_BYTES = IRONARMY_NAMESPACE.bytes


def uuid5_text(name: bytes) -> str:
    """`str(uuid5(IRONARMY_NAMESPACE, name))`, for names seen once (an event's id as the relay
    publishes it): no UUID object made on the way, the version and variant set on the digest's
    text."""
    x = hashlib.sha1(_NAMESPACE_BYTES + name).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


# RFC 4122 variant: the top two bits of the clock sequence are 10.
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


@dataclass(frozen=True)
class Meta:
    """Who caused a domain event, when (by the service's clock), and in which conversation.

    Every @event method of every aggregate takes one, so the envelope on Kafka can say
    who did what, when, and because of what, without the domain reading a clock.
    """

    actor_id: str
    actor_role: str
    at: datetime
    correlation_id: str = ""
    causation_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "at": self.at,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


class DomainError(Exception):
    """A rule of the domain refused a command. Mapped to a 4xx in one place (shared.web)."""

    status_code = 422
    code = "rule_violated"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The command clashes with the current state (a duplicate, a lost race)."""

    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class RuleViolated(DomainError):
    status_code = 422
    code = "rule_violated"


A = TypeVar("A", bound=type)

_PLAIN_PARAMETERS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_GIVEN_BY_THE_LIBRARY = {"self", "originator_id", "originator_version", "timestamp"}


def direct_events(cls: A) -> A:
    """Class decorator for an aggregate: its `@event` methods trigger, and their events apply,
    without the library's matching of arguments to parameters on every call.

    The library binds a decorator object to the aggregate on each call, turns the arguments into
    a dict by the method's cached signature, filters it by the event class's, and on applying
    copies the event's attributes and filters them again by the method's: about a fifth of the
    thread that applies consumed events (py-spy on the probe consumer, session 9). Here each such
    method is replaced, once, by a function with the method's own parameters that triggers its
    event class with them by name; the event class applies itself by calling the method with
    its attributes of those names. The event classes, their topics and attributes, and what is
    applied are the library's, and so is what a call is refused for, but one thing: a
    keyword-only parameter with a default may be left out (the library asks for it anyway).
    `__init__` (the created event), property setters, methods with positional-only or variadic
    parameters, and methods given an event class whose fields are not their parameters keep the
    library's way."""
    for name, attribute in list(vars(cls).items()):
        if not isinstance(attribute, CommandMethodDecorator):
            continue
        func = attribute.decorated_func
        event_cls: type[Any] | None = decorated_func_callers.get(attribute)
        if (
            func.__name__ == "__init__"
            or event_cls is None
            or attribute.is_property_setter
            or attribute.decorated_property is not None
        ):
            continue
        parameters = list(inspect.signature(func).parameters.values())[1:]  # after self
        if (
            any(p.kind not in _PLAIN_PARAMETERS for p in parameters)
            or {p.name for p in parameters} != _fields(event_cls)
            or not _applies_alone(event_cls)
        ):
            continue
        setattr(cls, name, _triggering(func, event_cls, parameters))
        event_cls.apply = _applying(func, [p.name for p in parameters])
    return cls


def _fields(event_cls: type[Any]) -> set[str]:
    """What an event of the class is made with, besides what `trigger_event` gives every event
    (the library passes a method's arguments of these names only)."""
    return set(inspect.signature(event_cls).parameters) - _GIVEN_BY_THE_LIBRARY


def _applies_alone(event_cls: type[Any]) -> bool:
    """The event class applies only by the library's decorated-method caller (nothing of its own
    or of its bases to call after it)."""
    mro = event_cls.__mro__
    owners = [klass for klass in mro if "apply" in vars(klass)]
    return owners[:1] == [DecoratedFuncCaller] and owners[1:2] == [CanMutateAggregate]


def _triggering(func: Callable[..., Any], event_cls: type[Any], parameters: list[inspect.Parameter]) -> Any:
    """`def <name>(self, <its parameters>): self.trigger_event(<event class>, <each by name>)`,
    made once from the method's signature (as dataclasses make __init__), its defaults bound."""
    namespace: dict[str, Any] = {"_event_cls": event_cls}
    signature, star = [], False
    for p in parameters:
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            signature.append("*")
            star = True
        if p.default is inspect.Parameter.empty:
            signature.append(p.name)
        else:
            namespace[f"_default_{p.name}"] = p.default
            signature.append(f"{p.name}=_default_{p.name}")
    passed = ", ".join(f"{p.name}={p.name}" for p in parameters)
    source = (
        f"def {func.__name__}(self, {', '.join(signature)}):\n    self.trigger_event(_event_cls, {passed})\n"
    )
    exec(source, namespace)  # made above from the method's own parameter names only
    return functools.update_wrapper(namespace[func.__name__], func)


def _applying(func: Callable[..., Any], names: list[str]) -> Callable[[Any, Any], None]:
    def apply(self: Any, aggregate: Any) -> None:
        state = self.__dict__
        func(aggregate, **{name: state[name] for name in names if name in state})

    return apply
