"""A service's hold on its job for one step attempt: lease it, then record how it ended."""

import logging
import time
from dataclasses import dataclass
from typing import Any

from planstream.adapters.repository import Repository
from planstream.events import StepEvent
from planstream.ids import new_id
from planstream.records import Lease
from planstream.settings import Settings

__all__ = ["Jobs", "StepWork"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepWork:
    """A job a service holds: its lease and when the work started (for processing_time_ms)."""

    lease: Lease
    started: float


class Jobs:
    """Leases and finishes one service's jobs; the job key is ``<service>:<step key>``."""

    def __init__(self, repo: Repository, settings: Settings, service: str, worker_id: str) -> None:
        self._repo = repo
        self._settings = settings
        self.service = service
        self.worker_id = worker_id

    async def begin(self, event: StepEvent, payload_ref: dict[str, Any]) -> StepWork | None:
        """Lease the job for the step attempt ``event`` names, or None if it is not ours to do."""
        started = time.monotonic()
        lease = await self._repo.acquire_job(
            job_id=new_id("job"),
            run_id=event.run_id,
            step_id=event.step_id,
            attempt=event.attempt,
            service=self.service,
            idempotency_key=f"{self.service}:{event.idempotency_key}",
            payload_ref=payload_ref,
            max_attempts=self._settings.max_attempts,
            worker_id=self.worker_id,
            lease_s=self._settings.lease_s,
        )
        if not isinstance(lease, Lease):
            log.info(
                "%s skipped a step: its job is %s",
                self.service,
                lease,
                extra={"run_id": event.run_id, "step_id": event.step_id, "attempt": event.attempt},
            )
            return None
        return StepWork(lease, started)

    async def finish(
        self,
        work: StepWork,
        status: str,
        result_ref: dict[str, Any],
        *,
        error: str | None = None,
        stack: str | None = None,
    ) -> bool:
        """Record the outcome with the lease's epoch; False (logged) when the lease went stale."""
        accepted = await self._repo.finish_job(
            work.lease,
            status=status,
            result_ref=result_ref,
            processing_time_ms=int((time.monotonic() - work.started) * 1000),
            error=error,
            stack=stack,
        )
        if not accepted:
            log.warning(
                "stale lease: the job's result was refused",
                extra={"job_id": work.lease.job_id, "epoch": work.lease.epoch},
            )
        return accepted
