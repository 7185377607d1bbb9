"""The envelope every integration event travels in, and the base of every public payload."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.domain import Meta

SERVICES = ("leads", "visits", "reviews", "rotation")


class IntegrationEvent(BaseModel):
    """A public payload: a past-tense fact one service tells the others and analytics.

    Subclasses set `event_type`, `schema_version` and `service` (whose topic carries it).
    A breaking change to a payload is a new schema_version, never an edit in place.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    service: ClassVar[str]


class Envelope(BaseModel):
    """One integration event on the wire. Kafka key = aggregate_id, so one aggregate stays in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(description="Stable id: the same stored event always has the same id")
    event_type: str
    schema_version: int = Field(ge=1)
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int = Field(ge=1, description="Position of the event in its aggregate")
    occurred_at: datetime = Field(description="When it happened, by the service's clock")
    recorded_at: datetime = Field(description="When the event store recorded it")
    actor_id: str
    actor_role: str
    correlation_id: str = ""
    causation_id: str = ""
    payload: dict[str, Any]

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    def caused_meta(self, actor_id: str | None = None, actor_role: str | None = None) -> Meta:
        """The Meta of what a consumer derives from this event: when it happened and because of
        it, by the sender's actor unless the consuming service acts in its own name. The same
        envelope always gives the same Meta, so a replay derives the same events."""
        return Meta(
            actor_id=actor_id or self.actor_id,
            actor_role=actor_role or self.actor_role,
            at=self.occurred_at,
            correlation_id=self.correlation_id,
            causation_id=str(self.event_id),
        )
