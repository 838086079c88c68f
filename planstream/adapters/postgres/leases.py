"""Job leases with fencing (asyncpg): take, renew, finish, and find the ones that expired.

A job is leased to one worker until ``lease_expires_at``; each take-over bumps
``lease_epoch``, and every write of the job's outcome presents its epoch, so a worker that
resumes after its lease expired (a zombie) is refused, counted and logged.
"""

from typing import Any, cast

import asyncpg

from planstream.domain.errors import PermanentError
from planstream.domain.records import Lease, LeaseRefusal, NewJob, Run

__all__ = ["JobLeases"]

# Create the job, or take over its lease when nobody holds it, it expired, or we already hold
# it; never a job that finished or ran out of deliveries. One statement, so two workers racing
# for the same job cannot both win. Every take-over bumps the fencing epoch. ``previous`` is who
# held the job when the statement began: another worker means a take-over of an expired lease.
# A delivery is counted when the job comes to a worker (first, after a crash, a take-over or a
# re-drive), not when its holder tries again inside its own lease (an in-process retry of a
# dependency's hiccup): otherwise a one-second S3 blip spent a step's whole budget (F13).
_JOB_COLUMNS = """
    job_id, run_id, step_id, attempt, service, idempotency_key, payload_ref, max_attempts,
    status, attempts, locked_by, locked_at, lease_expires_at, lease_epoch"""
_TAKE_OVER = """
ON CONFLICT (idempotency_key) DO UPDATE SET
    status = 'running',
    payload_ref = CASE WHEN j.payload_ref ? 'topic' THEN j.payload_ref
                       ELSE EXCLUDED.payload_ref END,
    attempts = j.attempts + CASE WHEN j.locked_by = EXCLUDED.locked_by
                                  AND j.lease_expires_at >= now() THEN 0 ELSE 1 END,
    locked_by = EXCLUDED.locked_by,
    locked_at = now(),
    lease_expires_at = EXCLUDED.lease_expires_at,
    lease_epoch = j.lease_epoch + 1,
    updated_at = now()
WHERE j.status IN ('pending', 'running')
  AND (j.locked_by IS NULL OR j.lease_expires_at < now() OR j.locked_by = EXCLUDED.locked_by)
  AND (j.attempts < j.max_attempts
       OR j.locked_by = EXCLUDED.locked_by AND j.lease_expires_at >= now())"""

_ACQUIRE = (
    "WITH previous AS (SELECT locked_by FROM pipeline_jobs WHERE idempotency_key = $6)"
    f"\nINSERT INTO pipeline_jobs AS j ({_JOB_COLUMNS})"
    "\nVALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
    " 'running', 1, $9, now(), now() + make_interval(secs => $10), 1)"
    f"{_TAKE_OVER}"
    "\nRETURNING job_id, lease_epoch, attempts, (SELECT locked_by FROM previous) AS previous_holder"
)

# The same lease, and the run the job belongs to, in one round trip: the job is only created or
# taken when the run exists (no run: no row, and no job touched). The run and the job's state
# before the statement (who held it, and why a refusal) come from the statement's snapshot,
# which is what a separate read just before would have seen.
_ACQUIRE_WITH_RUN = (
    "WITH run AS (SELECT run_id, upload_id, ratio, quality_post_step4, request_text, status,"
    " current_step, owner FROM pipeline_runs WHERE run_id = $2),"
    "\nbefore AS (SELECT locked_by, status, attempts, max_attempts FROM pipeline_jobs"
    " WHERE idempotency_key = $6),"
    f"\nlease AS (INSERT INTO pipeline_jobs AS j ({_JOB_COLUMNS})"
    "\nSELECT $1::text, $2::text, $3::smallint, $4::smallint, $5::text, $6::text, $7::jsonb,"
    " $8::integer, 'running', 1, $9::text, now(), now() + make_interval(secs => $10::float8), 1"
    " FROM run"
    f"{_TAKE_OVER}"
    "\nRETURNING job_id, lease_epoch, attempts)"
    "\nSELECT run.*, lease.job_id AS lease_job_id, lease.lease_epoch, lease.attempts AS deliveries,"
    " before.locked_by AS previous_holder, before.status AS job_status,"
    " before.attempts AS job_attempts, before.max_attempts AS job_max_attempts"
    "\nFROM run LEFT JOIN lease ON true LEFT JOIN before ON true"
)

# Record a job as pending (no lease, no delivery yet) when its event arrives; a job made
# earlier without its event (the ingress makes the first Image I/O job) gains the event.
_RECEIVE = """
INSERT INTO pipeline_jobs AS j (
    job_id, run_id, step_id, attempt, service, idempotency_key, payload_ref, max_attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (idempotency_key) DO UPDATE SET payload_ref = EXCLUDED.payload_ref, updated_at = now()
WHERE NOT j.payload_ref ? 'topic'
"""

_RENEW = """
UPDATE pipeline_jobs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
WHERE job_id = $1 AND lease_epoch = $2 AND status = 'running'
"""

# Record the outcome if the presented epoch is current; otherwise record the refused write.
# One statement (the refusal reads the job as the statement found it, untouched), one round trip.
_FINISH = """
WITH done AS (
    UPDATE pipeline_jobs SET
        status = $3, result_ref = $4, processing_time_ms = $5, last_error = $6,
        last_error_stack = $7, locked_by = NULL, lease_expires_at = NULL, result_epoch = $2,
        completed_at = CASE WHEN $3 = 'completed' THEN now() END, updated_at = now()
    WHERE job_id = $1 AND lease_epoch = $2 AND status = 'running'
    RETURNING job_id),
refused AS (
    INSERT INTO pipeline_stale_writes
        (job_id, presented_epoch, current_epoch, worker_id, attempted)
    SELECT job_id, $2, lease_epoch, $8, $9 FROM pipeline_jobs
    WHERE job_id = $1 AND NOT EXISTS (SELECT 1 FROM done))
SELECT count(*) FROM done
"""

