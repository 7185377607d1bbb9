"""The rotation service's typed settings: the platform's, plus its rotation policy (IRONARMY_POLICY__*)."""

from __future__ import annotations

from pydantic import Field

from services.rotation.policy import RotationPolicy
from shared.settings import ServiceSettings


class RotationSettings(ServiceSettings):
    """`IRONARMY_POLICY__DUE_AFTER_MONTHS=4` sets `policy.due_after_months`; an inconsistent
    policy (e.g. a minimum tenure above the due point) refuses to start."""

    policy: RotationPolicy = Field(default_factory=RotationPolicy)
    carry_out_every_minutes: int = Field(
        default=60,
        ge=1,
        description="How often, in clock time, approved plans whose date has come are carried out",
    )
