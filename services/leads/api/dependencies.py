"""The leads application as a typed FastAPI dependency (tests may override it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.leads.application import LeadsApplication
from shared.web import Context


async def get_leads(context: Context) -> LeadsApplication:
    application = context.application
    assert isinstance(application, LeadsApplication), "the leads routes need the leads service"
    return application


Leads = Annotated[LeadsApplication, Depends(get_leads)]
