"""Image I/O's real code on the fakes: images checked and handed on, bad input as an upstream
failure for the Supervisor, a checked upload read from its digest's copy only, and a result
refused when the job was taken over meanwhile."""

import hashlib

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
        (fake_image(2400, 1800, "GIF"), "IMAGE_FORMAT_UNSUPPORTED"),
        (fake_image(2400, 1800, frames=2), "IMAGE_ANIMATED"),
        (fake_image(4096, 3072), "IMAGE_DIMENSIONS_INVALID"),
        (fake_image(30_000, 1_800), "IMAGE_DIMENSIONS_INVALID"),
        (fake_image(20_000, 20_000), "IMAGE_DIMENSIONS_INVALID"),
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


async def test_an_upload_is_checked_then_read_from_its_digests_copy_only() -> None:
    world = make_world()
    checked = fake_image(2400, 1800)
    run, source = await world.new_run(image=checked)
    uploaded = await world.repo.artifact(source)
    assert uploaded is not None and uploaded.storage_path.startswith("uploads/")
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "ready"

    image = await world.repo.artifact(source)
    assert image is not None and image.kind == "source_image"
    digest = hashlib.sha256(checked).hexdigest()
    assert image.storage_path == f"runs/{run.run_id}/source-{digest}.png"
    assert world.storage.buckets[image.storage_bucket][image.storage_path].data == checked
    # A client that uploads again to its upload key afterwards changes nothing anyone reads.
    world.storage.put(uploaded.storage_bucket, uploaded.storage_path, fake_image(30_000, 30_000))
    assert image.signed_url_cached is not None
    assert world.storage.download(image.signed_url_cached) == checked


async def test_a_repeat_finds_the_checked_copy_in_place() -> None:
    world = make_world()
    run, source = await world.new_run()
    service = ImageIO(world.runtime(SERVICE))
    assert await service.handle(make_step_requested(run_id=run.run_id, input_artifact_ids=[source]))
    first = await world.repo.artifact(source)
    again = make_step_requested(run_id=run.run_id, attempt=2, input_artifact_ids=[source])

    assert await service.handle(again) == "ready"

    second = await world.repo.artifact(source)
    assert first is not None and second is not None
    assert second.storage_path == first.storage_path
    copies = [key for key in world.storage.buckets[second.storage_bucket] if "/source-" in key]
    assert copies == [first.storage_path]


async def test_a_render_is_checked_where_it_is() -> None:
    world = make_world()
    run, _ = await world.new_run()
    render = await world.add_artifact(run.run_id, 1, "render_image", fake_image(2400, 1800))
    before = await world.repo.artifact(render)
    request = make_step_requested(run_id=run.run_id, step_id=1, input_artifact_ids=[render])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "ready"

    after = await world.repo.artifact(render)
    assert before is not None and after is not None
    assert after.storage_path == before.storage_path


async def test_an_upload_over_max_upload_bytes_is_image_too_large_unread() -> None:
    world = make_world(max_upload_bytes=2_048, max_image_bytes=4_096)
    big = fake_image(2400, 1800) + b" " * 3_000
    run, source = await world.new_run(image=big)
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "failed"

    failure = world.publisher.only(STEP_FAILED, StepFailed).failure
    assert (failure.rule, failure.severity) == ("IMAGE_TOO_LARGE", "critical")
    assert "over the 2048 limit" in failure.detail


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (fake_image(20_000, 20_000), "pixel cap"),
        (fake_image(6_000, 600), "aspect ratio of 10.0:1"),
        (fake_image(9_000, 2_000), "side of 9000 px"),
        (fake_image(4096, 3072), "outside the 2K band 1900-3300px"),
    ],
)
async def test_a_size_refused_from_the_header_is_named_and_recorded(
    data: bytes, named: str
) -> None:
    world = make_world()
    run, source = await world.new_run(image=data)
    request = make_step_requested(run_id=run.run_id, input_artifact_ids=[source])

    assert await ImageIO(world.runtime(SERVICE)).handle(request) == "failed"

    failure = world.publisher.only(STEP_FAILED, StepFailed).failure
    assert failure.rule == "IMAGE_DIMENSIONS_INVALID" and named in failure.detail
    image = await world.repo.artifact(source)
    assert image is not None and image.metadata["within_band"] is False
    assert image.storage_path.startswith("uploads/")  # nothing refused is copied
