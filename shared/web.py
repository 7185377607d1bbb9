"""The FastAPI app every service runs: lifespan, health, metrics, auth dependencies, and the
one place where errors become HTTP responses."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Principal, Unauthenticated
from shared.clock import MovableClock
from shared.domain import Conflict, DomainError, Meta
from shared.idempotency import IdempotencyGuard
from shared.runtime import tune_gc
from shared.service import ServiceContext

log = logging.getLogger(__name__)

A = TypeVar("A")

_bearer = HTTPBearer(auto_error=False)


# The dependencies below are `async def`: they do no I/O, and a plain `def` would cost each
# request a hop to the thread pool and back per dependency. Each reads what it needs from the
# request itself rather than from other dependencies: FastAPI solves a dependency's whole tree
# again wherever it is used (caching only the calls), ~10 µs a node on every request.
def _context(request: Request) -> ServiceContext[Any]:
    context: ServiceContext[Any] = request.app.state.context
    return context


async def get_context(request: Request) -> ServiceContext[Any]:
    return _context(request)


Context = Annotated[ServiceContext[Any], Depends(get_context)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    return _context(request).tokens.verify(credentials.credentials)  # remembered once verified


async def get_principal(request: Request, credentials: Bearer) -> Principal:
    return _principal(request, credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def command_meta(request: Request, credentials: Bearer) -> Meta:
    """Who is acting, at the service's clock time, in which conversation (request ids)."""
    request_id: str = request.state.request_id
    return _principal(request, credentials).meta(
        _context(request).clock.now(),
        correlation_id=request.headers.get("x-correlation-id", request_id),
        causation_id=request_id,
    )


CommandMeta = Annotated[Meta, Depends(command_meta)]


def application_dependency(kind: type[A]) -> Any:
    """`Depends` on the service's application, which must be a `kind` (a service's routes need
    their own service's)."""

    async def get_application(request: Request) -> A:
        application = _context(request).application
        assert isinstance(application, kind), f"these routes need the {kind.__name__}"
        return application

    return Depends(get_application)


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(status_code=status, content=body)


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, DomainError)
        response = _error(
            error.status_code, error.code, error.message, field=error.field, details=error.details or None
        )
        if isinstance(error, Unauthenticated):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def invalid_request(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in error.errors()]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _error(422, "invalid_request", summary, fields=fields)

    async def lost_race(_: Request, error: Exception) -> Response:
        # Optimistic concurrency: someone else changed the aggregate first.
        return _error(409, Conflict.code, "changed concurrently by another request; read again and retry")

    async def not_found(_: Request, error: Exception) -> Response:
        return _error(404, "not_found", "no such thing (unknown id)")

    async def store_unavailable(_: Request, error: Exception) -> Response:
        log.warning("event store unavailable: %s", error)
        response = _error(503, "store_unavailable", "the event store is unavailable; retry shortly")
        response.headers["Retry-After"] = "2"
        return response

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        return _error(error.status_code, "http_error", str(error.detail))

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(IntegrityError, lost_race)
    app.add_exception_handler(AggregateNotFoundError, not_found)
    app.add_exception_handler(OperationalError, store_unavailable)
    app.add_exception_handler(InterfaceError, store_unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)


class FieldErrorPublic(BaseModel):
    field: str
    message: str


class ErrorPublic(BaseModel):
    """Every 4xx/5xx answer: a code, a message a person understands, and the field at fault."""

    error: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None
    fields: list[FieldErrorPublic] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorPublic, "description": description}
    for status, description in {
        401: "No valid bearer token",
        403: "The caller's role or region may not do this",
        404: "No such thing",
        409: "Conflicts with the current state (a duplicate, or changed concurrently)",
        422: "Invalid input; `field` names it",
        503: "The event store is unavailable; retry after Retry-After seconds",
    }.items()
}


class HealthPublic(BaseModel):
    status: str
    service: str


class ReadinessPublic(BaseModel):
    ready: bool
    checks: dict[str, str]


class ClockPublic(BaseModel):
    now: datetime
    movable: bool


LATEST_CLOCK = datetime(2200, 1, 1, tzinfo=UTC)  # simulated time stays within what dates can hold


class ClockMove(BaseModel):
    to: datetime | None = Field(default=None, description="Move the clock to this time (timezone-aware)")
    advance_seconds: float | None = Field(
        default=None,
        ge=0,
        le=10 * 366 * 86400,
        description="Or move it forward by this much (up to 10 years)",
    )


def _platform_router() -> APIRouter:
    router = APIRouter(tags=["platform"])

    @router.get("/healthz", response_model=HealthPublic)
    async def healthz(context: Context) -> HealthPublic:
        return HealthPublic(status="ok", service=context.spec.name)

    @router.get("/readyz", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}})
    async def readyz(context: Context) -> Response:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(asyncio.to_thread(context.application.recorder.max_notification_id), 5)
            checks["store"] = "ok"
        except (OperationalError, InterfaceError, TimeoutError) as error:
            checks["store"] = f"unavailable: {error}"
        checks["kafka"] = "ok" if context.kafka_connected else "not connected"
        if context.failures:
            checks["background"] = "failing: " + "; ".join(context.failures)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "checks": checks})

    @router.get(
        "/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}}
    )
    async def metrics(context: Context) -> Response:
        return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/_clock", response_model=ClockPublic, responses=ERROR_RESPONSES)
    async def read_clock(context: Context, _: CurrentPrincipal) -> ClockPublic:
        return ClockPublic(now=context.clock.now(), movable=isinstance(context.clock, MovableClock))

    @router.post("/_clock", response_model=ClockPublic, responses=ERROR_RESPONSES)
    async def move_clock(context: Context, principal: CurrentPrincipal, move: ClockMove) -> ClockPublic:
        principal.require("admin", "ops")
        clock = context.clock
        if not isinstance(clock, MovableClock):
            raise Conflict("this service runs on the system clock (IRONARMY_CLOCK=system)")
        if move.to is not None:
            target = move.to
        elif move.advance_seconds is not None:
            target = clock.now() + timedelta(seconds=move.advance_seconds)
        else:
            raise DomainError("give `to` or `advance_seconds`", field="body")
        if target.tzinfo is None:
            raise DomainError("the time must say its timezone (e.g. ...Z)", field="body.to")
        if target >= LATEST_CLOCK:
            raise DomainError(f"the clock cannot go past {LATEST_CLOCK:%Y-%m-%d}", field="body")
        try:
            clock.set(target)
        except ValueError as error:
            raise DomainError(str(error), field="body.to") from error
        return ClockPublic(now=clock.now(), movable=True)

    return router


class RequestIdAndMetrics:
    """Outermost, as plain ASGI (no per-request task group): keeps or makes the request id,
    echoes it, and counts and times every request by route."""

    def __init__(self, app: ASGIApp, context: ServiceContext[Any]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            metrics, service = self.context.metrics, self.context.spec.name
            metrics.requests.labels(service, scope["method"], path, str(status)).inc()
            metrics.request_seconds.labels(service, path).observe(time.perf_counter() - started)


def create_app(context: ServiceContext[Any]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tune_gc()
        await context.start()
        try:
            yield
        finally:
            await context.stop()

    app = FastAPI(
        title=f"Iron Army — {context.spec.name}",
        version="1",
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    # Added first, so it runs inside the request-id middleware: replayed answers get an id too.
    app.add_middleware(IdempotencyGuard, application=context.application, tokens=context.tokens)

    app.add_middleware(RequestIdAndMetrics, context=context)

    app.include_router(_platform_router())
    for router in context.spec.routers:
        app.include_router(router, responses=ERROR_RESPONSES)
    return app
