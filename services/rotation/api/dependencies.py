"""The rotation application as a typed FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from services.rotation.application import RotationApplication
from shared.web import application_dependency

Rotation = Annotated[RotationApplication, application_dependency(RotationApplication)]
