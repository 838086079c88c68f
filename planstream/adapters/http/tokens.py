"""Tokens for the local stack and the CLI: the stack's HS256 key, and JWTs signed with it."""

import os
import secrets
import time
import uuid
from collections.abc import Iterable
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings

__all__ = ["ensure_local_key", "mint"]


def ensure_local_key(settings: Settings) -> None:
    """Make the local stack's signing key (once, owner-readable only, never committed)."""
    path = settings.auth_local_key_file
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32) + "\n")


def _signing_secret(settings: Settings) -> str:
    if settings.auth_hs256_secret:
        return settings.auth_hs256_secret
    try:
        return settings.auth_local_key_file.read_text().strip()
    except OSError:
        raise ConfigurationError(
            f"no signing key: {settings.auth_local_key_file} does not exist (run "
            "`planstream stack up`) and PLANSTREAM_AUTH_HS256_SECRET is not set"
        ) from None


def _nested(path: str, value: Any) -> dict[str, Any]:
    parts = path.split(".")
    claim: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        claim = {part: claim}
    return claim


def mint(
    settings: Settings,
    subject: str,
    *,
    roles: Iterable[str] = (),
    ttl_s: int | None = None,
) -> str:
    """A JWT for ``subject`` signed with the shared or local HS256 key, as the ingress checks."""
    now = int(time.time())
    claims = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "iat": now,
        "exp": now + (ttl_s or settings.auth_token_ttl_s),
        "jti": uuid.uuid4().hex,
        **_nested(settings.auth_roles_claim, sorted(set(roles))),
    }
    key = OctKey.import_key(_signing_secret(settings))
    return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])
