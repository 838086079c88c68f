"""The sweeper: re-drives the jobs whose worker stopped renewing its lease (it crashed or hung).

A job whose lease expired is delivered again (its event, kept on the job, is published to its
topic once more; the next worker takes the lease over with a higher epoch), within the job's
delivery budget. A job out of deliveries is failed: for a step's worker the Supervisor hears of
it as ``WORKER_LOST`` and decides; for the Supervisor's own job the run is marked failed.
"""

import logging
from typing import Any, Final, cast

from planstream.adapters.leases import JobLeases
from planstream.events import ServiceName, StepEvent
from planstream.rules import Rule
from planstream.runtime import Runtime
from planstream.upstream import publish_failure
from topics import by_name

__all__ = ["WORKER_LOST", "Sweeper"]

log = logging.getLogger(__name__)

WORKER_LOST: Final = Rule(
    "WORKER_LOST",
    "high",
    "The step's worker stopped on every delivery; check its logs, then retry the run.",
)


class Sweeper:
    """One sweep at a time re-drives or fails every job whose lease expired."""

    def __init__(self, runtime: Runtime, leases: JobLeases) -> None:
        self._rt = runtime
        self._leases = leases

    async def sweep(self) -> int:
        """Handle the expired jobs; returns how many."""
        settings = self._rt.settings
        expired = await self._leases.expired(settings.lease_s, settings.sweeper_batch)
        for job in expired:
            try:
                await self._handle(job)
            except Exception:  # one bad job must not stop the others' re-drives
                log.exception("could not re-drive a job", extra={"job_id": job["job_id"]})
        return len(expired)

    async def _handle(self, job: dict[str, Any]) -> None:
        if "topic" not in job["payload_ref"]:
            raise LookupError(f"job {job['job_id']} keeps no event to deliver again")
        spec = by_name(job["payload_ref"]["topic"])
        assert spec.value_model is not None
        event = spec.value_model.model_validate(job["payload_ref"]["event"])
        assert isinstance(event, StepEvent)
        fields = {"job_id": job["job_id"], "run_id": job["run_id"], "service": job["service"]}
        if job["attempts"] < job["max_attempts"]:
            await self._rt.publisher.publish(spec, event)
            log.warning("re-drove a job whose lease expired", extra=fields)
            return
        reason = f"the lease expired on all {job['attempts']} deliveries"
        if not await self._leases.give_up(job["job_id"], job["lease_epoch"], reason):
            return  # its worker came back and finished it meanwhile
        log.error("gave up a job: %s", reason, extra=fields)
        if job["service"] == "supervisor":
            await self._rt.repo.fail_run(job["run_id"], f"the Supervisor's job {reason}")
        else:
            failure = WORKER_LOST.failure(f"{job['service']}: {reason}")
            service = cast(ServiceName, job["service"])
            await publish_failure(self._rt, event, service, failure, job["job_id"])
