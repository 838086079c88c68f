"""The operator console the ingress serves at /console (docs/console.md): server-rendered pages
over the same PostgreSQL, storage and Kafka as the API, signed in with an operator's token.

A sub-application of the ingress, outside /v1 (the bearer middleware does not apply: the console
authenticates itself with its session cookie); the ingress's edge middlewares (Host, Origin,
deadlines) still do. Its own middleware answers every refusal with a page and puts the security
headers on every answer, static files included.
"""

import logging
from typing import Final

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from planstream.adapters.http.console import operations, pages, replays, sign_in
from planstream.adapters.http.console.rendering import STATIC_DIR, install, refusal
from planstream.adapters.http.console.session import (
    PATH,
    Leave,
    content_security_policy,
    secure_headers,
)
from planstream.domain.errors import PlanstreamError
from planstream.settings import Settings

__all__ = ["PATH", "create_console"]

log = logging.getLogger(__name__)

_UNAVAILABLE: Final = "A service the console reads is unavailable: try again in a moment."


def _answers(policy: str) -> Middleware:
    """Refusals as pages; the console's headers on every answer."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            answer = await handler(request)
        except Leave as leave:
            answer = leave.response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            answer = refusal(request, exc.status, exc.reason, "The console has no such page.")
        except (PlanstreamError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("a console page failed: %s", type(exc).__name__)
            answer = refusal(request, 503, "Unavailable", _UNAVAILABLE)
        secure_headers(answer, policy)
        return answer

    return middleware


def create_console(settings: Settings) -> web.Application:
    """The console, to mount at :data:`PATH` on the ingress (which holds its resources)."""
    app = web.Application(middlewares=[_answers(content_security_policy(settings))])
    install(app)
    app.router.add_get("", sign_in.root)
    app.router.add_get("/", sign_in.root)
    app.router.add_get("/sign-in", sign_in.sign_in_page)
    app.router.add_post("/sign-in", sign_in.sign_in)
    app.router.add_post("/sign-out", sign_in.sign_out)
    app.router.add_get("/blocked", pages.queue)
    app.router.add_get("/runs/{run_id}", pages.run_page)
    app.router.add_post("/runs/{run_id}/review", pages.review)
    app.router.add_get("/runs/{run_id}/artifacts/{artifact_id}", pages.artifact)
    app.router.add_get("/dead-letters", operations.dead_letters)
    app.router.add_post("/dead-letters/redrive", operations.redrive_letters)
    app.router.add_get("/flags", operations.flags)
    app.router.add_get("/replays", replays.replays)
    app.router.add_get("/replays/{replay_id}", replays.replay_page)
    app.router.add_static("/static", STATIC_DIR, show_index=False, follow_symlinks=False)
    return app
