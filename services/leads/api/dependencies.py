"""The leads application as a typed FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from services.leads.application import LeadsApplication
from shared.web import application_dependency

Leads = Annotated[LeadsApplication, application_dependency(LeadsApplication)]
