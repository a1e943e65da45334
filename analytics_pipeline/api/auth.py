"""Bearer tokens: JWTs signed by the platform (HS256 or RS256), carrying `tenant_id` and `exp`
(and `aud` when API_JWT_AUDIENCE is set). Importable without FastAPI: `api token` mints here."""

from __future__ import annotations

import datetime as dt
import re
import time

import jwt

from ..core.events import MAX_ID_LENGTH, is_id
from .settings import JwtSettings, jwt_settings


class Unauthorized(Exception):
    """A request without a usable token. The message never contains the token."""


_TTL = re.compile(r"^(\d+)([smhd])$")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_ttl(raw: str) -> dt.timedelta:
    """`30m`, `1h`, `7d` -> timedelta; ValueError with a message otherwise."""
    match = _TTL.match(raw.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"must be a duration like 30m, 1h or 7d, got {raw!r}")
    return dt.timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})


def mint_token(tenant_id: str, ttl: dt.timedelta, settings: JwtSettings | None = None) -> str:
    settings = settings or jwt_settings()
    if settings.signing_key is None:
        raise ValueError(
            "tokens are verified with API_JWT_PUBLIC_KEY (RS256) and signed by the platform: "
            "unset it and set API_JWT_SECRET to mint local tokens"
        )
    now = dt.datetime.now(dt.UTC)
    claims = {"tenant_id": tenant_id, "iat": now, "exp": now + ttl}
    if settings.audience:
        claims["aud"] = settings.audience
    return jwt.encode(claims, settings.signing_key, algorithm=settings.algorithm)


class TokenVerifier:
    """`tenant_of(authorization)`: the tenant of a valid `Authorization: Bearer <JWT>` header,
    else Unauthorized. Remembers the tenant and `exp` of the last `MAX_REMEMBERED`
    tokens it accepted, so that a token sent again costs a lookup and the expiry check instead of
    a signature check. What else makes a token valid (signature, algorithm, audience, claims) is
    the token's own text and the server's settings, which do not change while it runs; `nbf` and
    `iat` only ever become true with time. Refusals are not remembered."""

    MAX_REMEMBERED = 4096

    def __init__(self, settings: JwtSettings):
        self.settings = settings
        self._accepted: dict[str, tuple[str, int]] = {}

    def tenant_of(self, authorization: str | None) -> str:
        token = _bearer_token(authorization)
        accepted = self._accepted.get(token)
        if accepted is not None:
            tenant_id, expires = accepted
            if time.time() < expires:  # PyJWT's rule (no leeway): expired once exp <= now
                return tenant_id
            del self._accepted[token]
            raise Unauthorized(_EXPIRED)
        tenant_id, expires = _verify(token, self.settings)
        if len(self._accepted) >= self.MAX_REMEMBERED:
            del self._accepted[next(iter(self._accepted))]  # the oldest
        self._accepted[token] = (tenant_id, expires)
        return tenant_id


_EXPIRED = "the token has expired: sign in again"


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token


def _verify(token: str, settings: JwtSettings) -> tuple[str, int]:
    """The token's tenant_id and exp once its signature and claims are checked."""
    try:
        # Only the configured algorithm is accepted: never `none`, never HS256 signed with the
        # RS256 public key as its secret.
        claims = jwt.decode(
            token,
            settings.verify_key,
            algorithms=[settings.algorithm],
            audience=settings.audience,
            options={"require": ["exp", "tenant_id"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized(_EXPIRED) from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("the token is not for this API (aud)") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("the token's signature is not valid") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized(f"the token must be signed with {settings.algorithm}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"the token has no {exc.claim} claim") from None
    except jwt.DecodeError:
        raise Unauthorized("the token is malformed") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid") from None
    tenant_id = claims.get("tenant_id")
    if not _holdable(tenant_id):
        raise Unauthorized(f"the token's tenant_id claim must be a string of 1 to {MAX_ID_LENGTH} characters")
    return tenant_id, int(claims["exp"])  # PyJWT has checked that it is a number


def _holdable(tenant_id) -> bool:
    """An id as the event contract has them (core/events.is_id) that PostgreSQL's text can hold:
    no NUL, nothing UTF-8 cannot encode (a lone surrogate from a JSON escape). A signed claim
    outside it is refused here, before it reaches the database or a cache key."""
    if not is_id(tenant_id) or "\x00" in tenant_id:
        return False
    try:
        tenant_id.encode()
    except UnicodeEncodeError:
        return False
    return True
