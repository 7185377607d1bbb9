"""The Region aggregate: a sales territory with a name and a place on the map."""

from __future__ import annotations

import re
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.rotation.domain.values import GeoPoint, require_planner, require_text
from shared.domain import Meta, RuleViolated, direct_events, stable_id

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@direct_events
class Region(Aggregate):
    @staticmethod
    def create_id(code: str) -> UUID:
        return stable_id("region", code)

    @event("Opened")
    def __init__(self, code: str, name: str, location: GeoPoint, meta: Meta) -> None:
        require_planner(meta, "open a region")
        if not CODE.match(code):
            raise RuleViolated(
                f"region code '{code}' must be lower-case letters, digits, '-' or '_'", field="code"
            )
        self.code = code
        self.name = require_text(name, "name")
        self.location = location
        self.opened_at = meta.at
