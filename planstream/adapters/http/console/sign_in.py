"""Signing in and out of the console: an operator's JWT, checked by the ingress's verifier, put
in the session cookie; a user's token is refused (403), a bad one named (401)."""

import time
from typing import Final

from aiohttp import web

from planstream.adapters.http.auth import InvalidToken
from planstream.adapters.http.console.forms import read_form
from planstream.adapters.http.console.rendering import page, refusal, see_other
from planstream.adapters.http.console.session import (
    COOKIE_MAX_BYTES,
    OPERATORS_ONLY,
    PATH,
    SIGN_IN_REASONS,
    Leave,
    csrf_holds,
    end_session,
    remaining_life_s,
    session_of,
    start_session,
)
from planstream.adapters.http.resources import SETTINGS, VERIFIER

__all__ = ["QUEUE", "root", "sign_in", "sign_in_page", "sign_out"]

QUEUE: Final = f"{PATH}/blocked"


async def root(request: web.Request) -> web.StreamResponse:
    """/console: the queue when signed in, else the sign-in page."""
    session = await session_of(request)
    if session is not None and session.principal.is_operator:
        return see_other(QUEUE)
    return see_other(f"{PATH}/sign-in")


def _form(request: web.Request, status: int, error: str | None = None) -> web.Response:
    why = request.query.get("why", "")
    return page(
        request,
        "sign_in.html",
        status,
        notice=SIGN_IN_REASONS.get(why) if status == 200 else None,
        error=error,
    )


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """The sign-in form (its script takes a token from the URL's fragment, which no request
    carries, submits it and clears it)."""
    return _form(request, 200)


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Check the token and open the session, or say why not."""
    settings = request.config_dict[SETTINGS]
    form = await read_form(request, settings, fields={"token"}, back=f"{PATH}/sign-in")
    token = (form.value("token") or "").strip()
    if not token:
        return _form(request, 422, "Paste an operator token to sign in.")
    try:
        principal = await request.config_dict[VERIFIER].verify(token)
    except InvalidToken as exc:
        return _form(request, 401, f"The token was refused: {exc}.")
    if not principal.is_operator:
        return refusal(request, 403, "The console is for operators", OPERATORS_ONLY)
    if remaining_life_s(token, time.time()) <= 0:
        return _form(request, 401, "The token was refused: it has expired.")
    if len(token) > COOKIE_MAX_BYTES:
        text = f"The token is over {COOKIE_MAX_BYTES} bytes: a browser would not keep it."
        return _form(request, 422, text)
    answer = see_other(QUEUE)
    start_session(request, answer, token)
    return answer


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End the session (the form's CSRF field must match it)."""
    settings = request.config_dict[SETTINGS]
    session = await session_of(request)
    form = await read_form(request, settings, fields={"csrf"}, back=QUEUE)
    if session is not None and not csrf_holds(session.token, form.value("csrf")):
        raise Leave(refusal(request, 403, "The form was refused", "Its CSRF field is wrong."))
    answer = see_other(f"{PATH}/sign-in?why=signed-out")
    end_session(answer)
    return answer
