"""The visits application as a typed FastAPI dependency (tests may override it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.visits.application import VisitsApplication
from shared.web import Context


async def get_visits(context: Context) -> VisitsApplication:  # no I/O: no thread hop
    application = context.application
    assert isinstance(application, VisitsApplication), "the visits routes need the visits service"
    return application


Visits = Annotated[VisitsApplication, Depends(get_visits)]
