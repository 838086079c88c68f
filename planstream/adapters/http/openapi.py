"""The ingress's contract: an OpenAPI 3.1 document built from the pydantic models of its bodies.

Every JSON route is one :class:`Operation` below: its request body, its success answers, and the
error statuses the handlers and the middlewares really answer (edge.py: 403, 408, 413, 415, 421,
422, 503; auth.py: 401; ingress.py: 404, 409, 422, 429, 503), each with the :class:`Error` body.
The document is committed as ``schemas/openapi.json`` (``make schemas``; a test fails while it
drifts from the models), served without a token at ``GET /v1/openapi.json``, and fuzzed by
schemathesis against the live ingress in the system tests (docs/api.md).
"""

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from planstream.adapters.http.api import (
    CreateRun,
    CreateUpload,
    Error,
    Health,
    ReviewAccepted,
    ReviewRun,
    RunCreated,
    StepAccepted,
    UploadCreated,
)
from planstream.adapters.http.views import RunView
from planstream.domain.ids import IDEMPOTENCY_KEY_PATTERN, RunId

__all__ = ["DOCUMENT_PATH", "OPERATIONS", "Operation", "document", "render", "served"]

DOCUMENT_PATH: Final = "/v1/openapi.json"
"""Where the ingress serves the document; the one /v1 route that needs no token."""

_REF: Final = "#/components/schemas/{model}"
_JSON: Final = "application/json"

# Each error status: its name under components/responses, and why it is answered.
_ERRORS: Final[dict[int, tuple[str, str]]] = {
    401: ("Unauthenticated", "No bearer token, or one that does not verify (expired, wrong "
          "signature, issuer or audience): WWW-Authenticate names the reason."),
    403: ("Forbidden", "An Origin neither the ingress's own nor an allowed one; on a review, "
          "a caller without the operator role."),
    404: ("NotFound", "No such run or upload, or one the caller does not own (the same answer)."),
    408: ("RequestTimeout", "The body did not arrive in time; the connection is closed."),
    409: ("Conflict", "The state of what the request names refuses it: an upload that has a "
          "run already, a run not blocked or whose block another review holds."),
    413: ("ContentTooLarge", "The body is over the request size limit."),
    415: ("UnsupportedMediaType", "The body is not application/json (charset=utf-8 at most)."),
    421: ("MisdirectedRequest", "The Host header names a server the ingress does not answer."),
    422: ("Unprocessable", "The body (not strict JSON, or not the model), a path parameter or a "
          "header is refused; `field` names it when it can."),
    429: ("QuotaExceeded", "A quota of the caller (runs a minute, active runs) or of the run "
          "(reviews an hour) is used up: retry after Retry-After seconds."),
    503: ("Unavailable", "A dependency is unavailable or the request passed its deadline: "
          "retry (a step request with the same Idempotency-Key)."),
}  # fmt: skip
_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'Bearer realm="planstream", error="invalid_token", '
            'error_description="<the reason>"',
            "required": True,
            "schema": {"type": "string", "pattern": "^Bearer "},
        }
    },
    429: {
        "Retry-After": {
            "description": "seconds until the quota lets the request through",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}

_ADDRESSED: Final = (403, 421)  # edge.addressed, on every path but /healthz
_SIGNED: Final = (401, 503)  # auth.authenticated; edge.deadline and a dependency's outage
_BODY: Final = (408, 413, 415, 422)  # edge.json_body and the request's model

_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "run_id": {
        "name": "run_id",
        "in": "path",
        "required": True,
        "schema": TypeAdapter(RunId).json_schema(),
    },
    "step_id": {
        "name": "step_id",
        "in": "path",
        "required": True,
        "description": "A client requests step 0 only; the later steps follow the Supervisor.",
        "schema": {"type": "integer", "const": 0},
    },
    "idempotency_key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "The same key again returns the same job and publishes nothing; a key "
        "that smuggles data (base64, a URL) is refused.",
        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    },
}


@dataclass(frozen=True)
class Operation:
    """One route: what it takes, what it answers on success, and which errors it answers."""

    method: Literal["get", "post"]
    path: str
    operation_id: str
    summary: str
    answers: Mapping[int, type[BaseModel] | None]  # None: the document itself (any object)
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    parameters: tuple[str, ...] = ()
    secured: bool = True
    tags: tuple[str, ...] = ("runs",)


