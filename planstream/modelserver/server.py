"""The scripted model server's HTTP app: OpenAI's API surface on loopback, aiohttp underneath."""

import hmac
import logging
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from planstream.settings import Settings

__all__ = ["MODELS", "OWNER", "create_app", "serve"]

logger = logging.getLogger(__name__)

MODELS: Final = ("planstream-scripted-vision", "planstream-scripted-image")
OWNER: Final = "planstream"
_API_KEY: Final = web.AppKey("api_key", str)
_OPEN_PATHS: Final = frozenset({"/healthz"})


def _error(status: int, message: str, kind: str, code: str) -> web.Response:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    error = {"message": message, "type": kind, "param": None, "code": code}
    return web.json_response({"error": error}, status=status)


@web.middleware
async def _openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer aiohttp's HTTP errors (404, 405, …) as OpenAI-shaped JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return _error(
            exc.status,
            f"{request.method} {request.path}: {exc.reason}",
            "invalid_request_error",
            code,
        )


@web.middleware
async def _bearer_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request without the settings' API key, as OpenAI does (health checks are open)."""
    if request.path in _OPEN_PATHS:
        return await handler(request)
    expected = f"Bearer {request.app[_API_KEY]}".encode()
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        return _error(
            401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
        )
    return await handler(request)


async def _models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the scripted models, listed the way OpenAI lists models."""
    data = [{"id": model, "object": "model", "created": 0, "owned_by": OWNER} for model in MODELS]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is up."""
    return web.json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    """The app: its routes, OpenAI-shaped errors and the API key check."""
    app = web.Application(middlewares=[_openai_errors, _bearer_key])
    app[_API_KEY] = settings.model_api_key
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/healthz", _healthz)
    return app


def serve(settings: Settings) -> None:
    """Run the app on model_server_host:model_server_port until SIGINT or SIGTERM."""
    host, port = settings.model_server_host, settings.model_server_port
    logger.info("model server on http://%s:%d/v1", host, port)
    web.run_app(create_app(settings), host=host, port=port, print=None)
