"""The sweeper: re-drives the jobs nobody works on.

Two kinds: a job whose worker stopped renewing its lease (it crashed or hung), and a job
received but never leased for a lease period (its event was lost between the receipt and a
worker: the process died, or the consumer dropped it in a rebalance). Either is delivered again
(its event, kept on the job, is published to its topic once more; the next worker takes the
lease with a higher epoch), within the job's budget: deliveries for a leased job, re-drives for
one never leased. A job out of budget is failed: for a step's worker the Supervisor hears of it
as ``WORKER_LOST`` and decides; for the Supervisor's own job the run is marked failed.

A job that can never be delivered again (it keeps no event, or one no longer valid) is given
up at once and its run failed with why, rather than tried again at every sweep.
"""

import logging
from typing import Any, cast

from pydantic import ValidationError

from planstream.domain.errors import EventRejected, PermanentError, RecordMissing
from planstream.domain.events import ServiceName, StepEvent
from planstream.domain.rules import WORKER_LOST
from planstream.domain.wire import describe_validation_error
from planstream.ports import JobLeases
from planstream.services.runtime import Runtime
from planstream.services.upstream import publish_failure
from topics import by_name

__all__ = ["Sweeper"]

log = logging.getLogger(__name__)


class Sweeper:
    """One sweep at a time re-drives or fails every job nobody works on."""

    def __init__(self, runtime: Runtime, leases: JobLeases) -> None:
        self._rt = runtime
        self._leases = leases

    async def sweep(self) -> int:
        """Handle the jobs nobody works on; returns how many."""
        settings = self._rt.settings
        expired = await self._leases.expired(settings.lease_s, settings.sweeper_batch)
        for job in expired:
            try:
                try:
                    await self._handle(job)
                except PermanentError as exc:  # it can never be re-driven: give it up, once
                    await self._abandon(job, exc)
            except Exception:  # one bad job must not stop the others' re-drives
                log.exception(
                    "could not re-drive a job",
                    extra={k: job[k] for k in ("job_id", "run_id", "step_id", "attempt")},
                )
        return len(expired)

    async def _handle(self, job: dict[str, Any]) -> None:
        if "topic" not in job["payload_ref"]:
            raise RecordMissing(f"job {job['job_id']} keeps no event to deliver again")
        try:
            spec = by_name(job["payload_ref"]["topic"])
            assert spec.value_model is not None
            event = spec.value_model.model_validate(job["payload_ref"]["event"])
        except KeyError as exc:
            raise RecordMissing(f"job {job['job_id']} keeps no deliverable event ({exc})") from None
        except ValidationError as exc:
            problem = describe_validation_error(exc)
            raise EventRejected(f"job {job['job_id']} keeps an invalid event: {problem}") from None
        assert isinstance(event, StepEvent)
        fields = {
            "job_id": job["job_id"],
            "run_id": job["run_id"],
            "step_id": job["step_id"],
            "attempt": job["attempt"],
            "job_service": job["service"],  # the job's; the line's ``service`` is the sweeper
        }
        never_leased = job["status"] == "pending"
        spent = job["redrives"] if never_leased else job["attempts"]
        if spent < job["max_attempts"]:
            await self._rt.publisher.publish(spec, event)
            what = "a job never leased" if never_leased else "a job whose lease expired"
            log.warning("re-drove %s", what, extra=fields)
            return
        if never_leased:
            reason = f"no worker took it after {spent} re-drives"
        else:
            reason = f"the lease expired on all {spent} deliveries"
        if not await self._leases.give_up(job["job_id"], job["lease_epoch"], reason):
            return  # its worker came back and finished it meanwhile
        log.error("gave up a job: %s", reason, extra=fields)
        if job["service"] == "supervisor":
            await self._rt.repo.fail_run(job["run_id"], f"the Supervisor's job {reason}")
        else:
            failure = WORKER_LOST.failure(f"{job['service']}: {reason}")
            service = cast(ServiceName, job["service"])
            await publish_failure(self._rt, event, service, failure, job["job_id"])

    async def _abandon(self, job: dict[str, Any], error: PermanentError) -> None:
        """Fail a job nothing can deliver again, and its run, which cannot go on without it."""
        reason = f"cannot be re-driven: {error}"
        if not await self._leases.give_up(job["job_id"], job["lease_epoch"], reason):
            return  # its worker came back and finished it meanwhile
        log.error(
            "gave up a job: %s",
            reason,
            extra={k: job[k] for k in ("job_id", "run_id", "step_id", "attempt")},
        )
        await self._rt.repo.fail_run(job["run_id"], f"the {job['service']} job {reason}")