OPERATIONS: Final = (
    Operation(
        "post",
        "/v1/uploads",
        "createUpload",
        "Get a presigned POST form to upload one image straight to storage.",
        {201: UploadCreated},
        _ADDRESSED + _SIGNED + _BODY,
        body=CreateUpload,
        tags=("uploads",),
    ),
    Operation(
        "post",
        "/v1/runs",
        "createRun",
        "Start a run on an uploaded image (within the caller's run quotas).",
        {201: RunCreated},
        _ADDRESSED + _SIGNED + _BODY + (404, 409, 429),
        body=CreateRun,
    ),
    Operation(
        "post",
        "/v1/runs/{run_id}/steps/{step_id}",
        "requestStep",
        "Request step 0 of a run: 202 when new, 200 when the request was made before.",
        {202: StepAccepted, 200: StepAccepted},
        _ADDRESSED + _SIGNED + (404, 422),
        parameters=("run_id", "step_id", "idempotency_key"),
    ),
    Operation(
        "get",
        "/v1/runs/{run_id}",
        "showRun",
        "The run with its jobs, artifacts, decisions and model calls.",
        {200: RunView},
        _ADDRESSED + _SIGNED + (404, 422),
        parameters=("run_id",),
    ),
    Operation(
        "post",
        "/v1/runs/{run_id}/review",
        "reviewRun",
        "An operator approves, retries or rejects a blocked run (the reviewer is the token's "
        "subject).",
        {202: ReviewAccepted},
        _ADDRESSED + _SIGNED + _BODY + (404, 409, 429),
        body=ReviewRun,
        parameters=("run_id",),
    ),
    Operation(
        "get",
        DOCUMENT_PATH,
        "openapi",
        "This document (no token needed).",
        {200: None},
        _ADDRESSED,
        secured=False,
        tags=("meta",),
    ),
    Operation(
        "get",
        "/healthz",
        "health",
        "The process answers (any Host, no token).",
        {200: Health},
        secured=False,
        tags=("meta",),
    ),
)


def _schemas(operations: Iterable[Operation]) -> tuple[dict[Any, Any], dict[str, Any]]:
    """Each (model, mode) -> its $ref, and every schema under components (requests in
    validation mode, answers in serialization mode: a defaulted answer field is optional)."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for op in operations:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        for model in op.answers.values():
            if model is not None:
                wanted[(model, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=_REF)
    return dict(refs), defs.get("$defs", {})


def _described(model: type[BaseModel] | None) -> str:
    """The first paragraph of the model's docstring on one line (its name when it has none)."""
    if model is None:
        return "This document."
    first = (model.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first.split()) or model.__name__


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {_JSON: {"schema": schema}}


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, model in sorted(op.answers.items()):
        schema = refs[(model, "serialization")] if model else {"type": "object"}
        answers[str(status)] = {"description": _described(model), "content": _content(schema)}
    for status in sorted(op.errors):
        answers[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "security": [{"bearerAuth": []}] if op.secured else [],
    }
    if op.parameters:
        spec["parameters"] = [_PARAMETERS[name] for name in op.parameters]
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": _content(refs[(op.body, "validation")])}
    spec["responses"] = answers
    return spec


def document(operations: Iterable[Operation] = OPERATIONS) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (the ingress's by default)."""
    operations = tuple(operations)
    refs, schemas = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    error_ref = refs[(Error, "serialization")]
    responses = {
        name: {"description": why, "content": _content(error_ref)}
        | ({"headers": _HEADERS[status]} if status in _HEADERS else {})
        for status, (name, why) in sorted(_ERRORS.items())
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "planstream ingress",
            "version": "v1",
            "description": "Uploads, runs, step requests, run views and reviews. Every /v1 "
            "route but this document takes `Authorization: Bearer <JWT>`; a user sees its own "
            "uploads and runs, an operator every run. Generated from the pydantic models "
            "(planstream/adapters/http/openapi.py); see docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": responses,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT whose signature, alg, iss, aud, exp and sub verify "
                    "(docs/security.md); the operator role is a claim.",
                }
            },
        },
    }


def render(operations: Iterable[Operation] = OPERATIONS) -> str:
    """The document as the committed file holds it (stable key order, two-space indent)."""
    return json.dumps(document(operations), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def served() -> bytes:
    """The ingress's document as it is served (rendered once per process)."""
    return render().encode("utf-8")
