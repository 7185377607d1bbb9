"""The one place that wires the reviews service: application, public events, routes, what it
consumes from leads and visits, and its scheduled jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from services.reviews.api.views import routers
from services.reviews.application import ReviewsApplication
from services.reviews.config import ReviewsSettings
from services.reviews.integration import to_integration
from services.reviews.policy import ReviewsPolicy
from shared.consumer import Handler
from shared.scheduler import ScheduledJob
from shared.service import ServiceSpec
from shared.settings import ServiceSettings


def make_application(settings: ServiceSettings, env: dict[str, str]) -> ReviewsApplication:
    policy = settings.policy if isinstance(settings, ReviewsSettings) else ReviewsPolicy()
    return ReviewsApplication(env, policy=policy)


def handlers(app: ReviewsApplication) -> Mapping[str, Handler]:
    """Every event type consumed, by name, to the application method that applies it."""
    return {
        # leads: the roster of reps, and converted leads as results
        "RepRegistered": app.on_rep_registered,
        "RepDeactivated": app.on_rep_deactivated,
        "RepReactivated": app.on_rep_reactivated,
        "LeadConverted": app.on_lead_converted,
        # visits: logged visits as results, and confirmed fabrications as red-line cases
        "VisitLogged": app.on_visit_logged,
        "FabricationConfirmed": app.on_fabrication_confirmed,
    }


def jobs(app: ReviewsApplication, settings: ServiceSettings) -> Sequence[ScheduledJob]:
    every = settings.open_reviews_every_minutes if isinstance(settings, ReviewsSettings) else 60
    return [ScheduledJob("open_due_reviews", timedelta(minutes=every), app.open_due_reviews)]


def spec() -> ServiceSpec[ReviewsApplication]:
    return ServiceSpec(
        name="reviews",
        make_application=make_application,
        translate=to_integration,
        routers=routers,
        settings_class=ReviewsSettings,
        consumes=("leads", "visits"),
        handlers=handlers,
        jobs=jobs,
    )
