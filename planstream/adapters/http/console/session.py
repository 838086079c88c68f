"""The console's session and its guards: the operator's token in a cookie, verified on every
request; a CSRF field derived from it on every form; the security headers on every answer.

The cookie holds the token itself (HttpOnly, SameSite=Strict, Path=/console, Secure on HTTPS
or when ``console_secure_cookie`` says so, Max-Age the token's remaining life), so the console
keeps no server-side state and a session ends when its token does. Each form carries ``csrf``
= HMAC-SHA256 keyed by the token over a fixed label: a page elsewhere can neither read it nor
compute it, and a POST without it is refused 403 (docs/console.md).
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from planstream.adapters.http.auth import InvalidToken
from planstream.adapters.http.console.rendering import refusal, see_other
from planstream.adapters.http.resources import SETTINGS, VERIFIER
from planstream.domain.principals import Principal
from planstream.settings import Settings

__all__ = [
    "COOKIE",
    "COOKIE_MAX_BYTES",
    "OPERATORS_ONLY",
    "PATH",
    "SIGN_IN_REASONS",
    "Leave",
    "Session",
    "content_security_policy",
    "csrf_for",
    "csrf_holds",
    "end_session",
    "guarded",
    "remaining_life_s",
    "secure_headers",
    "session_of",
    "start_session",
    "storage_origin",
]

COOKIE: Final = "planstream_console"
COOKIE_MAX_BYTES: Final = 4_000
"""The longest token the session cookie holds: browsers keep cookies of about 4 KB (RFC 6265's
floor is 4,096 bytes with the name); a longer one would be dropped and sign-in would loop."""
PATH: Final = "/console"
_CSRF_LABEL: Final = b"planstream-console-csrf-v1"
SIGN_IN_REASONS: Final = {
    "required": "Sign in with an operator token to use the console.",
    "expired": "Your session's token has expired: sign in again with a fresh one.",
    "invalid": "Your session's token is no longer accepted: sign in again.",
    "signed-out": "You are signed out.",
}
"""Why the sign-in page is shown, by the code a redirect names (never text from the request)."""
OPERATORS_ONLY: Final = (
    "The console is for operators: this token has no operator role. Sign in with an operator's "
    "token (on a development machine, `planstream console` opens the console with one)."
)


class Leave(Exception):
    """Answer with ``response`` now (a redirect to sign-in, a refusal page): the console's
    middleware returns it with the console's headers."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True)
class Session:
    """A signed-in operator: the verified token and who it names."""

    token: str
    principal: Principal

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)


def csrf_for(token: str) -> str:
    """The CSRF field of every form of a session with ``token``."""
    return hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_holds(token: str, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF field (compared in constant time)."""
    return presented is not None and hmac.compare_digest(csrf_for(token), presented)


def remaining_life_s(token: str, now: float) -> int:
    """Seconds until a verified token's ``exp`` (0 when past or unreadable)."""
    try:
        encoded = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        expires = claims["exp"]
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error, UnicodeDecodeError):
        return 0
    if not isinstance(expires, int | float):
        return 0
    return max(0, int(expires - now))


def _to_sign_in(why: str, *, forget: bool) -> Leave:
    answer = see_other(f"{PATH}/sign-in?why={why}")
    if forget:
        answer.del_cookie(COOKIE, path=PATH)
    return Leave(answer)


async def session_of(request: web.Request) -> Session | None:
    """The request's session when its cookie holds a token the ingress accepts, else None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await request.config_dict[VERIFIER].verify(token)
    except InvalidToken:
        return None
    return Session(token, principal)


async def _required(request: web.Request) -> Session:
    """The operator's session, or Leave: to sign-in (no, an expired or refused token), 403 (a
    token without the operator role)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise _to_sign_in("required", forget=False)
    try:
        principal = await request.config_dict[VERIFIER].verify(token)
    except InvalidToken as exc:
        raise _to_sign_in("expired" if "expired" in str(exc) else "invalid", forget=True) from None
    if not principal.is_operator:
        raise Leave(refusal(request, 403, "The console is for operators", OPERATORS_ONLY))
    return Session(token, principal)


def guarded(
    handler: Callable[[web.Request, Session], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A console handler that runs only for a signed-in operator."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await handler(request, await _required(request))

    wrapped.__doc__ = handler.__doc__
    return wrapped


def start_session(request: web.Request, answer: web.StreamResponse, token: str) -> None:
    """Put ``token`` in the session cookie of ``answer`` for the rest of its life."""
    settings: Settings = request.config_dict[SETTINGS]
    answer.set_cookie(
        COOKIE,
        token,
        max_age=remaining_life_s(token, time.time()),
        path=PATH,
        httponly=True,
        samesite="Strict",
        secure=request.secure or settings.console_secure_cookie,
    )


def end_session(answer: web.StreamResponse) -> None:
    """Clear the session cookie."""
    answer.del_cookie(COOKIE, path=PATH)


def storage_origin(settings: Settings) -> str:
    """The origin signed artifact URLs point at (the S3 endpoint's, or AWS's regional one)."""
    if settings.s3_endpoint:
        parts = urlsplit(settings.s3_endpoint)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return f"https://s3.{settings.s3_region}.amazonaws.com"


def content_security_policy(settings: Settings) -> str:
    """Only the console's own scripts, styles and forms; images also from the storage the
    artifact links redirect to; never framed."""
    return (
        "default-src 'self'; "
        f"img-src 'self' {storage_origin(settings)}; "
        "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def secure_headers(answer: web.StreamResponse, policy: str) -> None:
    """The headers every console answer carries."""
    answer.headers["Content-Security-Policy"] = policy
    answer.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
    # console's own form posts, which the edge refuses as cross-site. Other origins (the storage
    # a signed URL points at) still get no referrer.
    answer.headers["Referrer-Policy"] = "same-origin"
    answer.headers["Cache-Control"] = "no-store"
    answer.headers["X-Frame-Options"] = "DENY"
