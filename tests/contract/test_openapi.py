"""The ingress's OpenAPI document: committed, valid OpenAPI 3.1, complete, and caught drifting."""

import dataclasses
import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from planstream.adapters.http import openapi
from planstream.adapters.http.api import CreateRun
from planstream.adapters.http.ingress import create_app
from planstream.adapters.http.views import RunView
from planstream.cli import schemas
from planstream.settings import Settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
COMMITTED = SCHEMAS / "openapi.json"


class CreateRunWithPriority(CreateRun):
    """CreateRun as someone might change it without running `make schemas`."""

    priority: int = 0


class RunViewWithoutOwner(RunView):
    """RunView as someone might change it: a field that is no longer sent."""

    owner: None = None


def _with(operation_id: str, **changes: object) -> tuple[openapi.Operation, ...]:
    return tuple(
        dataclasses.replace(op, **changes) if op.operation_id == operation_id else op
        for op in openapi.OPERATIONS
    )


def test_the_committed_document_is_the_models_document() -> None:
    assert "openapi.json" not in schemas.drift(SCHEMAS), "run `make schemas` and commit it"
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render()


@pytest.mark.parametrize(
    ("operation_id", "changes"),
    [
        ("createRun", {"body": CreateRunWithPriority}),  # a request model gains a field
        ("showRun", {"answers": {200: RunViewWithoutOwner}}),  # an answer model changes
        ("showRun", {"errors": (401, 404)}),  # an error status is dropped
    ],
    ids=["request model", "answer model", "error statuses"],
)
def test_the_drift_check_reports_a_changed_route(operation_id: str, changes: dict) -> None:
    """Self-test: the document built from a changed route differs from the committed one, and
    the drift check `make lint`/the test above run names the file."""
    changed = openapi.render(_with(operation_id, **changes))
    rendered = {**schemas.render_all(), "openapi.json": changed}
    assert schemas.drift(SCHEMAS, rendered) == ["openapi.json"]


def test_the_document_is_valid_openapi_3_1() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_json_route_of_the_ingress_is_documented_and_nothing_else() -> None:
    app = create_app(Settings(auth_hs256_secret="s" * 40))
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and (route.resource.canonical.startswith("/v1/") or route.resource.canonical == "/healthz")
    }
    documented = {(op.method, op.path) for op in openapi.OPERATIONS}
    assert routes == documented


def test_only_the_document_is_open_and_every_v1_route_takes_the_bearer_scheme() -> None:
    document = openapi.document()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            open_route = (path, method) in {(openapi.DOCUMENT_PATH, "get"), ("/healthz", "get")}
            assert (operation["security"] == []) is open_route, (method, path)
            if not open_route:
                assert "401" in operation["responses"], (method, path)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def test_quota_and_authentication_answers_document_their_headers() -> None:
    responses = openapi.document()["components"]["responses"]
    assert responses["QuotaExceeded"]["headers"]["Retry-After"]["required"] is True
    assert responses["Unauthenticated"]["headers"]["WWW-Authenticate"]["required"] is True


def test_every_answer_model_is_closed_so_a_new_field_is_a_contract_change() -> None:
    components = openapi.document()["components"]["schemas"]
    models: list[type[BaseModel]] = [
        model for op in openapi.OPERATIONS for model in op.answers.values() if model is not None
    ]
    for model in models:
        assert components[model.__name__]["additionalProperties"] is False, model.__name__
