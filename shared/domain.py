"""Pure building blocks every service's domain shares: who did a thing and when, and domain errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

ROLES = ("rep", "manager", "qc", "hr", "ops", "admin", "system")

# Ids derived from natural keys (a company, a consumer cursor) are stable across replays.
IRONARMY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:ironarmy")


def stable_id(*parts: object) -> UUID:
    """A UUID that is the same every time for the same natural key."""
    return uuid5(IRONARMY_NAMESPACE, "/".join(str(p) for p in parts))


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
