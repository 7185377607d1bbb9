"""The visits service's typed settings: the platform's, plus its detection policy (IRONARMY_POLICY__*)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from services.visits.policy import VisitsPolicy
from shared.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    """Every detection threshold is a setting: `IRONARMY_POLICY__FAR_FROM_CUSTOMER_M=300`,
    `IRONARMY_POLICY__LATE_ENTRY_FLAG_AFTER=PT96H` (durations in ISO 8601),
    `IRONARMY_POLICY__DISABLED_RULES=late_entry,duplicate_visit` (or a JSON list), or the whole
    policy as JSON in `IRONARMY_POLICY`. An inconsistent policy (an unknown rule, a flag threshold
    under the minor one) refuses to start."""

    policy: VisitsPolicy = Field(default_factory=VisitsPolicy)
    summarise_every_hours: float = Field(
        default=24,
        gt=0,
        description="How often, in clock time, the last full week's minor breaches are summarised "
        "(a week already summarised is left alone, so running often is harmless)",
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _rules_as_a_list(cls, value: Any) -> Any:
        # A nested variable arrives as a plain string: let it name the rules as `a,b` too.
        if isinstance(value, dict) and isinstance(value.get("disabled_rules"), str):
            raw = value["disabled_rules"].strip()
            rules = (
                json.loads(raw) if raw.startswith("[") else [r.strip() for r in raw.split(",") if r.strip()]
            )
            return {**value, "disabled_rules": rules}
        return value
