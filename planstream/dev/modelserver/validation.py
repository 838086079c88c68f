"""Self-checks: every scripted answer is validated against the schema the request sent."""

import functools
import json
from collections.abc import Callable
from typing import Any

import fastjsonschema

from planstream.dev.modelserver.errors import ApiError, bad_request

__all__ = ["check_answer"]


@functools.lru_cache(maxsize=16)
def _compiled(schema_text: str) -> Callable[[object], Any]:
    """The validator of one schema (JSON text as the cache key), compiled once."""
    compiled: Callable[[object], Any] = fastjsonschema.compile(json.loads(schema_text))
    return compiled


def check_answer(schema: dict[str, Any], answer: object, name: str) -> None:
    """Raise an ApiError unless ``answer`` passes ``schema`` (2020-12 ``$defs`` refs resolve)."""
    try:
        validator = _compiled(json.dumps(schema, sort_keys=True))
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError, TypeError) as exc:
        raise bad_request(
            f"response_format.json_schema.schema is not a usable JSON Schema: {exc}",
            param="response_format.json_schema.schema",
        ) from exc
    try:
        validator(answer)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ApiError(
            400,
            f"the requested {name} schema rejects the scripted answer ({exc.message}): "
            "send the schema of docs/model-protocol.md",
            code="schema_mismatch",
            param="response_format.json_schema.schema",
        ) from exc
