"""Reporting a failed part of a step to the Supervisor, and closing the job that failed."""

from planstream.domain.events import Failure, ServiceName, StepEvent, StepFailed
from planstream.domain.ids import new_id
from planstream.services.jobs import StepWork
from planstream.services.runtime import Runtime
from topics import STEP_FAILED

__all__ = ["publish_failure", "report_failure"]


async def publish_failure(
    rt: Runtime, event: StepEvent, service: ServiceName, failure: Failure, job_id: str | None
) -> StepFailed:
    """Tell the Supervisor that ``service`` failed its part of the step attempt."""
    failed = StepFailed(
        **event.same_step(new_id("evt"), rt.clock()),
        service=service,
        job_id=job_id,
        failure=failure,
    )
    await rt.publisher.publish(STEP_FAILED, failed)
    return failed


async def report_failure(
    rt: Runtime,
    event: StepEvent,
    work: StepWork,
    service: ServiceName,
    failure: Failure,
    stack: str | None = None,
) -> None:
    """Publish ``StepFailed`` for the step attempt, then mark the job failed with the reason."""
    failed = await publish_failure(rt, event, service, failure, work.lease.job_id)
    await rt.jobs.finish(
        work,
        "failed",
        {"event_id": failed.event_id, "rule": failure.rule},
        error=f"{failure.rule}: {failure.detail}",
        stack=stack,
    )
