"""The one place that wires the rotation service: its application, public events, routes and clock jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from services.rotation.api.views import ROUTERS
from services.rotation.application import RotationApplication
from services.rotation.config import RotationSettings
from services.rotation.integration import to_integration
from shared.consumer import Handler
from shared.scheduler import ScheduledJob
from shared.service import ServiceSpec
from shared.settings import ServiceSettings

NAME = "rotation"


def make_application(settings: ServiceSettings, env: dict[str, str]) -> RotationApplication:
    assert isinstance(settings, RotationSettings), "the rotation service needs RotationSettings"
    return RotationApplication(env, policy=settings.policy)


def handlers(_: RotationApplication) -> Mapping[str, Handler]:
    # Rotation reads no other service's topic: regions and managers are its own facts.
    return {}


def jobs(application: RotationApplication, settings: ServiceSettings) -> Sequence[ScheduledJob]:
    every = settings.carry_out_every_minutes if isinstance(settings, RotationSettings) else 60
    return [
        ScheduledJob(
            name="carry_out_due_moves",
            every=timedelta(minutes=every),
            run=application.carry_out_due_moves,
        )
    ]


def spec() -> ServiceSpec[RotationApplication]:
    return ServiceSpec(
        name=NAME,
        make_application=make_application,
        translate=to_integration,
        routers=ROUTERS,
        settings_class=RotationSettings,
        consumes=(),
        handlers=handlers,
        jobs=jobs,
    )
