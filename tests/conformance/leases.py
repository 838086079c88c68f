"""What the services rely on from job leases: one holder at a time, fencing by epoch, expiry,
idempotent receipt, and the refusals that tell a worker why it may not run a job."""

from dataclasses import replace
from typing import Any, Protocol

import pytest

from planstream.domain.errors import PermanentError
from planstream.domain.ids import new_id
from planstream.domain.records import Lease, NewJob
from planstream.ports import JobLeases

__all__ = ["HELD_S", "SHORT_S", "JobLeasesContract", "LeasesHarness", "new_job"]

HELD_S = 60.0
"""A lease that outlives any test."""
SHORT_S = 0.3
"""A lease a test lets lapse with ``elapse(LAPSE_S)``."""
LAPSE_S = 0.7
REDRIVE_S = 0.5


class LeasesHarness(Protocol):
    @property
    def leases(self) -> JobLeases: ...

    async def new_run(self) -> str:
        """A run (and its upload) that jobs may belong to; its id."""

    async def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass on the clock the leases read."""

    async def job(self, job_id: str) -> dict[str, Any]:
        """The job's row: status, attempts, lease_epoch, result_epoch, locked_by, payload_ref,
        result_ref, last_error, redrives."""

    async def stale_writes(self, job_id: str) -> list[tuple[int, int, str, str]]:
        """Refused writes of the job: (presented epoch, current epoch, worker, attempted)."""


def new_job(run_id: str, *, max_attempts: int = 3, topic: str | None = "t.requested") -> NewJob:
    """A job of a fresh step attempt; ``topic`` None makes one kept without its event."""
    key = f"image_io:{run_id}:s0:a{new_id('evt')[4:12]}"
    ref: dict[str, Any] = {} if topic is None else {"topic": topic, "event": {"run_id": run_id}}
    return NewJob(new_id("job"), run_id, 0, 1, "image_io", key, ref, max_attempts)


async def _finish(leases: JobLeases, lease: Lease, worker: str, status: str = "completed") -> bool:
    return await leases.finish(
        lease, worker, status=status, result_ref={"n": 1}, processing_time_ms=5
    )


async def _own(leases: JobLeases, ids: set[str], redrive_s: float = REDRIVE_S) -> list[Any]:
    """The jobs of this test that ``expired`` claims (the real table holds other tests' too)."""
    return [row for row in await leases.expired(redrive_s, 1_000) if row["job_id"] in ids]


class JobLeasesContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_a_new_job_is_created_and_leased_at_epoch_one(
        self, harness: LeasesHarness
    ) -> None:
        job = new_job(await harness.new_run())
        lease = await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)
        assert lease == Lease(job.job_id, 1, 1)
        row = await harness.job(job.job_id)
        assert (row["status"], row["attempts"], row["locked_by"]) == ("running", 1, "a")

    async def test_a_held_job_is_refused_as_leased(self, harness: LeasesHarness) -> None:
        job = new_job(await harness.new_run())
        await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)
        again = replace(job, job_id=new_id("job"))
        assert await harness.leases.acquire(again, worker_id="b", lease_s=HELD_S) == "leased"
        assert (await harness.job(job.job_id))["locked_by"] == "a"

    async def test_the_holder_takes_its_job_again_with_a_new_epoch(
        self, harness: LeasesHarness
    ) -> None:
        """Inside its lease the holder's retry is the same delivery: a new epoch (its earlier
        try is fenced off), no delivery spent; once its lease expired, a new delivery."""
        job = new_job(await harness.new_run())
        await harness.leases.acquire(job, worker_id="a", lease_s=SHORT_S)
        assert await harness.leases.acquire(job, worker_id="a", lease_s=SHORT_S) == Lease(
            job.job_id, 2, 1
        )
        await harness.elapse(LAPSE_S)
        assert await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S) == Lease(
            job.job_id, 3, 2
        )

    async def test_an_expired_lease_is_taken_over_with_a_new_epoch(
        self, harness: LeasesHarness
    ) -> None:
        job = new_job(await harness.new_run())
        await harness.leases.acquire(job, worker_id="a", lease_s=SHORT_S)
        await harness.elapse(LAPSE_S)
        taken = await harness.leases.acquire(job, worker_id="b", lease_s=HELD_S)
        assert taken == Lease(job.job_id, 2, 2, taken_over=True)
        assert (await harness.job(job.job_id))["locked_by"] == "b"

    async def test_a_stale_epoch_cannot_finish_and_is_recorded(
        self, harness: LeasesHarness
    ) -> None:
        leases = harness.leases
        job = new_job(await harness.new_run())
        old = await leases.acquire(job, worker_id="a", lease_s=SHORT_S)
        await harness.elapse(LAPSE_S)
        new = await leases.acquire(job, worker_id="b", lease_s=HELD_S)
        assert isinstance(old, Lease) and isinstance(new, Lease)
        assert await _finish(leases, old, "a") is False
        row = await harness.job(job.job_id)
        assert (row["status"], row["locked_by"], row["result_epoch"]) == ("running", "b", None)
        assert await harness.stale_writes(job.job_id) == [(1, 2, "a", "finish:completed")]
        assert await _finish(leases, new, "b") is True
        row = await harness.job(job.job_id)
        assert (row["status"], row["result_epoch"], row["result_ref"]) == ("completed", 2, {"n": 1})

    async def test_renew_after_a_takeover_is_refused(self, harness: LeasesHarness) -> None:
        leases = harness.leases
        job = new_job(await harness.new_run())
        old = await leases.acquire(job, worker_id="a", lease_s=SHORT_S)
        await harness.elapse(LAPSE_S)
        new = await leases.acquire(job, worker_id="b", lease_s=HELD_S)
        assert isinstance(old, Lease) and isinstance(new, Lease)
        assert await leases.renew(old, HELD_S) is False
        assert await leases.renew(new, HELD_S) is True

    async def test_renew_keeps_the_job_from_being_taken_over(self, harness: LeasesHarness) -> None:
        job = new_job(await harness.new_run())
        lease = await harness.leases.acquire(job, worker_id="a", lease_s=SHORT_S)
        assert isinstance(lease, Lease)
        assert await harness.leases.renew(lease, HELD_S) is True
        await harness.elapse(LAPSE_S)
        assert await harness.leases.acquire(job, worker_id="b", lease_s=HELD_S) == "leased"

    async def test_a_finished_job_is_refused_by_its_status(self, harness: LeasesHarness) -> None:
        for status in ("completed", "failed", "blocked"):
            job = new_job(await harness.new_run())
            lease = await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)
            assert isinstance(lease, Lease)
            assert await _finish(harness.leases, lease, "a", status) is True
            assert await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S) == status
            assert await harness.leases.renew(lease, HELD_S) is False

    async def test_a_job_finishes_once(self, harness: LeasesHarness) -> None:
        job = new_job(await harness.new_run())
        lease = await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)
        assert isinstance(lease, Lease)
        assert await _finish(harness.leases, lease, "a", "completed") is True
        assert await _finish(harness.leases, lease, "a", "failed") is False
        assert (await harness.job(job.job_id))["status"] == "completed"
        assert await harness.stale_writes(job.job_id) == [(1, 1, "a", "finish:failed")]

    async def test_deliveries_run_out_as_exhausted(self, harness: LeasesHarness) -> None:
        job = new_job(await harness.new_run(), max_attempts=2)
        leases = harness.leases
        assert isinstance(await leases.acquire(job, worker_id="a", lease_s=SHORT_S), Lease)
        await harness.elapse(LAPSE_S)
        taken = await leases.acquire(job, worker_id="b", lease_s=HELD_S)
        assert taken == Lease(job.job_id, 2, 2, taken_over=True)
        assert await leases.acquire(job, worker_id="c", lease_s=HELD_S) == "exhausted"
        # Its holder may still retry inside its lease: the delivery it is on, not a new one.
        assert await leases.acquire(job, worker_id="b", lease_s=SHORT_S) == Lease(job.job_id, 3, 2)
        await harness.elapse(LAPSE_S)
        assert await leases.acquire(job, worker_id="b", lease_s=HELD_S) == "exhausted"

    async def test_receive_records_a_pending_job_without_a_lease(
        self, harness: LeasesHarness
    ) -> None:
        job = new_job(await harness.new_run())
        assert await harness.leases.receive(job) is True
        row = await harness.job(job.job_id)
        assert (row["status"], row["attempts"], row["lease_epoch"]) == ("pending", 0, 0)
        assert row["locked_by"] is None and row["payload_ref"] == job.payload_ref
        assert await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S) == Lease(
            job.job_id, 1, 1
        )

    async def test_receive_is_idempotent(self, harness: LeasesHarness) -> None:
        job = new_job(await harness.new_run())
        assert await harness.leases.receive(job) is True
        lease = await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)
        again = replace(job, job_id=new_id("job"), payload_ref={"topic": "other", "event": {}})
        assert await harness.leases.receive(again) is True
        row = await harness.job(job.job_id)
        assert (row["status"], row["lease_epoch"]) == ("running", 1)
        assert row["payload_ref"] == job.payload_ref
        assert lease == Lease(job.job_id, 1, 1)

    async def test_a_job_made_without_its_event_gains_it(self, harness: LeasesHarness) -> None:
        bare = new_job(await harness.new_run(), topic=None)
        assert await harness.leases.acquire(bare, worker_id="a", lease_s=HELD_S) == Lease(
            bare.job_id, 1, 1
        )
        kept = replace(bare, job_id=new_id("job"), payload_ref={"topic": "t", "event": {"k": 1}})
        assert await harness.leases.receive(kept) is True
        assert (await harness.job(bare.job_id))["payload_ref"] == kept.payload_ref
        other = replace(kept, payload_ref={"topic": "u", "event": {}})
        await harness.leases.acquire(other, worker_id="a", lease_s=HELD_S)
        assert (await harness.job(bare.job_id))["payload_ref"] == kept.payload_ref

    async def test_a_job_of_an_unknown_run_is_refused(self, harness: LeasesHarness) -> None:
        job = new_job(new_id("run"))
        assert await harness.leases.receive(job) is False
        with pytest.raises(PermanentError):
            await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)

    async def test_a_step_is_held_with_its_run_in_one_step(self, harness: LeasesHarness) -> None:
        """``acquire_with_run`` leases as ``acquire`` does and gives the job's run with it."""
        leases, run_id = harness.leases, await harness.new_run()
        job = new_job(run_id)
        taken = await leases.acquire_with_run(job, worker_id="a", lease_s=HELD_S)
        assert taken is not None
        run, lease = taken
        assert (run.run_id, run.status, run.current_step) == (run_id, "pending", 0)
        assert lease == Lease(job.job_id, 1, 1)
        row = await harness.job(job.job_id)
        assert (row["status"], row["attempts"], row["locked_by"]) == ("running", 1, "a")
        again = await leases.acquire_with_run(job, worker_id="b", lease_s=HELD_S)
        assert again is not None and (again[0].run_id, again[1]) == (run_id, "leased")
        own = await leases.acquire_with_run(job, worker_id="a", lease_s=HELD_S)
        assert own is not None and own[1] == Lease(job.job_id, 2, 1)
        assert isinstance(own[1], Lease)
        assert await _finish(leases, own[1], "a")
        done = await leases.acquire_with_run(job, worker_id="a", lease_s=HELD_S)
        assert done is not None and done[1] == "completed"

    async def test_a_step_of_an_unknown_run_is_held_by_nobody(self, harness: LeasesHarness) -> None:
        """No run: None, and no job made (a later ``acquire`` still finds no run)."""
        job = new_job(new_id("run"))
        assert await harness.leases.acquire_with_run(job, worker_id="a", lease_s=HELD_S) is None
        with pytest.raises(PermanentError):
            await harness.leases.acquire(job, worker_id="a", lease_s=HELD_S)

    async def test_expired_claims_a_lapsed_lease_once_per_period(
        self, harness: LeasesHarness
    ) -> None:
        job = new_job(await harness.new_run())
        await harness.leases.acquire(job, worker_id="a", lease_s=SHORT_S)
        await harness.elapse(LAPSE_S)
        [row] = await _own(harness.leases, {job.job_id})
        assert (row["status"], row["lease_epoch"], row["attempts"], row["redrives"]) == (
            "running",
            1,
            1,
            0,
        )
        assert (row["run_id"], row["service"], row["payload_ref"]) == (
            job.run_id,
            job.service,
            job.payload_ref,
        )
        assert await _own(harness.leases, {job.job_id}) == []
        await harness.elapse(LAPSE_S)
        [again] = await _own(harness.leases, {job.job_id})
        assert again["redrives"] == 1

    async def test_expired_claims_a_received_job_nobody_leased(
        self, harness: LeasesHarness
    ) -> None:
        run_id = await harness.new_run()
        kept, bare = new_job(run_id), new_job(run_id, topic=None)
        await harness.leases.receive(kept)
        await harness.leases.receive(bare)
        assert await _own(harness.leases, {kept.job_id, bare.job_id}) == []
        await harness.elapse(LAPSE_S)
        [row] = await _own(harness.leases, {kept.job_id, bare.job_id})
        assert (row["job_id"], row["status"], row["lease_epoch"]) == (kept.job_id, "pending", 0)

    async def test_expired_leaves_live_and_finished_jobs(self, harness: LeasesHarness) -> None:
        run_id = await harness.new_run()
        live, done = new_job(run_id), new_job(run_id)
        await harness.leases.acquire(live, worker_id="a", lease_s=HELD_S)
        lease = await harness.leases.acquire(done, worker_id="a", lease_s=SHORT_S)
        assert isinstance(lease, Lease)
        await _finish(harness.leases, lease, "a")
        await harness.elapse(LAPSE_S)
        assert await _own(harness.leases, {live.job_id, done.job_id}) == []

    async def test_give_up_fails_the_job_and_fences_its_holder(
        self, harness: LeasesHarness
    ) -> None:
        leases = harness.leases
        job = new_job(await harness.new_run())
        lease = await leases.acquire(job, worker_id="a", lease_s=HELD_S)
        assert isinstance(lease, Lease)
        assert await leases.give_up(job.job_id, 2, "stale") is False
        assert await leases.give_up(job.job_id, 1, "out of deliveries") is True
        row = await harness.job(job.job_id)
        assert (row["status"], row["lease_epoch"], row["last_error"]) == (
            "failed",
            2,
            "out of deliveries",
        )
        assert await leases.renew(lease, HELD_S) is False
        assert await _finish(leases, lease, "a") is False
        assert await leases.acquire(job, worker_id="a", lease_s=HELD_S) == "failed"
        assert await leases.give_up(job.job_id, 2, "again") is False
