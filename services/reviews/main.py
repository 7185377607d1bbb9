"""The reviews ASGI app, from the environment: `uvicorn --factory services.reviews.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.reviews.bootstrap import spec
from services.reviews.config import ReviewsSettings
from shared.service import build_service
from shared.web import create_app as create_service_app


def create_app() -> FastAPI:
    return create_service_app(build_service(spec(), ReviewsSettings()))
