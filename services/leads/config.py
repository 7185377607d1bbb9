"""The leads service's typed settings: the platform's, plus its leads policy (IRONARMY_POLICY__*)."""

from __future__ import annotations

from pydantic import Field

from services.leads.policy import LeadsPolicy
from shared.settings import ServiceSettings


class LeadsSettings(ServiceSettings):
    """`IRONARMY_POLICY__FOLLOW_UP_HOURS=36` sets `policy.follow_up_hours`; an inconsistent policy
    (e.g. a default quota outside the band) refuses to start."""

    policy: LeadsPolicy = Field(default_factory=LeadsPolicy)
    clock_jobs_every_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="How often, in clock time, follow-up warnings, reclaims and the daily run are looked at",
    )
