"""The scripted model server's HTTP app: OpenAI's API surface on loopback, aiohttp underneath."""

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from planstream.dev.modelserver.chat import chat_completions
from planstream.dev.modelserver.errors import ApiError
from planstream.dev.modelserver.fetcher import ImageFetcher
from planstream.dev.modelserver.images import image_edits
from planstream.dev.modelserver.quota import Quota
from planstream.dev.modelserver.registry import Registry
from planstream.dev.modelserver.state import STATE, ServerState
from planstream.settings import Settings

__all__ = ["MODELS", "OWNER", "create_app", "serve", "start"]

logger = logging.getLogger(__name__)

MODELS: Final = ("planstream-scripted-vision", "planstream-scripted-image")
OWNER: Final = "planstream"
_API_KEY: Final = web.AppKey("api_key", str)
_OPEN_PATHS: Final = frozenset({"/healthz"})
_BACKLOG: Final = 2048
"""Pending connections the socket queues: benchmarks open hundreds at once."""
_FORM_OVERHEAD: Final = 1024 * 1024


def _error(error: ApiError) -> web.Response:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return web.json_response(error.body(), status=error.status, headers=error.headers)


@web.middleware
async def _openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error (ours, aiohttp's 404/405/413, a bug) as OpenAI-shaped JSON."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        message = f"{request.method} {request.path}: {exc.reason}"
        return _error(ApiError(exc.status, message, code=code))
    except Exception as exc:
        logger.exception("%s %s failed", request.method, request.path)
        message = f"the scripted server failed: {type(exc).__name__}"
        return _error(ApiError(500, message, kind="server_error"))


@web.middleware
async def _bearer_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request without the settings' API key, as OpenAI does (health checks are open)."""
    if request.path in _OPEN_PATHS:
        return await handler(request)
    expected = f"Bearer {request.app[_API_KEY]}".encode()
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
    return await handler(request)


async def _models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the scripted models, listed the way OpenAI lists models."""
    data = [{"id": model, "object": "model", "created": 0, "owned_by": OWNER} for model in MODELS]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is up."""
    return web.json_response({"status": "ok"})


async def _reset(request: web.Request) -> web.Response:
    """``POST /v1/scripted/reset``: forget call counts and renders, so scenarios start over."""
    request.app[STATE].registry.reset()
    return web.json_response({"reset": True})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Read the samples and open the image fetcher's session; close it on shutdown."""
    state = app[STATE]
    await asyncio.to_thread(state.registry.load)
    await state.fetcher.start()
    yield
    await state.fetcher.stop()


def create_app(settings: Settings) -> web.Application:
    """The app: its routes, OpenAI-shaped errors and the API key check."""
    app = web.Application(
        middlewares=[_openai_errors, _bearer_key],
        client_max_size=settings.max_image_bytes + _FORM_OVERHEAD,
    )
    app[_API_KEY] = settings.model_api_key
    app[STATE] = ServerState(
        registry=Registry(settings.model_samples_dir),
        fetcher=ImageFetcher(settings.max_image_bytes),
        hang_s=settings.model_hang_s,
        delay_s=settings.model_delay_s,  # 0 by default: no added latency
        max_image_pixels=settings.max_image_pixels,
        quota=Quota(
            settings.model_server_rpm, settings.model_server_tpm, settings.model_server_burst_s
        ),
    )
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/images/edits", image_edits)
    app.router.add_post("/v1/scripted/reset", _reset)
    app.router.add_get("/healthz", _healthz)
    return app


async def start(settings: Settings, host: str, port: int) -> web.AppRunner:
    """The app serving on ``host:port`` in this event loop; ``await runner.cleanup()`` stops it."""
    runner = web.AppRunner(create_app(settings), handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=_BACKLOG).start()
    return runner


def serve(settings: Settings) -> None:
    """Run the app on model_server_host:model_server_port until SIGINT or SIGTERM."""
    host, port = settings.model_server_host, settings.model_server_port
    logger.info("model server on http://%s:%d/v1", host, port)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        print=None,
        backlog=_BACKLOG,
        handler_cancellation=True,  # a client that gives up on a hanging call ends it
    )
