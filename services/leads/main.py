"""The leads service's ASGI app, with settings from the environment:
`uvicorn --factory services.leads.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.leads.bootstrap import spec
from services.leads.config import LeadsSettings
from shared.service import build_service
from shared.web import create_app as create_service_app


def create_app() -> FastAPI:
    return create_service_app(build_service(spec(), LeadsSettings()))
