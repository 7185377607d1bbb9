"""Idempotency-Key for creating POSTs: a retry with the same key gets the first response and
writes nothing new; the same key with another body is refused.

A key is claimed in the service's own store before the command runs (a concurrent claim of the
same key loses the race on the aggregate's version and gets 409), and completed with the
response afterwards. Keys are scoped to the caller, so two users never collide.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from shared.application import ServiceApplication
from shared.auth import TokenAuthority, Unauthenticated
from shared.domain import stable_id

HEADER = "idempotency-key"
# A claim whose request never completed (the process died) may be taken over after this long.
ABANDONED_AFTER = timedelta(minutes=2)


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
    def __init__(self, application: ServiceApplication, tokens: TokenAuthority) -> None:
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

    def caller(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        try:
            return self.tokens.verify(auth[7:]).actor_id
        except Unauthenticated:
            return None

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return await call_next(request)
        if not 1 <= len(key) <= 200:
            return _refusal(422, "Idempotency-Key must be 1 to 200 characters")
        caller = self.caller(request)
        if caller is None:
            return await call_next(request)  # the route answers 401 itself
        body = await request.body()
        request_hash = hashlib.sha256(
            request.method.encode() + request.url.path.encode() + b"\0" + body
        ).hexdigest()
        claimed = await asyncio.to_thread(self.claim, caller, key, request_hash)
        if isinstance(claimed, Response):
            return claimed
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        if response.status_code < 500:
            # A 4xx is an answer too; a 5xx is not, and may be retried with the same key.
            await asyncio.to_thread(
                self.complete,
                claimed,
                content,
                response.status_code,
                response.media_type or "application/json",
            )
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(
            content, status_code=response.status_code, headers=headers, media_type=response.media_type
        )
