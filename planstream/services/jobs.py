"""A service's hold on its job for one step attempt: lease it, keep it, record how it ended."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from planstream.domain.errors import PlanstreamError
from planstream.domain.events import StepEvent
from planstream.domain.ids import new_id
from planstream.domain.records import Lease, LeaseRefusal, NewJob, Run
from planstream.ports import JobLeases
from planstream.services import metrics
from planstream.services.retrying import wait_out_outages
from planstream.settings import Settings
from topics import TopicSpec

__all__ = ["JobHeldElsewhere", "Jobs", "StepWork"]

log = logging.getLogger(__name__)


class JobHeldElsewhere(PlanstreamError):
    """Another worker holds the job's lease: this delivery does nothing, and must not be marked
    done (the sweeper's re-drive after that worker dies has to run).

    Neither retryable (retrying at once would find the lease still held) nor permanent (the
    event is fine and must not be dead-lettered), so it sits directly under PlanstreamError."""


class StepWork:
    """A leased job; ``async with`` it to renew the lease while the work runs.

    A renewal that meets a PostgreSQL outage (``outages``) is tried again at the next beat: the
    work goes on, and if the outage outlasts the lease, another worker may take the job over and
    this one's result is refused by its epoch. The heartbeat never fails the work it keeps."""

    def __init__(
        self,
        lease: Lease,
        leases: JobLeases,
        lease_s: float,
        outages: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.lease = lease
        self.started = time.monotonic()
        self._leases = leases
        self._lease_s = lease_s
        self._outages = outages
        self._heartbeat: asyncio.Task[None] | None = None

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                renewed = await self._leases.renew(self.lease, self._lease_s)
            except self._outages as exc:
                log.warning(
                    "lease not renewed (%s); trying again at the next beat",
                    exc,
                    extra={"job_id": self.lease.job_id, "epoch": self.lease.epoch},
                )
                continue
            if not renewed:
                log.warning(
                    "lease lost: the job was taken over; its result will be refused",
                    extra={"job_id": self.lease.job_id, "epoch": self.lease.epoch},
                )
                return

    async def __aenter__(self) -> "StepWork":
        self._heartbeat = asyncio.create_task(self._renew(), name=f"lease:{self.lease.job_id}")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat


class Jobs:
    """Leases and finishes one service's jobs; the job key is ``<service>:<step key>``.

    ``outages`` are the errors that mean PostgreSQL is down (``Runtime.outage_errors``); the
    lease's renewals and the finish wait them out in place (``sleep`` is how they wait)."""

    def __init__(
        self,
        leases: JobLeases,
        settings: Settings,
        service: str,
        worker_id: str,
        *,
        outages: tuple[type[BaseException], ...] = (),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._leases = leases
        self._settings = settings
        self.service = service
        self.worker_id = worker_id
        self._outages = outages
        self._sleep = sleep

    def key(self, event: StepEvent) -> str:
        """The job's idempotency key: one job per service and step attempt."""
        return f"{self.service}:{event.idempotency_key}"

    def new_job(self, event: StepEvent, source: TopicSpec) -> NewJob:
        """The job for the step attempt ``event`` names; it keeps the event and its topic, so
        the sweeper can deliver it again."""
        return NewJob(
            job_id=new_id("job"),
            run_id=event.run_id,
            step_id=event.step_id,
            attempt=event.attempt,
            service=self.service,
            idempotency_key=self.key(event),
            payload_ref={"topic": source.name, "event": event.model_dump(mode="json")},
            max_attempts=self._settings.max_attempts,
        )

    async def receive(self, event: StepEvent, source: TopicSpec) -> bool:
        """Record the job as pending before its event's offset may be committed.

        From then on PostgreSQL, not the consumer offset, holds the work: if this process dies
        (or the event is dropped) before a worker leases the job, the sweeper delivers the kept
        event again. False when the event names no known run (nothing to record).
        """
        return await self._leases.receive(self.new_job(event, source))

    async def begin(self, event: StepEvent, source: TopicSpec) -> StepWork | None:
        """Lease the job for the step attempt ``event`` names, or None if it is not ours to do
        (a worker dying with the lease leaves it to the sweeper)."""
        lease = await self._leases.acquire(
            self.new_job(event, source),
            worker_id=self.worker_id,
            lease_s=self._settings.lease_s,
        )
        return self._work(event, lease)

    async def begin_with_run(
        self, event: StepEvent, source: TopicSpec
    ) -> tuple[Run, StepWork | None] | None:
        """``begin``, and the step's run read in the same round trip; None when the run does
        not exist (and no job was touched)."""
        taken = await self._leases.acquire_with_run(
            self.new_job(event, source),
            worker_id=self.worker_id,
            lease_s=self._settings.lease_s,
        )
        if taken is None:
            return None
        run, lease = taken
        return run, self._work(event, lease)

    def _work(self, event: StepEvent, lease: Lease | LeaseRefusal) -> StepWork | None:
        """The work a lease allows; None (logged) for a job that is not ours to do, and
        JobHeldElsewhere while another worker holds it."""
        if lease == "leased":
            raise JobHeldElsewhere(f"{self.service}: another worker holds {event.idempotency_key}")
        if not isinstance(lease, Lease):
            log.info(
                "%s skipped a step: its job is %s",
                self.service,
                lease,
                extra={"run_id": event.run_id, "step_id": event.step_id, "attempt": event.attempt},
            )
            return None
        if lease.taken_over:
            metrics.count_takeover(self.service)
        return StepWork(lease, self._leases, self._settings.lease_s, self._outages)

    async def finish(
        self,
        work: StepWork,
        status: str,
        result_ref: dict[str, Any],
        *,
        error: str | None = None,
        stack: str | None = None,
    ) -> bool:
        """Record the outcome with the lease's epoch; False (logged) when the lease went stale.

        The step's output is published by now, so a PostgreSQL outage is waited out here, in
        place: handing it up would do the whole step again, publish its output a second time
        and make its model calls again. An outage longer than the lease lets another worker
        take the job over; this write is then refused by its epoch, as any zombie's."""
        elapsed_ms = int((time.monotonic() - work.started) * 1000)
        accepted = await wait_out_outages(
            lambda: self._leases.finish(
                work.lease,
                self.worker_id,
                status=status,
                result_ref=result_ref,
                processing_time_ms=elapsed_ms,
                error=error,
                stack=stack,
            ),
            self._outages,
            self._settings,
            self.service,
            "finishing a job",
            self._sleep,
        )
        if not accepted:
            metrics.count_stale_write(self.service)
            log.warning(
                "stale lease: the job's result was refused",
                extra={"job_id": work.lease.job_id, "epoch": work.lease.epoch},
            )
        return accepted