# Jobs nobody works on: leases that expired, and jobs received but never leased for a lease
# period (their event was lost between the receipt and a worker). Each is re-driven at most
# once per lease period, oldest first; SKIP LOCKED lets two sweepers share the work without
# handing out a job twice.
_EXPIRED = """
SELECT job_id, run_id, step_id, attempt, service, status, attempts, max_attempts, lease_epoch,
       redrives, payload_ref
FROM pipeline_jobs
WHERE (status = 'running' AND lease_expires_at < now()
       OR status = 'pending' AND locked_by IS NULL AND payload_ref ? 'topic'
          AND updated_at < now() - make_interval(secs => $1))
  AND (redriven_at IS NULL OR redriven_at < now() - make_interval(secs => $1))
ORDER BY coalesce(lease_expires_at, updated_at)
LIMIT $2
FOR UPDATE SKIP LOCKED
"""


_RUN_FIELDS = (
    "run_id",
    "upload_id",
    "ratio",
    "quality_post_step4",
    "request_text",
    "status",
    "current_step",
    "owner",
)


def _refusal(status: str, attempts: int, limit: int) -> LeaseRefusal:
    """Why a job that exists was not leased: its end, its spent deliveries, or its holder."""
    if status in ("completed", "failed", "blocked"):
        return cast(LeaseRefusal, status)
    return "exhausted" if attempts >= limit else "leased"


class JobLeases:
    """The lease statements over one pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        """Lease the job (creating it if new), or say why not; PermanentError if its run does
        not exist (an event about an unknown run is dead-lettered, not retried)."""
        try:
            row = await self._pool.fetchrow(_ACQUIRE, *job.row(), worker_id, float(lease_s))
        except asyncpg.ForeignKeyViolationError:
            raise PermanentError(f"run {job.run_id} does not exist") from None
        if row is not None:
            previous = row["previous_holder"]
            taken_over = previous is not None and previous != worker_id
            return Lease(row["job_id"], row["lease_epoch"], row["attempts"], taken_over)
        status, attempts, limit = await self._pool.fetchrow(
            "SELECT status, attempts, max_attempts FROM pipeline_jobs WHERE idempotency_key = $1",
            job.idempotency_key,
        )
        return _refusal(status, attempts, limit)

    async def acquire_with_run(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> tuple[Run, Lease | LeaseRefusal] | None:
        """``acquire``, and the job's run, in one round trip; None (and no job touched) when
        the run does not exist."""
        row = await self._pool.fetchrow(_ACQUIRE_WITH_RUN, *job.row(), worker_id, float(lease_s))
        if row is None:
            return None
        run = Run(**{field: row[field] for field in _RUN_FIELDS})
        if row["lease_job_id"] is not None:
            previous = row["previous_holder"]
            taken_over = previous is not None and previous != worker_id
            lease = Lease(row["lease_job_id"], row["lease_epoch"], row["deliveries"], taken_over)
            return run, lease
        if row["job_status"] is None:  # made by another worker since the statement's snapshot
            return run, "leased"
        return run, _refusal(row["job_status"], row["job_attempts"], row["job_max_attempts"])

    async def receive(self, job: NewJob) -> bool:
        """Record the job as pending (a no-op if it exists); False if the run is unknown."""
        try:
            await self._pool.execute(_RECEIVE, *job.row())
        except asyncpg.ForeignKeyViolationError:
            return False
        return True

    async def renew(self, lease: Lease, lease_s: float) -> bool:
        """Extend the lease; False when it is no longer ours (taken over, or finished)."""
        result = await self._pool.execute(_RENEW, lease.job_id, lease.epoch, float(lease_s))
        return cast(str, result) == "UPDATE 1"

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
        finished = await self._pool.fetchval(
            _FINISH,
            lease.job_id,
            lease.epoch,
            status,
            result_ref,
            processing_time_ms,
            error,
            stack,
            worker_id,
            f"finish:{status}",
        )
        return cast(int, finished) == 1

    async def expired(self, redrive_after_s: float, limit: int) -> list[dict[str, Any]]:
        """Jobs nobody works on (lease expired, or received and never leased), claimed for a
        re-drive: marked in the same transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_EXPIRED, float(redrive_after_s), limit)
            ids = [row["job_id"] for row in rows]
            await conn.execute(
                "UPDATE pipeline_jobs SET redriven_at = now(), redrives = redrives + 1"
                " WHERE job_id = ANY($1)",
                ids,
            )
        return [dict(row) for row in rows]

    async def give_up(self, job_id: str, epoch: int, reason: str) -> bool:
        """Fail a job that ran out of deliveries (or re-drives), fencing off its last holder."""
        result = await self._pool.execute(
            "UPDATE pipeline_jobs SET status = 'failed', last_error = $3, locked_by = NULL,"
            " lease_expires_at = NULL, lease_epoch = lease_epoch + 1, updated_at = now()"
            " WHERE job_id = $1 AND lease_epoch = $2 AND status IN ('pending', 'running')",
            job_id,
            epoch,
            reason,
        )
        return cast(str, result) == "UPDATE 1"
