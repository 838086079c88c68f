"""JSON Schemas generated from the event and API models, and the ingress's OpenAPI document,
written to and checked against schemas/."""

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from planstream.adapters.http import api, openapi
from topics import CATALOGUE

__all__ = ["drift", "render_all", "write_all"]

_API_MODELS: tuple[type[BaseModel], ...] = (api.CreateUpload, api.CreateRun)


def _render(model: type[BaseModel], schema_id: str) -> str:
    schema = model.model_json_schema(mode="validation")
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id}
    return json.dumps({**document, **schema}, indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    """File name -> content of every schema planstream publishes."""
    files = {
        f"{spec.name}.json": _render(spec.value_model, spec.name)
        for spec in CATALOGUE
        if spec.value_model is not None
    }
    for model in _API_MODELS:
        files[f"api.{model.__name__}.json"] = _render(model, f"api.{model.__name__}")
    spaces = resources.files("planstream.domain") / "contracts" / "spaces-v1.schema.json"
    files["spaces-v1.schema.json"] = spaces.read_text(encoding="utf-8")
    files["openapi.json"] = openapi.render()
    return files


def write_all(folder: Path) -> list[str]:
    """Write every schema into ``folder``; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for name, content in rendered.items():
        (folder / name).write_text(content, encoding="utf-8")
    return sorted(rendered)


def drift(folder: Path, rendered: Mapping[str, str] | None = None) -> list[str]:
    """Names of the schemas whose committed copy in ``folder`` differs from ``rendered`` (the
    models' now by default) or is missing, and of the files no model renders."""
    rendered = render_all() if rendered is None else rendered
    stale = [
        name
        for name, content in rendered.items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != content
    ]
    extra = {p.name for p in folder.glob("*.json")} - set(rendered)
    return sorted(stale + list(extra))
