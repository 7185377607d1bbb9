"""The visits service's ASGI app, with settings from the environment:
`uvicorn --factory services.visits.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.visits.bootstrap import spec
from services.visits.config import VisitsSettings
from shared.service import build_service
from shared.web import create_app as create_service_app


def create_app() -> FastAPI:
    return create_service_app(build_service(spec(), VisitsSettings()))
