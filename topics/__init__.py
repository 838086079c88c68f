"""The topic catalogue: every topic planstream uses, its key, value model, partitions and policy.

All topics a run touches share one partition count (the ``topic_partitions`` setting, default 4)
and are keyed by ``run_id``, so one run's events stay on one partition, in order, and Faust tables
are co-partitioned with their source topics.
"""

from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel

from planstream.domain import events

__all__ = [
    "CATALOGUE",
    "COMPARISON_COMPLETED",
    "DEAD_LETTER",
    "DECISION_MADE",
    "IMAGE_READY",
    "INFO_EXTRACTED",
    "INFO_REQUESTED",
    "LEGACY_REQUESTED",
    "RENDER_REQUESTED",
    "REPLAY_FAMILY",
    "RUN_BLOCKED",
    "RUN_COMPLETED",
    "RUN_REVIEWED",
    "STEP_FAILED",
    "STEP_REQUESTED",
    "TopicSpec",
    "by_name",
    "replay_twin",
]

DAY_MS: Final = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, what it carries, and how the broker keeps it."""

    name: str
    value_model: type[BaseModel] | None
    description: str
    key: Literal["run_id"] = "run_id"
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = 7 * DAY_MS

    def full_name(self, namespace: str = "") -> str:
        """The broker-side name, with the deployment's namespace prefix (empty by default)."""
        return f"{namespace}{self.name}"

    def broker_config(self) -> dict[str, str]:
        """Topic-level broker configuration for creating the topic."""
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "delete":
            config["retention.ms"] = str(self.retention_ms)
        return config


STEP_REQUESTED = TopicSpec(
    "planstream.step.requested.v1", events.StepRequested, "a producer asks for a step attempt"
)
IMAGE_READY = TopicSpec(
    "planstream.image.ready.v1", events.ImageReady, "Image I/O checked a step's images"
)
STEP_FAILED = TopicSpec(
    "planstream.step.failed.v1", events.StepFailed, "a service failed its part of a step"
)
INFO_REQUESTED = TopicSpec(
    "planstream.info.requested.v1", events.InfoRequested, "the Supervisor asks for a new analysis"
)
INFO_EXTRACTED = TopicSpec(
    "planstream.info.extracted.v1", events.InfoExtracted, "a Spaces document was stored"
)
COMPARISON_COMPLETED = TopicSpec(
    "planstream.comparison.completed.v1",
    events.ComparisonCompleted,
    "schema, rules and request comparison ran",
)
DECISION_MADE = TopicSpec(
    "planstream.decision.made.v1", events.DecisionMade, "the Supervisor decided a step"
)
RUN_COMPLETED = TopicSpec(
    "planstream.run.completed.v1", events.RunCompleted, "every step of a run proceeded"
)
RUN_BLOCKED = TopicSpec(
    "planstream.run.blocked.v1", events.RunBlocked, "a run waits for a human decision"
)
RENDER_REQUESTED = TopicSpec(
    "planstream.render.requested.v1",
    events.RenderRequested,
    "the Supervisor asks for the next step's render",
)
LEGACY_REQUESTED = TopicSpec(
    "planstream.legacy.step.requested.v1",
    events.LegacyStepRequested,
    "a step attempt routed to the old run-pipeline-step function (the legacy bridge)",
)
RUN_REVIEWED = TopicSpec(
    "planstream.run.reviewed.v1", events.RunReviewed, "a human decided on a blocked run"
)
DEAD_LETTER = TopicSpec(
    "planstream.dead-letter.v1",
    None,
    "events no agent could decode or accept: the original bytes, the error in headers",
    retention_ms=30 * DAY_MS,
)

REPLAY_PREFIX: Final = "planstream.replay."


def replay_twin(spec: TopicSpec) -> TopicSpec:
    """The replay family's topic for a step topic: the same key, model and partitions under
    ``planstream.replay.``, kept a day (docs/replay.md). Its events carry a ``replay_id``."""
    stem = spec.name.removeprefix("planstream.")
    return TopicSpec(
        f"{REPLAY_PREFIX}{stem}",
        spec.value_model,
        f"replay: {spec.description}",
        retention_ms=DAY_MS,
    )


REPLAY_FAMILY: Final[tuple[TopicSpec, ...]] = tuple(
    replay_twin(spec)
    for spec in (INFO_REQUESTED, STEP_FAILED, INFO_EXTRACTED, COMPARISON_COMPLETED, DECISION_MADE)
)
"""The step topics a replay's attempts travel through, from the Info Worker's request to the
Supervisor's decision (a replay re-decides recorded attempts: no upload, no render)."""

CATALOGUE: Final[tuple[TopicSpec, ...]] = (
    STEP_REQUESTED,
    IMAGE_READY,
    STEP_FAILED,
    INFO_REQUESTED,
    INFO_EXTRACTED,
    COMPARISON_COMPLETED,
    DECISION_MADE,
    RUN_COMPLETED,
    RUN_BLOCKED,
    RUN_REVIEWED,
    RENDER_REQUESTED,
    LEGACY_REQUESTED,
    DEAD_LETTER,
    *REPLAY_FAMILY,
)


def by_name(name: str) -> TopicSpec:
    """The spec of a catalogue topic by its (un-namespaced) name."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(f"no topic named {name!r} in the catalogue")
