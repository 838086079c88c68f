"""The contract schemas the package needs, shipped as package data.

``spaces-v1.schema.json`` is the contract's Spaces schema (draft 2020-12, kept verbatim in
``tests/contract/spaces-v1.schema.json``) rewritten for draft-07, which fastjsonschema understands:
``$schema`` names draft-07 and ``$defs`` becomes ``definitions``. Nothing else changes;
``tests/contract/test_spaces_schema.py`` proves that both accept and refuse the same documents.
"""

import json
from importlib.resources import files
from typing import Any, Final

__all__ = ["SPACES_SCHEMA", "load_schema", "spaces_schema_for_model"]

SPACES_SCHEMA: Final = "spaces-v1.schema.json"


def load_schema(name: str) -> dict[str, Any]:
    """One contract schema from this package, parsed."""
    schema: dict[str, Any] = json.loads(files(__name__).joinpath(name).read_text("utf-8"))
    return schema


def spaces_schema_for_model() -> dict[str, Any]:
    """spaces-v1 as the model is asked for it: the 2020-12 original (``$defs``), strict-ready."""
    text = files(__name__).joinpath(SPACES_SCHEMA).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text.replace('"#/definitions/', '"#/$defs/'))
    schema["$defs"] = schema.pop("definitions")
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema
