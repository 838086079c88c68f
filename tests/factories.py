"""Factories for tests: events and Spaces documents, valid by default, any field overridable.

Spaces come two ways: as the model writes them (``space_json``, ``spaces_json``: plain JSON
values, for the schema check and the rules) and typed (``make_space``, ``make_spaces``: what
``load_spaces`` returns, for the decisions).
"""

from datetime import UTC, datetime
from typing import Any

from planstream.domain.events import StepRequested, step_key
from planstream.domain.ids import new_id
from planstream.domain.spaces import BBox, Furnishing, ImageSize, Space, SpacesDocument

SOFA = {"item": "sofa", "count": 1, "source": "drawn_on_plan"}


def make_step_requested(**overrides: Any) -> StepRequested:
    run_id = overrides.pop("run_id", new_id("run"))
    step_id = overrides.pop("step_id", 0)
    attempt = overrides.pop("attempt", 1)
    fields: dict[str, Any] = {
        "event_id": new_id("evt"),
        "run_id": run_id,
        "occurred_at": datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
        "step_id": step_id,
        "attempt": attempt,
        "idempotency_key": step_key(run_id, step_id, attempt),
        "input_artifact_ids": [new_id("art")],
        "requested_by": "client",
    }
    return StepRequested(**{**fields, **overrides})


def space_json(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid, furnished, confident, unambiguous living room as JSON; override any field."""
    space = {
        "id": f"S{number}",
        "label_text": None,
        "dimensions_text": None,
        "bbox": {"x_min": 0, "y_min": 0, "x_max": 100, "y_max": 100},
        "furnishings": [SOFA],
        "type": "living_room",
        "alternative_types": [],
        "ambiguous": False,
        "ambiguity_reason": None,
        "confidence": 0.9,
        "area": {"value": None, "unit": None, "source": "none"},
        "adjacent_space_ids": [],
    }
    return space | overrides


def spaces_json(*spaces: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A valid residential floor plan of 1000x800 px holding ``spaces``; override any field."""
    document = {
        "schema_version": "spaces-1.0",
        "document_type": "single_floor_plan",
        "plan_type": "residential",
        "image": {"width_px": 1000, "height_px": 800},
        "units": {"length_unit": "m", "area_unit": "m2"},
        "overall_confidence": 0.9,
        "spaces": list(spaces),
        "extraction_notes": [],
    }
    return document | overrides


def make_space(number: int, space_type: str, **overrides: Any) -> Space:
    """A typed, furnished, confident, unambiguous space of ``space_type``; override any field."""
    fields: dict[str, Any] = {
        "id": f"S{number}",
        "type": space_type,
        "alternative_types": (),
        "furnishings": (Furnishing("other_furniture", 1, "drawn_on_plan"),),
        "bbox": BBox(0, 0, 10, 10),
        "ambiguous": False,
        "ambiguity_reason": None,
        "confidence": 0.9,
    }
    return Space(**(fields | overrides))


def make_spaces(*spaces: Space, document_type: str = "single_floor_plan") -> SpacesDocument:
    """A typed residential document of 100x100 px holding ``spaces``."""
    return SpacesDocument(document_type, "residential", ImageSize(100, 100), spaces)
