"""The reviews service's typed settings: the platform's, plus its review policy (IRONARMY_POLICY__*)."""

from __future__ import annotations

from pydantic import Field

from services.reviews.policy import ReviewsPolicy
from shared.settings import ServiceSettings


class ReviewsSettings(ServiceSettings):
    """`IRONARMY_POLICY__MIN_EXAMPLE_CHARS=20` sets `policy.min_example_chars`, and
    `IRONARMY_POLICY__OUTCOME__BAND_A_MIN=0.85` a threshold of the outcome; an inconsistent policy
    (e.g. band B above band A) refuses to start. The red-line seed is only the first list: hr
    edits the rules at run time."""

    policy: ReviewsPolicy = Field(default_factory=ReviewsPolicy)
    open_reviews_every_minutes: int = Field(
        default=60,
        ge=1,
        description="How often, in clock time, the scheduler opens the reviews whose window has come",
    )
