"""Broken job leases, one fault each, that the leases suite must catch."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

from planstream.domain.records import Lease, LeaseRefusal, NewJob, Run
from tests.conformance.fake_harnesses import FakeLeasesHarness
from tests.conformance.leases import JobLeasesContract
from tests.conformance.mutants import breaks
from tests.fakes import FakeJobLeases

__all__: list[str] = []

S = JobLeasesContract
H = FakeLeasesHarness


@breaks(
    S,
    H,
    "test_a_new_job_is_created_and_leased_at_epoch_one",
    "test_the_holder_takes_its_job_again_with_a_new_epoch",
    "test_receive_records_a_pending_job_without_a_lease",
)
class CountsOneDeliveryTooMany(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        lease = await super().acquire(job, worker_id=worker_id, lease_s=lease_s)
        return (
            replace(lease, deliveries=lease.deliveries + 1) if isinstance(lease, Lease) else lease
        )


@breaks(
    S,
    H,
    "test_a_held_job_is_refused_as_leased",
    "test_renew_keeps_the_job_from_being_taken_over",
)
class IgnoresTheHolder(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        row = self._db.job_by_key(job.idempotency_key)
        if row is not None and row.status == "running":
            row.locked_by = None
        return await super().acquire(job, worker_id=worker_id, lease_s=lease_s)


@breaks(S, H, "test_the_holder_takes_its_job_again_with_a_new_epoch")
class RefusesItsOwnHolder(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        row = self._db.job_by_key(job.idempotency_key)
        if row is not None and row.status == "running" and row.locked_by == worker_id:
            return "leased"
        return await super().acquire(job, worker_id=worker_id, lease_s=lease_s)


@breaks(
    S,
    H,
    "test_an_expired_lease_is_taken_over_with_a_new_epoch",
    "test_a_stale_epoch_cannot_finish_and_is_recorded",
    "test_renew_after_a_takeover_is_refused",
    "test_deliveries_run_out_as_exhausted",
)
class LeasesNeverExpire(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        row = self._db.job_by_key(job.idempotency_key)
        if row is not None and row.status == "running" and row.locked_by not in (None, worker_id):
            return "leased"
        return await super().acquire(job, worker_id=worker_id, lease_s=lease_s)


@breaks(S, H, "test_a_stale_epoch_cannot_finish_and_is_recorded")
class AcceptsStaleEpochs(FakeJobLeases):
    async def finish(self, lease: Lease, worker_id: str, **outcome: Any) -> bool:
        row = self._db.jobs.get(lease.job_id)
        if row is not None:
            lease = replace(lease, epoch=row.lease_epoch)
        return await super().finish(lease, worker_id, **outcome)


@breaks(S, H, "test_renew_after_a_takeover_is_refused")
class RenewsAnyEpoch(FakeJobLeases):
    async def renew(self, lease: Lease, lease_s: float) -> bool:
        row = self._db.jobs.get(lease.job_id)
        if row is not None:
            lease = replace(lease, epoch=row.lease_epoch)
        return await super().renew(lease, lease_s)


@breaks(S, H, "test_renew_keeps_the_job_from_being_taken_over")
class RenewsWithoutExtending(FakeJobLeases):
    async def renew(self, lease: Lease, lease_s: float) -> bool:
        return self._current(lease.job_id, lease.epoch, ("running",)) is not None


@breaks(
    S,
    H,
    "test_a_finished_job_is_refused_by_its_status",
    "test_give_up_fails_the_job_and_fences_its_holder",
)
class CallsFinishedJobsLeased(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        lease = await super().acquire(job, worker_id=worker_id, lease_s=lease_s)
        return "leased" if lease in ("completed", "failed", "blocked") else lease


@breaks(S, H, "test_a_job_finishes_once")
class FinishesTwice(FakeJobLeases):
    async def finish(self, lease: Lease, worker_id: str, **outcome: Any) -> bool:
        row = self._db.jobs.get(lease.job_id)
        if row is not None and row.lease_epoch == lease.epoch:
            row.status = "running"
        return await super().finish(lease, worker_id, **outcome)


@breaks(S, H, "test_deliveries_run_out_as_exhausted")
class DeliversForever(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        row = self._db.job_by_key(job.idempotency_key)
        if row is not None:
            row.max_attempts = 99
        return await super().acquire(job, worker_id=worker_id, lease_s=lease_s)


@breaks(
    S,
    H,
    "test_receive_records_a_pending_job_without_a_lease",
    "test_expired_claims_a_received_job_nobody_leased",
)
class ReceivesNothing(FakeJobLeases):
    async def receive(self, job: NewJob) -> bool:
        return job.run_id in self._db.runs


@breaks(S, H, "test_receive_is_idempotent")
class ReceiptOverwritesTheEvent(FakeJobLeases):
    async def receive(self, job: NewJob) -> bool:
        received = await super().receive(job)
        row = self._db.job_by_key(job.idempotency_key)
        if row is not None:
            row.payload_ref = dict(job.payload_ref)
        return received


@breaks(S, H, "test_a_job_made_without_its_event_gains_it")
class LeaseOverwritesTheEvent(FakeJobLeases):
    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        lease = await super().acquire(job, worker_id=worker_id, lease_s=lease_s)
        if isinstance(lease, Lease):
            self._db.jobs[lease.job_id].payload_ref = dict(job.payload_ref)
        return lease


@breaks(S, H, "test_a_job_of_an_unknown_run_is_refused")
class TrustsUnknownRuns(FakeJobLeases):
    async def receive(self, job: NewJob) -> bool:
        return await super().receive(job) or True


@breaks(S, H, "test_expired_claims_a_lapsed_lease_once_per_period")
class RedrivesEveryCall(FakeJobLeases):
    async def expired(self, redrive_after_s: float, limit: int) -> list[dict[str, Any]]:
        for row in self._db.jobs.values():
            row.redriven_at = None
        return await super().expired(redrive_after_s, limit)


@breaks(S, H, "test_expired_claims_a_received_job_nobody_leased")
class ForgetsReceivedJobs(FakeJobLeases):
    async def expired(self, redrive_after_s: float, limit: int) -> list[dict[str, Any]]:
        found = await super().expired(redrive_after_s, limit)
        return [row for row in found if row["status"] == "running"]


@breaks(S, H, "test_expired_leaves_live_and_finished_jobs")
class RedrivesLiveLeases(FakeJobLeases):
    async def expired(self, redrive_after_s: float, limit: int) -> list[dict[str, Any]]:
        for row in self._db.jobs.values():
            if row.status == "running":
                row.lease_expires_at = self._db.now() - timedelta(seconds=1)
        return await super().expired(redrive_after_s, limit)


@breaks(S, H, "test_give_up_fails_the_job_and_fences_its_holder")
class GivesUpWithoutFencing(FakeJobLeases):
    async def give_up(self, job_id: str, epoch: int, reason: str) -> bool:
        given = await super().give_up(job_id, epoch, reason)
        if given:
            self._db.jobs[job_id].lease_epoch = epoch
        return given


@breaks(
    S,
    H,
    "test_the_holder_takes_its_job_again_with_a_new_epoch",
    "test_deliveries_run_out_as_exhausted",
)
class CountsTheHoldersRetry(FakeJobLeases):
    """The old rule (F13): a holder's retry inside its lease spends a delivery."""

    async def acquire(self, job: NewJob, *, worker_id: str, lease_s: float) -> Lease | LeaseRefusal:
        row = self._db.job_by_key(job.idempotency_key)
        now = self._db.now()
        holding = (
            row is not None
            and row.locked_by == worker_id
            and row.lease_expires_at is not None
            and row.lease_expires_at >= now
        )
        if holding and row is not None and row.attempts >= row.max_attempts:
            return "exhausted"
        lease = await super().acquire(job, worker_id=worker_id, lease_s=lease_s)
        if holding and row is not None and isinstance(lease, Lease):
            row.attempts += 1
            return replace(lease, deliveries=row.attempts)
        return lease


@breaks(S, H, "test_a_step_is_held_with_its_run_in_one_step")
class HoldsNoRun(FakeJobLeases):
    async def acquire_with_run(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> tuple[Run, Lease | LeaseRefusal] | None:
        await self.acquire(job, worker_id=worker_id, lease_s=lease_s)
        return None


@breaks(S, H, "test_a_step_is_held_with_its_run_in_one_step")
class ReadsTheRunWithoutTheLease(FakeJobLeases):
    async def acquire_with_run(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> tuple[Run, Lease | LeaseRefusal] | None:
        run = self._db.run(job.run_id)
        return None if run is None else (run, "leased")


@breaks(S, H, "test_a_step_of_an_unknown_run_is_held_by_nobody")
class MakesTheJobOfAnUnknownRun(FakeJobLeases):
    async def acquire_with_run(
        self, job: NewJob, *, worker_id: str, lease_s: float
    ) -> tuple[Run, Lease | LeaseRefusal] | None:
        if self._db.run(job.run_id) is None:
            self._insert(job)
        return await super().acquire_with_run(job, worker_id=worker_id, lease_s=lease_s)
