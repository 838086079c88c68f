"""Wire data: every event planstream publishes, as frozen pydantic models that carry ids only.

Events are past-tense facts. Each is keyed by ``run_id`` on the wire so that one run's events
stay on one partition and in order. A breaking change is a new model on a ``.v2`` topic; inside
a version only optional fields are added.
"""

from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from planstream.domain.guards import find_smuggling
from planstream.domain.ids import ArtifactId, EventId, IdempotencyKey, JobId, ReplayId, RunId
from planstream.domain.principals import SUBJECT_PATTERN
from planstream.domain.service_names import ServiceName
from planstream.domain.steps import LAST_STEP

__all__ = [
    "EVENT_MODELS",
    "AnyEvent",
    "Attempt",
    "ComparisonCompleted",
    "Decision",
    "DecisionMade",
    "Event",
    "Failure",
    "ImageReady",
    "InfoExtracted",
    "InfoRequested",
    "LegacyStepRequested",
    "OutcomeBlockReason",
    "Quality",
    "RenderRequested",
    "RunBlocked",
    "RunCompleted",
    "RunReviewed",
    "ServiceName",
    "Severity",
    "StepEvent",
    "StepFailed",
    "StepId",
    "StepRequested",
    "Versions",
    "step_key",
]

StepId = Annotated[int, Field(ge=0, le=LAST_STEP)]
Attempt = Annotated[int, Field(ge=1, le=30, description="1-based attempt of this step")]
Quality = Literal["1K", "2K", "4K"]
Severity = Literal["low", "medium", "high", "critical"]
Decision = Literal["proceed", "retry", "block"]
RuleName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{2,47}$")]
OutcomeBlockReason = Literal["retry_budget_exhausted", "too_many_failures", "rejected_by_reviewer"]
"""A block reason that names no rule; ``rules.BLOCK_REASONS`` holds these, typed by this."""
BlockReason = RuleName | OutcomeBlockReason
MAX_LISTED_FAILURES = 24
"""Failures an event lists in full; more are counted (``failure_count``) to stay under 50 KB."""


def _clean_text(value: str) -> str:
    reason = find_smuggling(value)
    if reason is not None:
        raise ValueError(f"text {reason}")
    return value


SafeText = Annotated[str, Field(max_length=500), AfterValidator(_clean_text)]
SpaceRef = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_clean_text)]


def step_key(run_id: str, step_id: int, attempt: int) -> str:
    """The idempotency key of one attempt of one step: every service derives its job key from it."""
    return f"{run_id}:s{step_id}:a{attempt}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Failure(_Frozen):
    """One rule that fired: what, how bad, where, why, and how to fix it."""

    rule: RuleName
    severity: Severity
    space_id: SpaceRef | None = None
    detail: SafeText
    suggested_fix: SafeText | None = None


VersionText = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9._:/@+-]{1,80}$"), AfterValidator(_clean_text)
]


class Versions(_Frozen):
    """What produced a result: the Spaces schema, the prompt, the model and the rule catalogue."""

    spaces_schema: VersionText
    prompt: VersionText
    model: VersionText
    rules: VersionText


class Event(_Frozen):
    event_id: EventId
    run_id: RunId
    occurred_at: AwareDatetime
    versions: Versions | None = Field(
        default=None, description="what produced the event, where a model or the rules did"
    )
    replay_id: ReplayId | None = Field(
        default=None,
        description="the replay the event belongs to: set on planstream.replay.* topics only",
    )


class StepEvent(Event):
    """An event about one attempt of one step of a run."""

    step_id: StepId
    attempt: Attempt
    idempotency_key: IdempotencyKey

    def same_step(self, event_id: str, occurred_at: datetime) -> dict[str, Any]:
        """The fields an event that follows from this one about the same step attempt shares."""
        return {
            "event_id": event_id,
            "run_id": self.run_id,
            "occurred_at": occurred_at,
            "step_id": self.step_id,
            "attempt": self.attempt,
            "idempotency_key": self.idempotency_key,
        }


class StepRequested(StepEvent):
    """A producer (client, Supervisor or operator) asks for one attempt of one step of a run."""

    kind: Literal["step.requested"] = "step.requested"
    input_artifact_ids: list[ArtifactId] = Field(min_length=1, max_length=8)
    requested_by: Literal["client", "supervisor", "operator"]


class ImageReady(StepEvent):
    """Image I/O checked the step's images: they exist, decode, and fit the quality tier."""

    kind: Literal["image.ready"] = "image.ready"
    job_id: JobId
    artifact_ids: list[ArtifactId] = Field(min_length=1, max_length=8)
    quality: Quality


class StepFailed(StepEvent):
    """A service could not do its part of a step (an upstream failure for the Supervisor)."""

    kind: Literal["step.failed"] = "step.failed"
    service: ServiceName
    job_id: JobId | None = None
    failure: Failure
    retryable: bool = False


