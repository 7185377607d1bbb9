"""JWT bearer authentication: who is calling, in which role, and the Meta their commands carry."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from shared.domain import ROLES, DomainError, Forbidden, Meta

ALGORITHM = "HS256"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. A rep acts only as themself; a manager only in their region."""

    actor_id: str
    role: str
    region: str | None = None

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"role '{self.role}' may not do this (needs one of: {', '.join(roles)})")

    def meta(self, at: datetime, correlation_id: str = "", causation_id: str = "") -> Meta:
        return Meta(
            actor_id=self.actor_id,
            actor_role=self.role,
            at=at,
            correlation_id=correlation_id or str(uuid.uuid4()),
            causation_id=causation_id,
        )


VERIFIED_CACHE_SIZE = 10_000  # tokens whose signature was checked, remembered until they expire


class TokenAuthority:
    """Issues and checks HS256 tokens with one shared secret (from settings).

    A token whose signature and claims were checked once is remembered (until it expires), so
    a client's next requests with it skip the HMAC and the claim checks."""

    def __init__(self, secret: str, issuer: str, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._issuer = issuer
        self._clock = clock  # real time, as the tokens' exp (the business clock may be moved)
        self._verified: dict[str, tuple[Principal, int]] = {}

    def issue(
        self,
        actor_id: str,
        role: str,
        *,
        now: datetime | None = None,
        region: str | None = None,
        ttl: timedelta = timedelta(hours=12),
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        # Tokens live in real time, whatever a movable business clock says.
        now = now or datetime.now(UTC)
        claims: dict[str, object] = {
            "sub": actor_id,
            "role": role,
            "iss": self._issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        if region is not None:
            claims["region"] = region
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if self._clock() < expires:
                return principal
            raise Unauthenticated("token expired")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["sub", "role", "exp", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("token expired") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}") from error
        role = claims["role"]
        if role not in ROLES:
            raise Unauthenticated(f"invalid token: unknown role {role!r}")
        principal = Principal(actor_id=str(claims["sub"]), role=role, region=claims.get("region"))
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, int(claims["exp"]))
        return principal
