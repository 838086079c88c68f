"""What follows a decision: the next step, a new attempt, the run's end or its block.

Every step attempt a decision asks for goes on the path its route gives when it is requested
(``planstream.services.routing``): the next step's render or the old function's request; a
retry's new analysis of the step's image, or the old function's run of the whole step again.
"""

from planstream.domain.events import (
    DecisionMade,
    Event,
    InfoRequested,
    RunBlocked,
    RunCompleted,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.policy import quality_for_step
from planstream.domain.records import Run
from planstream.domain.steps import LAST_STEP
from planstream.services.routing import RequestedBy, step_request
from planstream.services.runtime import Runtime
from topics import INFO_REQUESTED, RUN_BLOCKED, RUN_COMPLETED, TopicSpec

__all__ = ["RunFlow"]


class RunFlow:
    """Publishes the one event each decision calls for."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def follow(
        self, decision: DecisionMade, run: Run, retry: tuple[TopicSpec, Event] | None = None
    ) -> None:
        """Publish what the decision calls for; ``retry`` replaces the default new attempt."""
        rt = self._rt
        if decision.decision == "retry" and retry is not None:
            await rt.publisher.publish(*retry)
            return
        step, attempt = decision.step_id, decision.attempt
        by: RequestedBy = "legacy" if decision.decided_by == "legacy" else "supervisor"
        match decision.decision:
            case "proceed" if step == LAST_STEP:
                await rt.publisher.publish(
                    RUN_COMPLETED,
                    RunCompleted(**self._common(run, decision), steps_completed=LAST_STEP + 1),
                )
            case "proceed":
                await self.request(run, step + 1, 1, by, _image(decision), decision)
            case "retry":
                await self.request(run, step, attempt + 1, by, None, decision)
            case "block":
                assert decision.block_reason is not None
                await rt.publisher.publish(
                    RUN_BLOCKED,
                    RunBlocked(
                        **self._common(run, decision),
                        step_id=step,
                        attempt=attempt,
                        block_reason=decision.block_reason,
                    ),
                )

    async def request(
        self,
        run: Run,
        step: int,
        attempt: int,
        requested_by: RequestedBy,
        input_image: str | None,
        decision: DecisionMade | None = None,
    ) -> None:
        """Request one step attempt on its route. ``input_image`` is the step's input (the
        previous step's image; looked up when None). A new attempt of a step the new path
        decided, on the new path again, analyses the step's image again (``decision``'s, which
        Image I/O checked), as the Supervisor's retry always did; after the old function's
        decision it goes through the whole step."""
        rt = self._rt
        route = await rt.routing.route(run.run_id, step, attempt)
        versions = decision.versions if decision is not None else None
        quality = quality_for_step(step, run.quality_post_step4)
        if route == "new" and decision is not None and _reanalyses(decision, step):
            await rt.publisher.publish(
                INFO_REQUESTED,
                InfoRequested(
                    **self._common(run, decision),
                    step_id=step,
                    attempt=attempt,
                    idempotency_key=step_key(run.run_id, step, attempt),
                    artifact_ids=[_image(decision)],
                    quality=quality,
                ),
            )
            return
        image = input_image if input_image is not None else await self.step_input(run, step)
        await rt.publisher.publish(
            *step_request(
                route,
                event_id=new_id("evt"),
                run_id=run.run_id,
                occurred_at=rt.clock(),
                step_id=step,
                attempt=attempt,
                input_artifact_id=image,
                quality=quality,
                requested_by=requested_by,
                versions=versions,
            )
        )

    async def step_input(self, run: Run, step: int) -> str:
        """The image a step starts from: the upload for step 0, the previous step's newest
        image after (whichever path made it)."""
        found = await self._rt.repo.step_image(run.run_id, max(step - 1, 0))
        if found is None:
            raise ValueError(f"run {run.run_id} has no image for step {step} to start from")
        return found

    def _common(self, run: Run, decision: DecisionMade) -> dict[str, object]:
        return {
            "event_id": new_id("evt"),
            "run_id": run.run_id,
            "occurred_at": self._rt.clock(),
            "versions": decision.versions,
        }


def _reanalyses(decision: DecisionMade, step: int) -> bool:
    """Whether a new attempt of ``step`` on the new path analyses the decided image again: the
    new path decided it on an image (not on an upstream failure, not on the old function's run)."""
    return (
        decision.step_id == step
        and decision.decided_by != "legacy"
        and decision.image_artifact_id is not None
    )


def _image(decision: DecisionMade) -> str:
    if decision.image_artifact_id is None:
        raise ValueError(f"a {decision.decision} decision needs the step's image artifact")
    return decision.image_artifact_id
