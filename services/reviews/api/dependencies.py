"""The reviews application as a typed FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from services.reviews.application import ReviewsApplication
from shared.web import application_dependency

Reviews = Annotated[ReviewsApplication, application_dependency(ReviewsApplication)]
