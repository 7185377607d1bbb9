"""What the reviews routes depend on: the running application, taken from the service context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.reviews.application import ReviewsApplication
from shared.web import Context


async def get_reviews(context: Context) -> ReviewsApplication:
    application = context.application
    assert isinstance(application, ReviewsApplication)
    return application


Reviews = Annotated[ReviewsApplication, Depends(get_reviews)]
