"""Bearer-token authentication of the ingress: JWT verification (joserfc) and its middleware.

A token is accepted when its signature verifies with a key of the configured source (a JWKS
URL, an HS256 secret, or the local stack's key file), its ``alg`` is on the allow-list, and its
``iss``, ``aud``, ``exp`` (with ``auth_leeway_s``) and ``sub`` hold. Anything else answers 401
with ``WWW-Authenticate: Bearer error="invalid_token", error_description="<the reason>"``.
"""

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Final, cast

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import Key, KeySet, OctKey

from planstream.domain.errors import ConfigurationError
from planstream.domain.principals import SUBJECT_PATTERN, Principal
from planstream.settings import Settings

__all__ = [
    "InvalidToken",
    "TokenVerifier",
    "authenticated",
    "key_source",
    "principal_of",
]

log = logging.getLogger(__name__)

_REQUEST_PRINCIPAL: Final = "planstream.principal"
_SUBJECT = re.compile(SUBJECT_PATTERN.strip("^$"))
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


class InvalidToken(Exception):
    """A bearer token that is refused; the message is the reason the 401 names."""


class _StaticKey:
    """One HS256 secret: the shared one from the settings or the local stack's."""

    def __init__(self, secret: str) -> None:
        self._key = OctKey.import_key(secret)

    async def key_for(self, kid: str | None) -> Key:
        return self._key

    async def close(self) -> None:
        return None


class _Jwks:
    """The issuer's key set, fetched, kept ``auth_jwks_cache_s`` and fetched again (at most once
    per ``auth_jwks_refresh_min_s``) when a token names a ``kid`` it does not hold: rotation."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = settings.auth_jwks_url or ""
        self._cache_s = settings.auth_jwks_cache_s
        self._refresh_min_s = settings.auth_jwks_refresh_min_s
        self._clock = clock
        self._keys: dict[str | None, Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def key_for(self, kid: str | None) -> Key:
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._cache_s
            unknown = kid not in self._keys and (
                self._fetched_at is None or now - self._fetched_at > self._refresh_min_s
            )
            if stale or unknown:
                await self._fetch()
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            raise InvalidToken(f"no key with kid {kid!r} in the issuer's key set")
        return key

    async def _fetch(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.get(self._url) as response:
                if response.status != 200:
                    raise OSError(f"the key set answered {response.status}")
                data = await response.json(content_type=None)
            key_set = KeySet.import_key_set(data)
        except (OSError, aiohttp.ClientError, ValueError, JoseError) as exc:
            if self._keys:  # keep the keys we had: an issuer's hiccup must not lock users out
                log.warning("JWKS fetch failed, keeping the cached keys: %s", exc)
                return
            raise InvalidToken("the issuer's key set is unavailable") from exc
        self._keys = {key.kid: key for key in key_set.keys}
        self._fetched_at = self._clock()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def key_source(settings: Settings) -> _StaticKey | _Jwks:
    """Where verification keys come from, in order: JWKS URL, HS256 secret, local key file."""
    if settings.auth_jwks_url:
        return _Jwks(settings)
    if settings.auth_hs256_secret:
        return _StaticKey(settings.auth_hs256_secret)
    try:
        secret = settings.auth_local_key_file.read_text().strip()
    except OSError:
        raise ConfigurationError(
            "no key to verify tokens: set PLANSTREAM_AUTH_JWKS_URL or "
            "PLANSTREAM_AUTH_HS256_SECRET (or run `planstream stack up`, which makes "
            f"{settings.auth_local_key_file})"
        ) from None
    return _StaticKey(secret)


def _header(token: str) -> dict[str, Any]:
    try:
        encoded = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidToken("the token is not a JWT") from None
    if not isinstance(header, dict):
        raise InvalidToken("the token is not a JWT")
    return header


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal`, or raises :class:`InvalidToken`."""

    def __init__(self, settings: Settings, keys: _StaticKey | _Jwks) -> None:
        self._settings = settings
        self._keys = keys
        self._registry = jwt.JWTClaimsRegistry(
            leeway=settings.auth_leeway_s,
            iss={"essential": True, "value": settings.auth_issuer},
            aud={"essential": True, "value": settings.auth_audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        settings = self._settings
        if len(token) > settings.auth_max_token_bytes or token.count(".") != 2:
            raise InvalidToken("the token is not a compact JWS of a size we accept")
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in settings.auth_algorithms:
            raise InvalidToken(f"algorithm {str(algorithm)[:20]!r} is not accepted")
        kid = header.get("kid")
        key = await self._keys.key_for(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm]).claims
            self._registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("the token has expired") from None
        except (InvalidClaimError, MissingClaimError) as exc:
            raise InvalidToken(f"claim {exc.claim!r} is missing or not accepted") from None
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"the signature does not verify ({type(exc).__name__})") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
            raise InvalidToken("claim 'sub' is not a subject we accept")
        roles = _claim(claims, settings.auth_roles_claim)
        if not isinstance(roles, list):
            roles = []
        return Principal(
            subject, frozenset(r for r in roles if isinstance(r, str) and _ROLE.fullmatch(r))
        )

    async def close(self) -> None:
        await self._keys.close()


def _refused(reason: str) -> web.Response:
    description = reason.replace("\\", "").replace('"', "'")
    return web.json_response(
        {"error": f"authentication failed: {reason}"},
        status=401,
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="planstream", error="invalid_token", '
                f'error_description="{description}"'
            )
        },
    )


def authenticated(
    verifier: Callable[[web.Application], TokenVerifier],
    public: frozenset[tuple[str, str]] = frozenset(),
) -> Middleware:
    """The middleware: every ``/v1`` request carries a verified bearer token, but the exact
    (method, path) pairs of ``public`` (the API's own description, which a client generator
    reads before it has a token)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        open_path = not request.path.startswith("/v1/") and request.path != "/v1"
        if open_path or (request.method, request.path) in public:
            return cast(web.StreamResponse, await handler(request))
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _refused("the request has no bearer token")
        try:
            request[_REQUEST_PRINCIPAL] = await verifier(request.app).verify(token.strip())
        except InvalidToken as exc:
            return _refused(str(exc))
        return cast(web.StreamResponse, await handler(request))

    return middleware


def principal_of(request: web.Request) -> Principal:
    """The caller the middleware verified (every /v1 handler has one)."""
    principal: Principal = request[_REQUEST_PRINCIPAL]
    return principal
