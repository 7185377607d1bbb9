"""The rotation application as a typed FastAPI dependency (tests may override it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.rotation.application import RotationApplication
from shared.web import Context


async def get_rotation(context: Context) -> RotationApplication:
    application = context.application
    assert isinstance(application, RotationApplication), "the rotation routes need the rotation service"
    return application


Rotation = Annotated[RotationApplication, Depends(get_rotation)]
