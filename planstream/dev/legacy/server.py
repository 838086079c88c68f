"""The scripted ``run-pipeline-step`` as an HTTP server (aiohttp), on loopback.

``POST /functions/v1/run-pipeline-step`` runs a step in the settings' own database;
``POST /projects/<database>/functions/v1/run-pipeline-step`` in one of the stack's other
databases (a test session's slice). A test scripts it through ``/_scripted``: ``PUT
/_scripted/projects/<database>/script`` with ``{"errors": [546, 503], "delay_s": 0}`` makes the
next calls answer those statuses; ``GET /_scripted/projects/<database>/executions`` lists what
it ran. Requests carry the settings' bearer token; a body over
``legacy_server_max_request_bytes`` is answered 546 WORKER_LIMIT, as is a render too large for
``legacy_server_memory_mb``; nothing is deduplicated (two clicks run twice).
"""

import asyncio
import hmac
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from planstream.adapters.model import ModelClient
from planstream.dev.legacy.contract import (
    LegacyError,
    error_response,
    parse_call,
    worker_limit,
)
from planstream.dev.legacy.projects import PROJECT_PATTERN, Projects
from planstream.dev.legacy.runner import StepRunner
from planstream.domain.ids import new_id
from planstream.domain.legacy import code_of
from planstream.settings import Settings

__all__ = ["FUNCTION_PATH", "create_app", "serve", "start"]

log = logging.getLogger(__name__)

FUNCTION_PATH: Final = "/functions/v1/run-pipeline-step"
_KEPT_EXECUTIONS: Final = 10_000
_BODY_ROOM: Final = 1024 * 1024


@dataclass
class _Script:
    errors: deque[int] = field(default_factory=deque)
    delay_s: float = 0.0


@dataclass
class _State:
    settings: Settings
    projects: Projects
    model: ModelClient
    runner: StepRunner
    scripts: dict[str, _Script] = field(default_factory=dict)
    executions: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)

    def name(self, project: str | None) -> str:
        return project or self.settings.dsn.rsplit("/", 1)[1]

    def script(self, project: str | None) -> _Script:
        return self.scripts.setdefault(self.name(project), _Script())

    def log(self, project: str | None) -> deque[dict[str, Any]]:
        return self.executions.setdefault(self.name(project), deque(maxlen=_KEPT_EXECUTIONS))


_STATE: Final = web.AppKey("state", _State)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as ``{"code", "message"}``; a body too large for the worker is WORKER_LIMIT."""
    try:
        return await handler(request)
    except LegacyError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return error_response(worker_limit("the request body is too large for the worker"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(LegacyError(exc.status, code_of(exc.status), exc.reason))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(LegacyError(500, "SERVER_ERROR", "the function failed"))


async def _run_step(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    settings = state.settings
    project = request.match_info.get("project")
    expected = f"Bearer {settings.legacy_auth_token}".encode()
    given = request.headers.get(settings.legacy_auth_header, "").encode()
    if not hmac.compare_digest(given, expected):
        raise LegacyError(401, "UNAUTHORIZED", "missing or wrong credentials")
    raw = await request.read()
    if len(raw) > settings.legacy_server_max_request_bytes:
        raise worker_limit(f"a {len(raw)}-byte request is too large for the worker")
    call = parse_call(raw)
    script = state.script(project)
    if script.delay_s:
        await asyncio.sleep(script.delay_s)
    execution = {
        "execution_id": new_id("evt").replace("evt_", "exe_"),
        "idempotency_key": call.idempotency_key,
        "run_id": call.run_id,
        "step_id": call.step_id,
        "attempt": call.attempt,
        "request_bytes": len(raw),
        "started_at": datetime.now(UTC).isoformat(),
    }
    state.log(project).append(execution)
    try:
        if script.errors:
            status = script.errors.popleft()
            raise LegacyError(status, code_of(status), "a scripted failure")
        output = await state.runner.run(project, call)
    except LegacyError as exc:
        execution["code"] = exc.code
        raise
    except (OSError, asyncpg.InvalidCatalogNameError) as exc:
        await state.projects.forget(project)
        execution["code"] = "NOT_FOUND"
        raise LegacyError(404, "NOT_FOUND", f"the project is gone: {type(exc).__name__}") from None
    execution["code"] = "OK"
    body = {
        "execution_id": execution["execution_id"],
        "output_artifact_id": output,
        "failures": [],
    }
    log.info("ran step %d of %s (%s)", call.step_id, call.run_id, execution["execution_id"])
    return web.json_response(body)


async def _put_script(request: web.Request) -> web.Response:
    """Script the next calls of a project: statuses to answer, a delay before each."""
    state = request.app[_STATE]
    body = await request.json()
    errors = body.get("errors", []) if isinstance(body, dict) else None
    delay = body.get("delay_s", 0.0) if isinstance(body, dict) else None
    if (
        not isinstance(errors, list)
        or not all(isinstance(e, int) and 400 <= e <= 599 for e in errors)
        or not isinstance(delay, int | float)
        or not 0 <= delay <= 600
    ):
        raise LegacyError(400, "BAD_REQUEST", "errors: [HTTP statuses 400-599], delay_s: 0-600")
    project = request.match_info["project"]
    state.scripts[state.name(project)] = _Script(deque(errors), float(delay))
    return web.json_response({"project": project, "errors": errors, "delay_s": delay})


async def _executions(request: web.Request) -> web.Response:
    """What the function ran for a project, oldest first."""
    state = request.app[_STATE]
    return web.json_response(list(state.log(request.match_info["project"])))


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[_STATE]
    await state.model.start()
    yield
    await state.projects.close()
    await state.model.stop()


def create_app(settings: Settings) -> web.Application:
    """The function's app; its clients open on startup and close on cleanup."""
    app = web.Application(
        middlewares=[_errors],
        client_max_size=max(settings.legacy_server_max_request_bytes * 4, _BODY_ROOM),
    )
    projects = Projects(settings)
    model = ModelClient(settings)
    app[_STATE] = _State(settings, projects, model, StepRunner(settings, projects, model))
    app.cleanup_ctx.append(_lifecycle)
    project = "{project:" + PROJECT_PATTERN + "}"
    app.router.add_post(FUNCTION_PATH, _run_step)
    app.router.add_post(f"/projects/{project}{FUNCTION_PATH}", _run_step)
    app.router.add_put(f"/_scripted/projects/{project}/script", _put_script)
    app.router.add_get(f"/_scripted/projects/{project}/executions", _executions)
    app.router.add_get("/healthz", _healthz)
    return app


async def start(settings: Settings, host: str, port: int) -> web.AppRunner:
    """The app serving on ``host:port`` in this event loop; ``await runner.cleanup()`` stops it."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def serve(settings: Settings) -> None:
    """Run on legacy_server_host:legacy_server_port until SIGINT or SIGTERM."""
    host, port = settings.legacy_server_host, settings.legacy_server_port
    log.info("legacy function on http://%s:%d%s", host, port, FUNCTION_PATH)
    web.run_app(create_app(settings), host=host, port=port, print=None)
