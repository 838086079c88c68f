"""JSON Schemas generated from the event and API models, written to and checked against schemas/."""

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from planstream.adapters.http import api
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
    return files


def write_all(folder: Path) -> list[str]:
    """Write every schema into ``folder``; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for name, content in rendered.items():
        (folder / name).write_text(content, encoding="utf-8")
    return sorted(rendered)


def drift(folder: Path) -> list[str]:
    """Names of the schemas whose committed copy in ``folder`` differs or is missing."""
    stale = [
        name
        for name, content in render_all().items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != content
    ]
    extra = {p.name for p in folder.glob("*.json")} - set(render_all())
    return sorted(stale + list(extra))
