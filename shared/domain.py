"""Pure building blocks every service's domain shares: who did a thing and when, and domain errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

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
