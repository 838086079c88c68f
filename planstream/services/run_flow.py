"""What follows a decision: the next step's render, a new analysis, the run's end or its block."""

from planstream.domain.events import (
    DecisionMade,
    Event,
    InfoRequested,
    RenderRequested,
    RunBlocked,
    RunCompleted,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.policy import quality_for_step
from planstream.domain.records import Run
from planstream.domain.steps import LAST_STEP
from planstream.services.runtime import Runtime
from topics import INFO_REQUESTED, RENDER_REQUESTED, RUN_BLOCKED, RUN_COMPLETED, TopicSpec

__all__ = ["RunFlow"]


class RunFlow:
    """Publishes the one event each decision calls for."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def follow(
        self, decision: DecisionMade, run: Run, retry: tuple[TopicSpec, Event] | None = None
    ) -> None:
        """Publish what the decision calls for; ``retry`` replaces the default re-analysis."""
        rt = self._rt
        if decision.decision == "retry" and retry is not None:
            await rt.publisher.publish(*retry)
            return
        common = {
            "event_id": new_id("evt"),
            "run_id": run.run_id,
            "occurred_at": rt.clock(),
            "versions": decision.versions,
        }
        step, attempt = decision.step_id, decision.attempt
        match decision.decision:
            case "proceed" if step == LAST_STEP:
                await rt.publisher.publish(
                    RUN_COMPLETED, RunCompleted(**common, steps_completed=LAST_STEP + 1)
                )
            case "proceed":
                following = step + 1
                await rt.publisher.publish(
                    RENDER_REQUESTED,
                    RenderRequested(
                        **common,
                        step_id=following,
                        attempt=1,
                        idempotency_key=step_key(run.run_id, following, 1),
                        source_artifact_id=_image(decision),
                        quality=quality_for_step(following, run.quality_post_step4),
                    ),
                )
            case "retry":
                await rt.publisher.publish(
                    INFO_REQUESTED,
                    InfoRequested(
                        **common,
                        step_id=step,
                        attempt=attempt + 1,
                        idempotency_key=step_key(run.run_id, step, attempt + 1),
                        artifact_ids=[_image(decision)],
                        quality=quality_for_step(step, run.quality_post_step4),
                    ),
                )
            case "block":
                assert decision.block_reason is not None
                await rt.publisher.publish(
                    RUN_BLOCKED,
                    RunBlocked(
                        **common, step_id=step, attempt=attempt, block_reason=decision.block_reason
                    ),
                )


def _image(decision: DecisionMade) -> str:
    if decision.image_artifact_id is None:
        raise ValueError(f"a {decision.decision} decision needs the step's image artifact")
    return decision.image_artifact_id
