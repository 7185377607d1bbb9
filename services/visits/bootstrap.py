"""The one place that wires the visits service: its application, the leads events it consumes,
its public events, its routes and its weekly job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from services.visits.api.views import ROUTERS
from services.visits.application import VisitsApplication
from services.visits.config import VisitsSettings
from services.visits.integration import to_integration
from shared.consumer import Handler
from shared.scheduler import ScheduledJob
from shared.service import ServiceSpec
from shared.settings import ServiceSettings

NAME = "visits"


def make_application(settings: ServiceSettings, env: dict[str, str]) -> VisitsApplication:
    assert isinstance(settings, VisitsSettings), "the visits service needs VisitsSettings"
    return VisitsApplication(env, policy=settings.policy)


def handlers(application: VisitsApplication) -> Mapping[str, Handler]:
    """The leads events that build the lead ownership timeline."""
    return application.handlers()


def jobs(application: VisitsApplication, settings: ServiceSettings) -> Sequence[ScheduledJob]:
    hours = settings.summarise_every_hours if isinstance(settings, VisitsSettings) else 24
    # Summarises the last full week (破窗理论); a week already summarised is left alone, so the
    # job may run daily and still sends each week's summary once, soon after Monday 00:00 UTC.
    return [
        ScheduledJob(
            name="summarise_last_week", every=timedelta(hours=hours), run=application.summarise_last_week
        )
    ]


def spec() -> ServiceSpec[VisitsApplication]:
    return ServiceSpec(
        name=NAME,
        make_application=make_application,
        translate=to_integration,
        routers=ROUTERS,
        settings_class=VisitsSettings,
        consumes=("leads",),
        handlers=handlers,
        jobs=jobs,
    )
