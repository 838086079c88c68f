"""What ``GET /v1/runs/{run_id}`` answers: the run with its jobs, artifacts, decisions and model
calls, typed column by column after planstream/adapters/postgres/sql (nullable where the column
is). The ingress validates every view against these models before it answers, so a column the
query adds or a value the models do not expect shows up in the tests, not in a client.

Times are RFC 3339 (``date-time``); a model call's ``cost_usd`` is the database's exact decimal
as a string, the sums under ``cost`` are numbers. JSON columns whose shape is the writer's
(``payload_ref``, ``metadata``, ``versions`` ...) are objects or arrays of any JSON.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from planstream.domain.events import Quality, StepId
from planstream.domain.ids import ArtifactId, JobId, RunId, UploadId

__all__ = [
    "ArtifactView",
    "DecisionView",
    "JobView",
    "ModelCallView",
    "RunCost",
    "RunView",
    "StepCost",
]

Count = Annotated[int, Field(ge=0)]
Attempt = Annotated[int, Field(ge=1)]
JsonObject = dict[str, JsonValue]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobView(_View):
    """One job: a service's work on one step attempt, with its lease and outcome."""

    job_id: JobId
    step_id: StepId
    attempt: Attempt
    service: str
    status: Literal["pending", "running", "completed", "failed", "blocked"]
    attempts: Count = Field(description="deliveries to a worker (a crash or a retry adds one)")
    max_attempts: Attempt
    payload_ref: JsonObject
    result_ref: JsonObject | None
    locked_by: str | None
    lease_expires_at: datetime | None
    lease_epoch: int
    last_error: str | None
    processing_time_ms: Count | None
    created_at: datetime
    completed_at: datetime | None


class ArtifactView(_View):
    """A stored object of the run; its signed URL is a credential and is never shown."""

    artifact_id: ArtifactId
    step_id: StepId | None
    kind: Literal["source_image", "render_image", "spaces_json", "model_response"]
    storage_bucket: str
    storage_path: str
    signed_url_expires_at: datetime | None
    metadata: JsonObject
    created_at: datetime


class DecisionView(_View):
    """The Supervisor's (or a reviewer's, or the legacy path's) decision on a step attempt."""

    decision_id: str
    step_id: StepId
    attempt: Attempt
    decided_by: Literal["supervisor", "reviewer", "legacy"]
    decision: Literal["proceed", "retry", "block"]
    schema_validations: list[JsonValue]
    rule_checks: JsonObject | list[JsonValue]
    llm_audit: JsonObject | None
    retry_budget_remaining: Count
    block_reason: str | None
    versions: JsonObject
    created_at: datetime


class ModelCallView(_View):
    """One call to a model, with what it cost and how long it waited for the rate limiter."""

    step_id: StepId
    attempt: Attempt
    service: str
    purpose: Literal["extract", "compare", "audit", "render"]
    model: str
    prompt_version: str
    outcome: str
    input_tokens: Count
    output_tokens: Count
    cost_usd: Decimal = Field(description="US dollars, exact (numeric(12, 6))")
    latency_ms: Count
    finish_reason: str | None
    created_at: datetime
    transport_attempt: Attempt
    waited_ms: Count
    note: str | None = Field(
        default=None, description="how long it queued for the rate limit, from 1 s on"
    )


class StepCost(_View):
    """The model calls of one step, summed."""

    calls: Count
    input_tokens: Count
    output_tokens: Count
    cost_usd: float
    waited_ms: Count


class RunCost(_View):
    """The run's model spend, in total and by step (keys are step numbers)."""

    total_usd: float
    by_step: dict[Annotated[str, Field(pattern=r"^[0-6]$")], StepCost]


class RunView(_View):
    """A run as its owner (or an operator) sees it."""

    run_id: RunId
    upload_id: UploadId
    ratio: str
    ratio_locked: bool
    quality_post_step4: Quality
    request_text: str | None
    payload_size_estimate: Count
    status: Literal["pending", "running", "completed", "blocked", "failed", "rejected"]
    current_step: StepId
    block_reason: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = Field(
        description="the run's trace (null when none was kept)"
    )
    owner: str | None = Field(description="the subject that made it (null before auth)")
    cost: RunCost
    model_calls: list[ModelCallView]
    jobs: list[JobView]
    artifacts: list[ArtifactView]
    decisions: list[DecisionView]
