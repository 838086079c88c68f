"""The HTTP ingress: uploads by presigned POST, runs, step requests and run views (aiohttp)."""

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError

from planstream.adapters import logs, tracing
from planstream.adapters.http import edge, openapi, resources
from planstream.adapters.http.api import (
    CreateRun,
    CreateUpload,
    ReviewAccepted,
    ReviewRun,
    RunCreated,
    StepAccepted,
    UploadCreated,
)
from planstream.adapters.http.auth import TokenVerifier, authenticated, key_source, principal_of
from planstream.adapters.http.console import PATH as CONSOLE_PATH
from planstream.adapters.http.console import create_console
from planstream.adapters.http.request_metrics import request_metrics, route_of
from planstream.adapters.http.review import submit_review
from planstream.adapters.http.views import RunView
from planstream.adapters.kafka import EventPublisher
from planstream.adapters.metrics_server import serving_metrics
from planstream.adapters.postgres.db import DATA_ERRORS, create_pool
from planstream.adapters.postgres.quotas import RunQuota
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.routes import Routes
from planstream.adapters.postgres.run_view import run_view
from planstream.adapters.storage import Storage
from planstream.domain.errors import Conflict, QuotaExceeded, RecordMissing, RetryableError
from planstream.domain.events import step_key
from planstream.domain.guards import find_smuggling
from planstream.domain.ids import IDEMPOTENCY_KEY_PATTERN, is_id, is_idempotency_key, new_id
from planstream.domain.policy import quality_for_step
from planstream.domain.records import Job, Run, Upload
from planstream.domain.wire import describe_validation_error
from planstream.services.routing import Routing, entry_service, step_request
from planstream.services.runtime import utc_now
from planstream.settings import Settings

