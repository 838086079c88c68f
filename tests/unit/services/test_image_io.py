"""Image I/O's real code on the fakes: images checked and handed on, bad input as an upstream
failure for the Supervisor, and a result refused when the job was taken over meanwhile."""

import pytest

from planstream.domain.events import ImageReady, StepFailed
from planstream.domain.ids import new_id
from planstream.services.image_io import SERVICE, ImageIO
from planstream.services.jobs import StepWork
from planstream.services.step_attempt import UnknownRun
from tests.fakes import fake_image, make_world
from tests.unit.services.steps import make_step_requested
from topics import IMAGE_READY, STEP_FAILED, STEP_REQUESTED


async def test_a_plan_that_fits_its_tier_is_handed_on() -> None:
    world = make_world()
    run, source = await world.new_run(image=fake_image(2400, 1800))
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "ready"

    ready = world.publisher.only(IMAGE_READY, ImageReady)
    assert (ready.artifact_ids, ready.quality, ready.attempt) == ([source], "2K", 1)
    assert world.publisher.events(STEP_FAILED) == []
    job = world.job(SERVICE, request.idempotency_key)
    assert (job["status"], job["result_epoch"]) == ("completed", 1)
    assert job["result_ref"] == {"event_id": ready.event_id, "quality": "2K"}
    image = await world.repo.artifact(source)
    assert image is not None and image.signed_url_cached is not None
    assert (image.metadata["width_px"], image.metadata["within_band"]) == (2400, True)


async def test_an_input_that_is_not_the_runs_is_an_upstream_failure() -> None:
    world = make_world()
    run, _ = await world.new_run()
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[new_id("art")])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "failed"

    failed = world.publisher.only(STEP_FAILED, StepFailed)
    assert (failed.service, failed.failure.rule, failed.failure.severity) == (
        "image_io",
        "ARTIFACT_MISSING",
        "critical",
    )
    job = world.job(SERVICE, request.idempotency_key)
    assert failed.job_id == job["job_id"]
    assert job["status"] == "failed" and job["last_error"].startswith("ARTIFACT_MISSING: ")
    assert world.publisher.events(IMAGE_READY) == []


async def test_an_image_gone_from_storage_is_an_upstream_failure() -> None:
    world = make_world()
    run, source = await world.new_run()
    image = await world.repo.artifact(source)
    assert image is not None
    world.storage.delete(image.storage_bucket, image.storage_path)
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "failed"

    failed = world.publisher.only(STEP_FAILED, StepFailed)
    assert failed.failure.rule == "ARTIFACT_MISSING"
    assert "has no object in storage" in failed.failure.detail


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"<html>not an image</html>", "IMAGE_UNREADABLE"),
        (fake_image(1200, 900), "IMAGE_DIMENSIONS_INVALID"),
        (fake_image(2400, 1800, "GIF"), "IMAGE_UNREADABLE"),
    ],
)
async def test_an_image_unfit_for_its_tier_is_an_upstream_failure(data: bytes, rule: str) -> None:
    world = make_world()
    run, source = await world.new_run(image=data)
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "failed"

    assert world.publisher.only(STEP_FAILED, StepFailed).failure.rule == rule
    assert world.job(SERVICE, request.idempotency_key)["status"] == "failed"


async def test_a_request_for_an_unknown_run_touches_no_job() -> None:
    world = make_world()
    request = make_step_requested()

    with pytest.raises(UnknownRun):
        await ImageIO(world.runtime(SERVICE)).handle(request)

    assert world.db.jobs == {} and world.publisher.published == []


async def test_a_step_attempt_already_done_is_skipped() -> None:
    world = make_world()
    run, source = await world.new_run()
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])
    service = ImageIO(world.runtime(SERVICE))
    assert await service.handle(request) == "ready"

    assert await service.handle(request.model_copy(update={"event_id": new_id("evt")})) == "skipped"

    assert len(world.publisher.events(IMAGE_READY)) == 1


async def test_a_result_after_a_takeover_is_refused_and_not_recorded() -> None:
    world = make_world()
    run, source = await world.new_run()
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])
    slow = world.runtime(SERVICE, worker_id="image_io-slow")
    other = world.runtime(SERVICE, worker_id="image_io-other")
    taken: list[StepWork | None] = []

    async def lease_lapses_and_another_worker_takes_the_job(bucket: str, key: str) -> None:
        world.clock.advance(world.settings.lease_s + 1)
        taken.append(await other.jobs.begin(request, STEP_REQUESTED))

    world.storage.before_read(lease_lapses_and_another_worker_takes_the_job)
    assert await ImageIO(slow).handle(request) == "ready"

    [work] = taken
    assert work is not None and work.lease.epoch == 2
    # ImageReady went out before the refused finish (downstream jobs key on the step attempt).
    assert len(world.publisher.events(IMAGE_READY)) == 1
    job = world.job(SERVICE, request.idempotency_key)
    assert (job["status"], job["locked_by"], job["lease_epoch"]) == ("running", "image_io-other", 2)
    assert job["result_epoch"] is None and job["completed_at"] is None
    [refused] = world.db.stale_writes
    assert (refused.presented_epoch, refused.current_epoch, refused.worker_id) == (
        1,
        2,
        "image_io-slow",
    )
    assert refused.attempted == "finish:completed"
