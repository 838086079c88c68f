"""Factories for the step services' tests: the events of one step attempt, a clean plan, and
the model's answers, each valid by default with any field overridable."""

import json
from datetime import UTC, datetime
from typing import Any

from planstream.domain.events import (
    ComparisonCompleted,
    Failure,
    ImageReady,
    InfoExtracted,
    RenderRequested,
    StepEvent,
    StepFailed,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.ports import ChatAnswer
from tests.factories import make_step_requested, space_json, spaces_json
from tests.fakes import chat_answer

__all__ = [
    "WHEN",
    "audit_answer",
    "clean_plan",
    "comparison_answer",
    "make_comparison_completed",
    "make_image_ready",
    "make_info_extracted",
    "make_render_requested",
    "make_step_failed",
    "make_step_requested",
    "plan_answer",
]

WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _step(run_id: str, step_id: int, attempt: int) -> dict[str, Any]:
    return {
        "event_id": new_id("evt"),
        "run_id": run_id,
        "occurred_at": WHEN,
        "step_id": step_id,
        "attempt": attempt,
        "idempotency_key": step_key(run_id, step_id, attempt),
    }


def _with(event: type[StepEvent], run_id: str, defaults: dict[str, Any], **overrides: Any) -> Any:
    step_id, attempt = overrides.pop("step_id", 0), overrides.pop("attempt", 1)
    return event.model_validate({**_step(run_id, step_id, attempt), **defaults, **overrides})


def make_image_ready(run_id: str, image_id: str, **overrides: Any) -> ImageReady:
    defaults = {"job_id": new_id("job"), "artifact_ids": [image_id], "quality": "2K"}
    return _with(ImageReady, run_id, defaults, **overrides)  # type: ignore[no-any-return]


def make_info_extracted(
    run_id: str, image_id: str, spaces_id: str | None, **overrides: Any
) -> InfoExtracted:
    defaults = {
        "job_id": new_id("job"),
        "image_artifact_id": image_id,
        "spaces_artifact_id": spaces_id,
        "raw_artifact_id": None,
        "space_count": 4,
        "model_calls": 1,
    }
    return _with(InfoExtracted, run_id, defaults, **overrides)  # type: ignore[no-any-return]


def make_comparison_completed(
    run_id: str, image_id: str, failures: list[Failure], **overrides: Any
) -> ComparisonCompleted:
    defaults = {
        "job_id": new_id("job"),
        "image_artifact_id": image_id,
        "spaces_artifact_id": None,
        "schema_valid": True,
        "passed": not failures,
        "failures": failures,
        "failure_count": len(failures),
        "model_calls": 1,
    }
    return _with(ComparisonCompleted, run_id, defaults, **overrides)  # type: ignore[no-any-return]


def make_render_requested(run_id: str, source_id: str, **overrides: Any) -> RenderRequested:
    defaults = {"source_artifact_id": source_id, "quality": "2K"}
    return _with(RenderRequested, run_id, defaults, **overrides)  # type: ignore[no-any-return]


def make_step_failed(
    run_id: str, failure: Failure, service: str = "image_io", **overrides: Any
) -> StepFailed:
    defaults = {"service": service, "job_id": new_id("job"), "failure": failure}
    return _with(StepFailed, run_id, defaults, **overrides)  # type: ignore[no-any-return]


def _room(number: int, kind: str, item: str) -> dict[str, Any]:
    box = {"x_min": 100 * number, "y_min": 0, "x_max": 100 * number + 90, "y_max": 90}
    furnishing = {"item": item, "count": 1, "source": "drawn_on_plan"}
    return space_json(number, type=kind, bbox=box, furnishings=[furnishing])


def clean_plan(width: int = 2400, height: int = 1800, **overrides: Any) -> dict[str, Any]:
    """A residential plan that passes every rule for an image of ``width`` x ``height``."""
    rooms = [
        _room(1, "living_room", "sofa"),
        _room(2, "kitchen", "kitchen_sink"),
        _room(3, "bedroom", "bed_double"),
        _room(4, "bathroom", "toilet"),
    ]
    return spaces_json(*rooms, image={"width_px": width, "height_px": height}) | overrides


def plan_answer(document: dict[str, Any] | None = None) -> ChatAnswer:
    """The model's extraction answer: ``document`` (a clean plan by default) as JSON."""
    return chat_answer(json.dumps(clean_plan() if document is None else document))


def audit_answer(score: float = 0.95, *contradictions: str) -> ChatAnswer:
    return chat_answer({"consistency_score": score, "contradictions": list(contradictions)})


def comparison_answer(*mismatches: tuple[str, str]) -> ChatAnswer:
    return chat_answer({"mismatches": [{"description": d, "severity": s} for d, s in mismatches]})
