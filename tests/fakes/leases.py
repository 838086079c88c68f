"""Job leases in memory, statement for statement as ``adapters/postgres/leases.py`` decides them.

Each method mirrors one SQL statement of the real adapter: the same WHERE clauses, the same
columns set, the same refusals ("completed" | "failed" | "blocked" | "leased" | "exhausted"), the
same fencing by epoch. ``now()`` is the shared fake clock, so a test expires a lease by moving it.
"""

from datetime import datetime, timedelta
from typing import Any, cast

from planstream.domain.errors import PermanentError
from planstream.domain.records import Lease, LeaseRefusal, NewJob, Run
from tests.fakes.database import FakeDatabase, FakeIntegrityError, JobRow, StaleWrite, jsonb

__all__ = ["FakeJobLeases"]


def _has_topic(payload_ref: dict[str, Any]) -> bool:
    """``payload_ref ? 'topic'``."""
    return "topic" in payload_ref


class FakeJobLeases:
    """``JobLeases`` over a ``FakeDatabase``."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _after(self, seconds: float) -> datetime:
        return self._db.now() + timedelta(seconds=seconds)

    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        """Lease the job (creating it if new), or say why not; PermanentError if its run does
        not exist."""
        now = self._db.now()
        row = self._db.job_by_key(job.idempotency_key)
        if row is None:
            if job.run_id not in self._db.runs:
                raise PermanentError(f"run {job.run_id} does not exist")
            row = self._insert(job)
            row.status, row.attempts, row.lease_epoch = "running", 1, 1
            row.locked_by, row.locked_at, row.lease_expires_at = (
                worker_id,
                now,
                self._after(lease_s),
            )
            return Lease(row.job_id, row.lease_epoch, row.attempts)
        free = (
            row.locked_by is None
            or (row.lease_expires_at is not None and row.lease_expires_at < now)
            or row.locked_by == worker_id
        )
        holding = (
            row.locked_by == worker_id
            and row.lease_expires_at is not None
            and row.lease_expires_at >= now
        )  # a retry inside its own lease: the same delivery
        budget_left = row.attempts < row.max_attempts or holding
        if row.status in ("pending", "running") and free and budget_left:
            taken_over = row.locked_by is not None and row.locked_by != worker_id
            row.status = "running"
            if not _has_topic(row.payload_ref):
                row.payload_ref = jsonb(job.payload_ref)
            row.attempts += 0 if holding else 1
            row.locked_by, row.locked_at, row.lease_expires_at = (
                worker_id,
                now,
                self._after(lease_s),
            )
            row.lease_epoch += 1
            row.updated_at = now
            return Lease(row.job_id, row.lease_epoch, row.attempts, taken_over)
        if row.status in ("completed", "failed", "blocked"):
            return cast(LeaseRefusal, row.status)
        return "exhausted" if row.attempts >= row.max_attempts else "leased"

    async def acquire_with_run(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> tuple[Run, Lease | LeaseRefusal] | None:
        """``acquire`` and the job's run; None, with no job touched, when the run does not
        exist (the statement's insert only runs for a run it found)."""
        run = self._db.run(job.run_id)
        if run is None:
            return None
        return run, await self.acquire(job, worker_id=worker_id, lease_s=lease_s)

    async def receive(self, job: NewJob) -> bool:
        """Record the job as pending (a no-op if it exists); False if the run is unknown."""
        row = self._db.job_by_key(job.idempotency_key)
        if row is None:
            if job.run_id not in self._db.runs:
                return False
            self._insert(job)
        elif not _has_topic(row.payload_ref):
            row.payload_ref = jsonb(job.payload_ref)
            row.updated_at = self._db.now()
        return True

    async def renew(self, lease: Lease, lease_s: float) -> bool:
        """Extend the lease; False when it is no longer ours (taken over, or finished)."""
        row = self._current(lease.job_id, lease.epoch, ("running",))
        if row is None:
            return False
        row.lease_expires_at = self._after(lease_s)
        row.updated_at = self._db.now()
        return True

    async def finish(
        self,
        lease: Lease,
        worker_id: str,
        *,
        status: str,
        result_ref: dict[str, Any] | None,
        processing_time_ms: int,
        error: str | None = None,
        stack: str | None = None,
    ) -> bool:
        """Record the outcome if ``lease`` is current; a stale epoch is refused and recorded."""
        now = self._db.now()
        row = self._current(lease.job_id, lease.epoch, ("running",))
        if row is None:
            held = self._db.jobs.get(lease.job_id)
            if held is not None:
                self._db.stale_writes.append(
                    StaleWrite(
                        lease.job_id,
                        lease.epoch,
                        held.lease_epoch,
                        worker_id,
                        f"finish:{status}",
                        now,
                    )
                )
            return False
        row.status = status
        row.result_ref = None if result_ref is None else jsonb(result_ref)
        row.processing_time_ms = processing_time_ms
        row.last_error, row.last_error_stack = error, stack
        row.locked_by, row.lease_expires_at = None, None
        row.result_epoch = lease.epoch
        row.completed_at = now if status == "completed" else None
        row.updated_at = now
        return True

    async def expired(self, redrive_after_s: float, limit: int) -> list[dict[str, Any]]:
        """Jobs nobody works on (lease expired, or received and never leased), claimed for a
        re-drive: marked at once."""
        now = self._db.now()
        period = timedelta(seconds=redrive_after_s)

        def forgotten(row: JobRow) -> bool:
            lapsed = (
                row.status == "running"
                and row.lease_expires_at is not None
                and row.lease_expires_at < now
            )
            unleased = (
                row.status == "pending"
                and row.locked_by is None
                and _has_topic(row.payload_ref)
                and row.updated_at < now - period
            )
            not_lately = row.redriven_at is None or row.redriven_at < now - period
            return (lapsed or unleased) and not_lately

        found = sorted(
            (row for row in self._db.jobs.values() if forgotten(row)),
            key=lambda row: row.lease_expires_at or row.updated_at,
        )[:limit]
        claimed = [
            {
                "job_id": row.job_id,
                "run_id": row.run_id,
                "step_id": row.step_id,
                "attempt": row.attempt,
                "service": row.service,
                "status": row.status,
                "attempts": row.attempts,
                "max_attempts": row.max_attempts,
                "lease_epoch": row.lease_epoch,
                "redrives": row.redrives,
                "payload_ref": jsonb(row.payload_ref),
            }
            for row in found
        ]
        for row in found:
            row.redriven_at = now
            row.redrives += 1
        return claimed

    async def give_up(self, job_id: str, epoch: int, reason: str) -> bool:
        """Fail a job that ran out of deliveries (or re-drives), fencing off its last holder."""
        row = self._current(job_id, epoch, ("pending", "running"))
        if row is None:
            return False
        row.status, row.last_error = "failed", reason
        row.locked_by, row.lease_expires_at = None, None
        row.lease_epoch += 1
        row.updated_at = self._db.now()
        return True

    def _current(self, job_id: str, epoch: int, statuses: tuple[str, ...]) -> JobRow | None:
        """The job if ``epoch`` is its current epoch and its status one of ``statuses``."""
        row = self._db.jobs.get(job_id)
        if row is None or row.lease_epoch != epoch or row.status not in statuses:
            return None
        return row

    def _insert(self, job: NewJob) -> JobRow:
        now = self._db.now()
        if job.job_id in self._db.jobs:
            raise FakeIntegrityError(f"job id {job.job_id} is taken (primary key)")
        row = JobRow(
            job_id=job.job_id,
            run_id=job.run_id,
            step_id=job.step_id,
            attempt=job.attempt,
            service=job.service,
            idempotency_key=job.idempotency_key,
            payload_ref=jsonb(job.payload_ref),
            max_attempts=job.max_attempts,
            created_at=now,
            updated_at=now,
        )
        self._db.jobs[row.job_id] = row
        return row
