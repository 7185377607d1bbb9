"""Idempotency-Key for creating POSTs: a retry with the same key gets the first response and
writes nothing new; the same key with another body is refused.

A key is claimed in the service's own store before the command runs (a concurrent claim of the
same key loses the race on the aggregate's version and gets 409), and completed with the
response afterwards. Keys are scoped to the caller, so two users never collide.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.datastructures import URL, Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.application import ServiceApplication
from shared.auth import TokenAuthority, Unauthenticated
from shared.domain import direct_events, stable_id

HEADER = "idempotency-key"
# A claim whose request never completed (the process died) may be taken over after this long.
ABANDONED_AFTER = timedelta(minutes=2)


@direct_events
class IdempotentRequest(Aggregate):
    @staticmethod
    def create_id(caller: str, key: str) -> UUID:
        return stable_id("idempotency", caller, key)

    def __init__(self, caller: str, key: str, request_hash: str, claimed_at: datetime) -> None:
        self.caller = caller
        self.key = key
        self.request_hash = request_hash
        self.claimed_at = claimed_at
        self.status_code: int | None = None
        self.body: bytes | None = None
        self.media_type: str | None = None

    @event("Completed")
    def complete(self, status_code: int, body: str, media_type: str) -> None:
        self.status_code = status_code
        self.body = body.encode()
        self.media_type = media_type

    @event("Reclaimed")
    def take_over(self, request_hash: str, claimed_at: datetime) -> None:
        self.request_hash = request_hash
        self.claimed_at = claimed_at


def _refusal(status: int, message: str) -> JSONResponse:
    code = "idempotency_key_reused" if status == 422 else "request_in_progress"
    return JSONResponse(
        status_code=status, content={"error": code, "message": message, "field": "Idempotency-Key"}
    )


class IdempotencyGuard:
    """Plain ASGI middleware (no per-request task group or response streaming wrapper): only a
    POST with an Idempotency-Key and a bearer token pays for anything beyond one header lookup."""

    def __init__(self, app: ASGIApp, application: ServiceApplication, tokens: TokenAuthority) -> None:
        self.app = app
        self.application = application
        self.tokens = tokens

    def claim(self, caller: str, key: str, request_hash: str) -> IdempotentRequest | Response:
        """Claim the key for this request, or say what to answer instead of running it."""
        record_id = IdempotentRequest.create_id(caller, key)
        now = datetime.now(UTC)  # real time: how long a request has been running
        try:
            record: Any = self.application.repository.get(record_id)
        except AggregateNotFoundError:
            record = IdempotentRequest(caller, key, request_hash, now)
        else:
            if record.request_hash != request_hash:
                return _refusal(422, "this Idempotency-Key was used with a different request")
            if record.status_code is not None:
                return Response(
                    record.body,
                    status_code=record.status_code,
                    media_type=record.media_type,
                    headers={"Idempotent-Replayed": "true"},
                )
            if now - record.claimed_at < ABANDONED_AFTER:
                return _refusal(409, "a request with this Idempotency-Key is still in progress")
            record.take_over(request_hash, now)
        try:
            self.application.save(record)
        except IntegrityError:
            return _refusal(409, "a request with this Idempotency-Key is in progress")
        return record  # type: ignore[no-any-return]

    def complete(self, record: IdempotentRequest, response_body: bytes, status: int, media_type: str) -> None:
        record.complete(status, response_body.decode(), media_type)
        self.application.save(record)

    def caller(self, headers: Headers) -> str | None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        try:
            return self.tokens.verify(auth[7:]).actor_id
        except Unauthenticated:
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 200:
            await _refusal(422, "Idempotency-Key must be 1 to 200 characters")(scope, receive, send)
            return
        caller = self.caller(headers)
        if caller is None:
            await self.app(scope, receive, send)  # the route answers 401 itself
            return
        body = await _read_body(receive)
        path = URL(scope=scope).path
        request_hash = hashlib.sha256(b"POST" + path.encode() + b"\0" + body).hexdigest()
        claimed = await asyncio.to_thread(self.claim, caller, key, request_hash)
        if isinstance(claimed, Response):
            await claimed(scope, receive, send)
            return

        replayed = False

        async def receive_body() -> Message:
            # The route reads the body already read; after it, whatever the client sends next.
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        # The answer is held back until the key is completed with it, as a retry will get it.
        start: Message = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive_body, hold)
        status: int = start["status"]
        content = b"".join(chunks)
        if status < 500:
            # A 4xx is an answer too; a 5xx is not, and may be retried with the same key.
            media_type = Headers(raw=start.get("headers", [])).get("content-type", "application/json")
            await asyncio.to_thread(self.complete, claimed, content, status, media_type)
        await send(start)
        await send({"type": "http.response.body", "body": content, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)
