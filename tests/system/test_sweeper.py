"""The sweeper re-drives a job whose worker died holding its lease, and gives up within budget."""

import pytest

from planstream.adapters.postgres.leases import JobLeases
from planstream.domain.errors import PermanentError
from planstream.domain.events import ImageReady, step_key
from planstream.domain.ids import new_id
from planstream.services.jobs import Jobs
from planstream.settings import Settings
from tests.factories import make_step_requested
from tests.images import floor_plan_png
from tests.stackkit import read_topic, wait_for
from tests.system.test_image_io import _run_with_image
from topics import IMAGE_READY, STEP_REQUESTED

pytestmark = pytest.mark.usefixtures("ingress_url")


async def _orphan(pool, run_id: str, artifact_id: str, deliveries: int) -> str:
    """A running Image I/O job whose worker died: its lease expired, its event never came back."""
    event = make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id])
    job_id = new_id("job")
    await pool.execute(
        "INSERT INTO pipeline_jobs (job_id, run_id, step_id, attempt, service, idempotency_key,"
        " payload_ref, status, attempts, locked_by, locked_at, lease_expires_at, lease_epoch)"
        " VALUES ($1, $2, 0, 1, 'image_io', $3, $4, 'running', $5, 'image_io-dead', now(),"
        " now() - interval '1 second', 1)",
        job_id,
        run_id,
        f"image_io:{step_key(run_id, 0, 1)}",
        {"topic": STEP_REQUESTED.name, "event": event.model_dump(mode="json")},
        deliveries,
    )
    return job_id


async def _job(pool, job_id: str, *statuses: str):
    async def done():
        row = await pool.fetchrow(
            "SELECT status, lease_epoch, result_epoch, redrives FROM pipeline_jobs"
            " WHERE job_id = $1",
            job_id,
        )
        return row if row["status"] in statuses else None

    return await wait_for(done, timeout_s=60)


async def test_an_expired_lease_is_taken_over_with_a_new_epoch(repo, pool, s3, settings) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    job_id = await _orphan(pool, run_id, artifact_id, deliveries=1)
    job = await _job(pool, job_id, "completed")
    assert (job["lease_epoch"], job["result_epoch"], job["redrives"]) == (2, 2, 1)
    ready = [
        ImageReady.model_validate_json(r.value)
        for r in await read_topic(settings, IMAGE_READY)
        if r.key == run_id.encode()
    ]
    assert [e.job_id for e in ready] == [job_id]


async def test_a_job_out_of_deliveries_is_failed_and_retried_as_the_next_attempt(
    repo, pool, s3, settings: Settings
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    job_id = await _orphan(pool, run_id, artifact_id, deliveries=settings.max_attempts)
    job = await _job(pool, job_id, "failed")
    assert job["lease_epoch"] == 2  # giving up fences the last holder off

    async def decided():
        return await pool.fetchrow(
            "SELECT decision, rule_checks FROM pipeline_decisions"
            " WHERE run_id = $1 AND step_id = 0 AND attempt = 1",
            run_id,
        )

    decision = await wait_for(decided)
    assert decision["decision"] == "retry"
    assert decision["rule_checks"]["failures"][0]["rule"] == "WORKER_LOST"

    async def second_attempt():
        return await pool.fetchval(
            "SELECT status FROM pipeline_jobs WHERE run_id = $1 AND service = 'image_io'"
            " AND attempt = 2 AND status = 'completed'",
            run_id,
        )

    await wait_for(second_attempt)


async def _received(pool, run_id: str, artifact_id: str, redrives: int, settings: Settings) -> str:
    """An Image I/O job recorded when its event arrived, whose event then never reached a worker."""
    event = make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id])
    job_id = new_id("job")
    await pool.execute(
        "INSERT INTO pipeline_jobs (job_id, run_id, step_id, attempt, service, idempotency_key,"
        " payload_ref, redrives, updated_at)"
        " VALUES ($1, $2, 0, 1, 'image_io', $3, $4, $5, now() - make_interval(secs => $6))",
        job_id,
        run_id,
        f"image_io:{step_key(run_id, 0, 1)}",
        {"topic": STEP_REQUESTED.name, "event": event.model_dump(mode="json")},
        redrives,
        float(settings.lease_s + 1),
    )
    return job_id


async def test_a_received_job_no_worker_leased_is_delivered_again(
    repo, pool, s3, settings: Settings
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    job_id = await _received(pool, run_id, artifact_id, redrives=0, settings=settings)
    job = await _job(pool, job_id, "completed")
    assert (job["lease_epoch"], job["result_epoch"], job["redrives"]) == (1, 1, 1)


async def test_a_received_job_never_leased_within_its_redrives_is_given_up(
    repo, pool, s3, settings: Settings
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    job_id = await _received(
        pool, run_id, artifact_id, redrives=settings.max_attempts, settings=settings
    )
    job = await _job(pool, job_id, "failed")
    assert job["lease_epoch"] == 1  # giving up fences off a worker that takes it late

    async def decided():
        return await pool.fetchval(
            "SELECT rule_checks->'failures'->0->>'rule' FROM pipeline_decisions"
            " WHERE run_id = $1 AND step_id = 0 AND attempt = 1",
            run_id,
        )

    assert await wait_for(decided) == "WORKER_LOST"


async def test_a_receipt_records_the_job_once_and_the_lease_takes_it(
    repo, pool, s3, settings: Settings
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    event = make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id], attempt=3)
    jobs = Jobs(JobLeases(pool), settings, "receipt_probe", worker_id="receipt_probe-1")
    assert await jobs.receive(event, STEP_REQUESTED)
    assert await jobs.receive(event, STEP_REQUESTED)  # a redelivery: no second job
    rows = await pool.fetch(
        "SELECT status, attempts, lease_epoch, payload_ref FROM pipeline_jobs"
        " WHERE idempotency_key = $1",
        jobs.key(event),
    )
    assert [(r["status"], r["attempts"], r["lease_epoch"]) for r in rows] == [("pending", 0, 0)]
    assert rows[0]["payload_ref"]["topic"] == STEP_REQUESTED.name
    work = await jobs.begin(event, STEP_REQUESTED)
    assert work is not None
    assert (work.lease.epoch, work.lease.deliveries) == (1, 1)
    unknown = make_step_requested(run_id=new_id("run"), input_artifact_ids=[artifact_id])
    assert not await jobs.receive(unknown, STEP_REQUESTED)
    with pytest.raises(PermanentError, match=f"run {unknown.run_id} does not exist"):
        await jobs.begin(unknown, STEP_REQUESTED)  # dead-lettered by the agent, not a crash
