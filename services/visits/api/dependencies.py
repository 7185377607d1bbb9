"""The visits application as a typed FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from services.visits.application import VisitsApplication
from shared.web import application_dependency

Visits = Annotated[VisitsApplication, application_dependency(VisitsApplication)]
