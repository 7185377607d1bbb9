"""The one place that wires the leads service: its application, the visits and rotation events it
consumes, its public events, its routes and its clock jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from services.leads.api.views import ROUTERS
from services.leads.application import LeadsApplication
from services.leads.config import LeadsSettings
from services.leads.integration import to_integration
from shared.consumer import Handler
from shared.scheduler import ScheduledJob
from shared.service import ServiceSpec
from shared.settings import ServiceSettings

NAME = "leads"


def make_application(settings: ServiceSettings, env: dict[str, str]) -> LeadsApplication:
    assert isinstance(settings, LeadsSettings), "the leads service needs LeadsSettings"
    return LeadsApplication(env, policy=settings.policy)


def handlers(application: LeadsApplication) -> Mapping[str, Handler]:
    """VisitLogged (a follow-up), ManagerAppointed and ManagerRotated (who manages a region)."""
    return application.handlers()


def jobs(application: LeadsApplication, settings: ServiceSettings) -> Sequence[ScheduledJob]:
    minutes = settings.clock_jobs_every_minutes if isinstance(settings, LeadsSettings) else 15
    every = timedelta(minutes=minutes)
    # In this order, so a tick's reclaimed leads are in the pool when that morning's run deals.
    return [
        ScheduledJob(name="warn_follow_ups_due", every=every, run=application.warn_follow_ups_due),
        ScheduledJob(name="reclaim_overdue", every=every, run=application.reclaim_overdue),
        ScheduledJob(name="daily_distribution", every=every, run=application.distribute_daily),
    ]


def spec() -> ServiceSpec[LeadsApplication]:
    return ServiceSpec(
        name=NAME,
        make_application=make_application,
        translate=to_integration,
        routers=ROUTERS,
        settings_class=LeadsSettings,
        consumes=("visits", "rotation"),
        handlers=handlers,
        jobs=jobs,
    )