class InfoRequested(StepEvent):
    """The Supervisor asks the Info Worker to analyse the step's image again (a semantic retry)."""

    kind: Literal["info.requested"] = "info.requested"
    artifact_ids: list[ArtifactId] = Field(min_length=1, max_length=8)
    quality: Quality


class InfoExtracted(StepEvent):
    """The Info Worker stored a Spaces document, or says why the model's answer is unusable."""

    kind: Literal["info.extracted"] = "info.extracted"
    job_id: JobId
    image_artifact_id: ArtifactId
    spaces_artifact_id: ArtifactId | None
    raw_artifact_id: ArtifactId | None
    space_count: int = Field(ge=0, le=10_000)
    failure: Failure | None = None
    model_calls: int = Field(ge=1, le=20, description="extraction calls this step has used")


class ComparisonCompleted(StepEvent):
    """Schema, rules and the request comparison ran on the step's Spaces document."""

    kind: Literal["comparison.completed"] = "comparison.completed"
    job_id: JobId
    image_artifact_id: ArtifactId
    spaces_artifact_id: ArtifactId | None
    schema_valid: bool
    passed: bool
    failures: list[Failure] = Field(default_factory=list, max_length=MAX_LISTED_FAILURES)
    failure_count: int = Field(ge=0, le=10_000)
    model_calls: int = Field(ge=1, le=20)


class DecisionMade(StepEvent):
    """The Supervisor decided the step: proceed, retry or block, with its audit. On the legacy
    path the bridge decides (``decided_by = legacy``) on what the old function reported; that
    value was added inside v1 as an optional field would be: a reader that forbids it refuses
    only the decisions of steps routed to legacy, which no default routes."""

    kind: Literal["decision.made"] = "decision.made"
    decided_by: Literal["supervisor", "reviewer", "legacy"] = "supervisor"
    decision: Decision
    block_reason: BlockReason | None
    failures: list[Failure] = Field(default_factory=list, max_length=MAX_LISTED_FAILURES)
    failure_count: int = Field(ge=0, le=10_000)
    schema_valid: bool | None
    consistency_score: float | None = Field(default=None, ge=0.0, le=1.0)
    contradictions: list[SafeText] = Field(default_factory=list, max_length=10)
    audit_note: SafeText | None = Field(default=None, description="why no audit ran, if none")
    retry_budget_remaining: int = Field(ge=0, le=30)
    image_artifact_id: ArtifactId | None = None
    spaces_artifact_id: ArtifactId | None = None


class RunCompleted(Event):
    """Every step of the run proceeded."""

    kind: Literal["run.completed"] = "run.completed"
    steps_completed: int = Field(ge=1, le=LAST_STEP + 1)


class RunBlocked(Event):
    """The run stopped at a step and waits for a human decision."""

    kind: Literal["run.blocked"] = "run.blocked"
    step_id: StepId
    attempt: Attempt
    block_reason: BlockReason


class RenderRequested(StepEvent):
    """The Supervisor asks the render worker for the step's image, made from the previous one."""

    kind: Literal["render.requested"] = "render.requested"
    source_artifact_id: ArtifactId
    quality: Quality


class LegacyStepRequested(StepEvent):
    """A step attempt routed to the old ``run-pipeline-step`` function (docs/migration.md):
    the legacy bridge calls it with these ids, never an image or a URL."""

    kind: Literal["legacy.step.requested"] = "legacy.step.requested"
    input_artifact_ids: list[ArtifactId] = Field(min_length=1, max_length=8)
    quality: Quality
    requested_by: Literal["client", "supervisor", "legacy", "operator"]


class RunReviewed(Event):
    """A human approved, retried or rejected a blocked run."""

    kind: Literal["run.reviewed"] = "run.reviewed"
    action: Literal["approve", "retry", "reject"]
    reason: SafeText
    reviewer: Annotated[str, Field(pattern=SUBJECT_PATTERN)]  # the reviewer's token subject


AnyEvent: TypeAlias = Annotated[
    StepRequested
    | ImageReady
    | StepFailed
    | InfoRequested
    | InfoExtracted
    | ComparisonCompleted
    | DecisionMade
    | RunCompleted
    | RunBlocked
    | RunReviewed
    | RenderRequested
    | LegacyStepRequested,
    Field(discriminator="kind"),
]

EVENT_MODELS: tuple[type[Event], ...] = (
    StepRequested,
    ImageReady,
    StepFailed,
    InfoRequested,
    InfoExtracted,
    ComparisonCompleted,
    DecisionMade,
    RunCompleted,
    RunBlocked,
    RunReviewed,
    RenderRequested,
    LegacyStepRequested,
)