__all__ = ["create_app", "serve"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# The application's resources, shared with the console (planstream/adapters/http/resources.py).
_SETTINGS, _POOL, _REPO = resources.SETTINGS, resources.POOL, resources.REPO
_STORAGE, _PUBLISHER = resources.STORAGE, resources.PUBLISHER
_ROUTING, _VERIFIER = resources.ROUTING, resources.VERIFIER


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


async def _body(request: web.Request, model: type[M]) -> M:
    """The request body as ``model``, or an HTTP error naming the size, the media type, the
    key or the field (edge.json_body reads it as strict JSON first)."""
    data = await edge.json_body(request, request.app[_SETTINGS])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise web.HTTPUnprocessableEntity(
            text=json.dumps({"error": describe_validation_error(exc), "field": field}),
            content_type="application/json",
        ) from None


async def create_upload(request: web.Request) -> web.Response:
    body = await _body(request, CreateUpload)
    settings, storage = request.app[_SETTINGS], request.app[_STORAGE]
    upload_id = new_id("upl")
    key = f"uploads/{upload_id}"
    ttl, max_bytes = settings.upload_url_ttl_s, settings.max_upload_bytes
    form = await storage.presign_post(key, body.content_type, max_bytes, ttl)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    owner = principal_of(request).subject
    await request.app[_REPO].create_upload(
        Upload(upload_id, storage.bucket, key, body.content_type, expires_at, owner)
    )
    created = UploadCreated(
        upload_id=upload_id,
        upload_url=form.url,
        fields=form.fields,
        max_bytes=max_bytes,
        expires_at=expires_at,
    )
    return _json(created, status=201)


async def create_run(request: web.Request) -> web.Response:
    body = await _body(request, CreateRun)
    settings, repo = request.app[_SETTINGS], request.app[_REPO]
    if body.request_text and len(body.request_text) > settings.max_request_text_chars:
        return _error(
            422,
            f"request_text has {len(body.request_text)} characters, over the "
            f"{settings.max_request_text_chars} limit",
            "request_text",
        )
    caller = principal_of(request)
    upload = await repo.get_upload(body.upload_id)
    if upload is None or not caller.may_see(upload.owner):  # another's upload: as if none
        return _error(404, f"upload {body.upload_id} does not exist", "upload_id")
    run = Run(
        run_id=new_id("run"),
        upload_id=upload.upload_id,
        ratio=body.ratio,
        quality_post_step4=body.quality_post_step4,
        request_text=body.request_text,
        status="pending",
        current_step=0,
        owner=caller.subject,
    )
    source_artifact_id = new_id("art")
    quota = RunQuota(settings.quota_runs_per_minute, settings.quota_active_runs)
    await repo.create_run(
        run,
        upload,
        source_artifact_id,
        len(body.model_dump_json()),
        tracing.traceparent(),
        quota=quota,
    )
    return _json(RunCreated(run_id=run.run_id, source_artifact_id=source_artifact_id), 201)


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    problem = None
    if not key:
        problem = "the Idempotency-Key header is required"
    elif not is_idempotency_key(key):
        problem = f"Idempotency-Key must match {IDEMPOTENCY_KEY_PATTERN}"
    elif (reason := find_smuggling(key)) is not None:
        problem = f"Idempotency-Key {reason}"
    if problem is not None:
        raise web.HTTPUnprocessableEntity(
            text=json.dumps({"error": problem, "field": "Idempotency-Key"}),
            content_type="application/json",
        )
    return key


async def request_step(request: web.Request) -> web.Response:
    run_id, raw_step = request.match_info["run_id"], request.match_info["step_id"]
    if not is_id(run_id) or not run_id.startswith("run_"):
        return _error(422, "run_id is not a run id", "run_id")
    if raw_step != "0":
        return _error(
            422,
            "only step 0 can be requested by a client; later steps follow the Supervisor",
            "step_id",
        )
    key = _idempotency_key(request)
    repo, settings = request.app[_REPO], request.app[_SETTINGS]
    run = await repo.get_run(run_id)
    source = await repo.source_artifact_id(run_id) if run is not None else None
    if run is None or source is None or not principal_of(request).may_see(run.owner):
        return _error(404, f"run {run_id} does not exist")
    step_id, attempt = 0, 1
    # The step attempt's path (docs/migration.md): the one a first request recorded, else the
    # routing flags' now; a repeated request, whatever its key, goes the same way.
    route = await request.app[_ROUTING].route(run_id, step_id, attempt)
    service = entry_service(route, step_id)
    spec, event = step_request(
        route,
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        step_id=step_id,
        attempt=attempt,
        input_artifact_id=source,
        quality=quality_for_step(step_id, "2K"),  # steps 0-3 are 2K whatever the run's tier
        requested_by="client",
    )
    job = Job(
        job_id=new_id("job"),
        run_id=run_id,
        step_id=step_id,
        attempt=attempt,
        service=service,
        status="pending",
        idempotency_key=f"{service}:{step_key(run_id, step_id, attempt)}",
        published_at=None,
    )
    # The trace is read before the transaction that publishes: no second connection inside it.
    publisher = await _in_run_trace(request).bound(run_id)
    stored, created = await repo.request_step(
        job,
        request_key=key,
        payload_ref={"topic": spec.name, "event": event.model_dump(mode="json")},
        max_attempts=settings.max_attempts,
        publish=lambda: publisher.publish(spec, event),
    )
    if stored.step_id != step_id:
        return _error(
            422,
            f"Idempotency-Key was already used for step {stored.step_id} of this run",
            "Idempotency-Key",
        )
    accepted = StepAccepted(
        run_id=run_id,
        step_id=step_id,
        job_id=stored.job_id,
        status=stored.status,
        replayed=not created,
    )
    return _json(accepted, status=202 if created else 200)


async def review_run(request: web.Request) -> web.Response:
    """An operator approves, retries or rejects a blocked run; the Supervisor carries it out.
    The reviewer on record is the token's subject."""
    caller = principal_of(request)
    if not caller.is_operator:
        return _error(403, "reviewing a run is for operators")
    run_id = request.match_info["run_id"]
    if not is_id(run_id) or not run_id.startswith("run_"):
        return _error(422, "run_id is not a run id", "run_id")
    body = await _body(request, ReviewRun)
    try:
        # The console's review too: Conflict (409) unless blocked and unclaimed, QuotaExceeded.
        submitted = await submit_review(
            request.config_dict, run_id, body.action, body.reason, caller.subject
        )
    except RecordMissing as exc:
        return _error(404, str(exc))
    event_id = submitted.reviewed.event_id
    return _json(ReviewAccepted(run_id=run_id, event_id=event_id), status=202)


async def show_run(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    if not is_id(run_id) or not run_id.startswith("run_"):
        return _error(422, "run_id is not a run id", "run_id")
    view = await run_view(request.app[_POOL], run_id)
    if view is None or not principal_of(request).may_see(view["owner"]):
        return _error(404, f"run {run_id} does not exist")  # another's run: as if none
    return _json(RunView.model_validate(view))  # the contract's type, checked on every answer


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def openapi_document(request: web.Request) -> web.Response:
    """The API's OpenAPI 3.1 document (no token: a client generator reads it first)."""
    return web.Response(body=openapi.served(), content_type="application/json")


def _in_run_trace(request: web.Request) -> tracing.RunTracePublisher:
    """The publisher that puts a run's events in the run's trace (the request's is linked)."""
    return tracing.RunTracePublisher(
        request.app[_PUBLISHER], request.app[_REPO].run_traceparent, "ingress"
    )


@web.middleware
async def _traced(request: web.Request, handler: Any) -> web.StreamResponse:
    """A server span per request (continuing the caller's ``traceparent``), and the run and
    step the path names on every line logged meanwhile."""
    route = route_of(request)
    run_id, step = request.match_info.get("run_id", ""), request.match_info.get("step_id", "")
    with (
        logs.bound(
            run_id=run_id if is_id(run_id) else None,  # the path is input: only ids are kept
            step_id=int(step) if step.isdigit() and len(step) <= 2 else None,
        ),
        tracing.server_span(
            f"{request.method} {route}",
            request.headers,
            {"http.request.method": request.method, "http.route": route},
        ) as span,
    ):
        response: web.StreamResponse = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        return response


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[_SETTINGS].max_request_bytes
        return _error(413, f"request body over the {limit}-byte limit")
    except Conflict as exc:
        return _error(409, str(exc))
    except QuotaExceeded as exc:
        answer = _error(429, str(exc))
        answer.headers["Retry-After"] = str(exc.retry_after_s)
        return answer
    except DATA_ERRORS as exc:  # a value the checks above let through: not worth a retry
        log.warning("the database refused a value: %s", type(exc).__name__)
        return _error(422, f"the database refused a value of this request ({type(exc).__name__})")
    except (RetryableError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return _error(503, "a dependency is unavailable; retry with the same Idempotency-Key")
    return response


async def _resources(app: web.Application) -> Any:
    settings = app[_SETTINGS]
    pool = await create_pool(
        settings.dsn, max_size=settings.db_pool_max, command_timeout=settings.db_timeout_s
    )
    storage, publisher = Storage(settings), EventPublisher(settings, "ingress")
    await storage.start()
    await publisher.start()
    app[_POOL], app[_REPO] = pool, Repository(pool)
    app[_ROUTING] = Routing(Routes(pool), settings.route_cache_s, utc_now)
    app[_STORAGE], app[_PUBLISHER] = storage, publisher
    yield
    await app[_VERIFIER].close()
    await publisher.stop()
    await storage.stop()
    await pool.close()


async def _metrics_endpoint(app: web.Application) -> Any:
    """GET /metrics and /healthz on the metrics port (apart from the API: no auth, no /v1)."""
    async with serving_metrics(app[_SETTINGS], "ingress"):
        yield


def create_app(settings: Settings) -> web.Application:
    """The ingress application; its pools open on startup and close on cleanup."""
    middlewares = [
        request_metrics,
        _traced,
        _errors,
        edge.addressed(settings),  # Host and Origin, before any token is looked at
        edge.deadline(settings),
        authenticated(lambda a: a[_VERIFIER], public=frozenset({("GET", openapi.DOCUMENT_PATH)})),
    ]
    app = web.Application(client_max_size=settings.max_request_bytes, middlewares=middlewares)
    app[_SETTINGS] = settings
    # Made now, so a missing key refuses to start the ingress rather than every request.
    app[_VERIFIER] = TokenVerifier(settings, key_source(settings))
    app.cleanup_ctx.append(_metrics_endpoint)
    app.cleanup_ctx.append(_resources)
    app.router.add_post("/v1/uploads", create_upload)
    app.router.add_post("/v1/runs", create_run)
    app.router.add_post("/v1/runs/{run_id}/steps/{step_id}", request_step)
    app.router.add_get("/v1/runs/{run_id}", show_run)
    app.router.add_post("/v1/runs/{run_id}/review", review_run)
    app.router.add_get("/healthz", healthz)
    app.add_subapp(CONSOLE_PATH, create_console(settings))  # outside /v1: its own sign-in
    app.router.add_get(openapi.DOCUMENT_PATH, openapi_document)
    return app


def serve(settings: Settings) -> None:
    """Run the ingress in the foreground."""
    web.run_app(
        create_app(settings),
        host=settings.ingress_host,
        port=settings.ingress_port,
        access_log=None,
        print=lambda line: log.info(line),
        # Closes a connection whose request line and headers are not complete this long after
        # it opened or after its previous answer (planstream/adapters/http/edge.py).
        keepalive_timeout=settings.ingress_read_timeout_s,
    )
