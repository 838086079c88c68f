"""Event factories for tests: valid by default, any field overridable."""

from datetime import UTC, datetime
from typing import Any

from planstream.domain.events import StepRequested, step_key
from planstream.domain.ids import new_id


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
