"""JWT bearer authentication: who is calling, in which role, and the Meta their commands carry."""

from __future__ import annotations

import uuid
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


class TokenAuthority:
    """Issues and checks HS256 tokens with one shared secret (from settings)."""

    def __init__(self, secret: str, issuer: str) -> None:
        self._secret = secret
        self._issuer = issuer

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
        region = claims.get("region")
        return Principal(actor_id=str(claims["sub"]), role=role, region=region)
