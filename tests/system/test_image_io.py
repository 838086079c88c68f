"""Image I/O as a real Faust worker: real images in S3, real PostgreSQL, real Kafka."""

import json
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from planstream.adapters.kafka import read_all
from planstream.adapters.postgres.repository import Repository
from planstream.dev.chaos.bombs import animated_png, gif_plan, png_bomb
from planstream.domain.events import ImageReady, StepFailed, StepRequested, step_key
from planstream.domain.ids import new_id
from planstream.domain.records import Run, Upload
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from tests.factories import make_step_requested
from tests.images import floor_plan_jpeg, floor_plan_png
from tests.stackkit import read_topic, wait_for
from topics import DEAD_LETTER, IMAGE_READY, STEP_FAILED, STEP_REQUESTED

pytestmark = pytest.mark.usefixtures("ingress_url")


async def _run_with_image(
    repo: Repository, s3, settings: Settings, image: bytes | None, quality: str = "2K"
) -> tuple[str, str]:
    """A run whose source artifact holds ``image`` (None: the object is never uploaded)."""
    upload_id, run_id, artifact_id = new_id("upl"), new_id("run"), new_id("art")
    upload = Upload(
        upload_id, settings.s3_bucket, f"uploads/{upload_id}", "image/png", datetime.now(UTC)
    )
    await repo.create_upload(upload)
    if image is not None:
        await s3.put_object(Bucket=settings.s3_bucket, Key=upload.storage_path, Body=image)
    run = Run(run_id, upload_id, "4:3", quality, None, "pending", 0)  # type: ignore[arg-type]
    await repo.create_run(run, upload, artifact_id, 100)
    return run_id, artifact_id


async def _send(settings: Settings, *events: StepRequested, raw: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        topic = STEP_REQUESTED.full_name(settings.topic_namespace)
        for event in events:
            await producer.send_and_wait(
                topic, encode_event(event, 50_000), key=event.run_id.encode()
            )
        if raw is not None:
            await producer.send_and_wait(topic, raw, key=b"poison")
    finally:
        await producer.stop()


async def _events_for(settings: Settings, spec, model, run_id: str) -> list:
    return [
        model.model_validate_json(value)
        for key, value, *_ in await read_topic(settings, spec)
        if key == run_id.encode()
    ]


async def _job(pool, run_id: str):
    return await pool.fetchrow(
        "SELECT status, processing_time_ms, last_error, last_error_stack, attempts, lease_epoch"
        " FROM pipeline_jobs WHERE run_id = $1 AND service = 'image_io' AND attempt = 1",
        run_id,
    )


async def _finished_job(pool, run_id: str):
    async def done():
        job = await _job(pool, run_id)
        return job if job is not None and job["status"] in ("completed", "failed") else None

    return await wait_for(done, timeout_s=60)


@pytest.mark.parametrize(
    ("image", "size"),
    [(floor_plan_png(2400, 1800), (2400, 1800)), (floor_plan_jpeg(2000, 2600, 6), (2600, 2000))],
    ids=["png", "jpeg-exif-rotated"],
)
async def test_a_2k_image_is_measured_signed_and_handed_on(
    repo, pool, s3, settings: Settings, image: bytes, size: tuple[int, int]
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, image)
    await _send(settings, make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id]))
    job = await _finished_job(pool, run_id)
    assert job["status"] == "completed"
    assert job["processing_time_ms"] >= 0
    artifact = await pool.fetchrow(
        "SELECT metadata_json, signed_url_cached, signed_url_expires_at, storage_path"
        " FROM pipeline_artifacts WHERE artifact_id = $1",
        artifact_id,
    )
    meta = artifact["metadata_json"]
    assert (meta["width_px"], meta["height_px"]) == size
    assert meta["byte_size"] == len(image) and len(meta["sha256"]) == 64
    # The checked bytes, copied under their digest: what the model and the renders read.
    suffix = {"PNG": ".png", "JPEG": ".jpg"}[meta["format"]]
    assert artifact["storage_path"] == f"runs/{run_id}/source-{meta['sha256']}{suffix}"
    copy = await s3.get_object(Bucket=settings.s3_bucket, Key=artifact["storage_path"])
    assert await copy["Body"].read() == image
    assert meta["quality"] == "2K" and meta["within_band"] is True
    assert artifact["signed_url_cached"] and artifact["signed_url_expires_at"] > datetime.now(UTC)
    ready = await wait_for(lambda: _events_for(settings, IMAGE_READY, ImageReady, run_id))
    assert [(e.artifact_ids, e.quality) for e in ready] == [([artifact_id], "2K")]


@pytest.mark.parametrize(
    ("image", "rule"),
    [
        (floor_plan_png(4096, 3072), "IMAGE_DIMENSIONS_INVALID"),
        (None, "ARTIFACT_MISSING"),
        (floor_plan_png()[:5000], "IMAGE_UNREADABLE"),
        (b"this is not an image at all", "IMAGE_UNREADABLE"),
        (png_bomb(20_000, 20_000), "IMAGE_DIMENSIONS_INVALID"),
        (animated_png(floor_plan_png()), "IMAGE_ANIMATED"),
        (gif_plan(floor_plan_png()), "IMAGE_FORMAT_UNSUPPORTED"),
    ],
    ids=[
        "4k-on-step-0",
        "missing-object",
        "truncated-png",
        "text-file",
        "20000x20000-png",
        "animated-png",
        "gif-named-png",
    ],
)
async def test_bad_input_becomes_an_upstream_failure(
    repo, pool, s3, settings: Settings, image: bytes | None, rule: str
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, image)
    await _send(settings, make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id]))
    job = await _finished_job(pool, run_id)
    assert job["status"] == "failed"
    assert job["last_error"].startswith(rule) and job["last_error_stack"]
    assert job["processing_time_ms"] >= 0
    failed = await wait_for(lambda: _events_for(settings, STEP_FAILED, StepFailed, run_id))
    assert [(e.failure.rule, e.failure.severity, e.service) for e in failed] == [
        (rule, "critical", "image_io")
    ]
    assert await _events_for(settings, IMAGE_READY, ImageReady, run_id) == []


async def test_a_double_click_makes_one_job_and_one_image_ready(
    repo, pool, s3, settings: Settings
) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    first = make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id])
    second = make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id])
    assert first.idempotency_key == second.idempotency_key == step_key(run_id, 0, 1)
    await _send(settings, first, second)
    await _finished_job(pool, run_id)
    # A third copy after the job completed, then a marker on the same run (so the same
    # partition, handled in order): once the marker's job is done, the copy was handled.
    marker = make_step_requested(run_id=run_id, attempt=2, input_artifact_ids=[new_id("art")])
    await _send(
        settings, make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id]), marker
    )

    async def marker_done():
        return await pool.fetchval(
            "SELECT status FROM pipeline_jobs WHERE run_id = $1 AND attempt = 2"
            " AND service = 'image_io' AND status = 'failed'",
            run_id,
        )

    await wait_for(marker_done)
    jobs = await pool.fetchval(
        "SELECT count(*) FROM pipeline_jobs WHERE run_id = $1 AND attempt = 1"
        " AND service = 'image_io'",
        run_id,
    )
    assert jobs == 1
    ready = await _events_for(settings, IMAGE_READY, ImageReady, run_id)
    assert [e.attempt for e in ready] == [1]


async def test_poison_messages_are_dead_lettered_and_the_agent_carries_on(
    repo, pool, s3, settings: Settings
) -> None:
    smuggled = make_step_requested().model_dump(mode="json")
    poison = json.dumps({**smuggled, "run_id": "data:image/png;base64,iVBORw0KGgo"})
    await _send(settings, raw=poison.encode())
    await _send(settings, raw=b"\x00\x01 not json")
    await _send(settings, raw=b"{" + b" " * 60_000 + b"}")
    unknown_run = make_step_requested()
    await _send(settings, unknown_run)
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    await _send(settings, make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id]))
    assert (await _finished_job(pool, run_id))["status"] == "completed"

    async def dead_letters():
        letters = await read_topic(settings, DEAD_LETTER)
        return letters if len(letters) >= 4 else None

    letters = await wait_for(dead_letters)
    headers = [dict(letter.headers) for letter in letters]
    errors = [h["planstream-error"].decode() for h in headers]
    assert any(e.startswith("StepRequested: run_id: String should match") for e in errors)
    assert any("Invalid JSON" in e for e in errors)
    assert any("over the 50000-byte event limit" in e for e in errors)
    assert any(f"run {unknown_run.run_id} does not exist" in e for e in errors)
    for h in headers:
        assert h["planstream-source-topic"].decode() == STEP_REQUESTED.full_name(
            settings.topic_namespace
        )
        assert int(h["planstream-source-offset"]) >= 0
        assert h["planstream-service"] == b"image_io"


async def test_the_mark_is_kept_in_a_compacted_changelog(repo, pool, s3, settings) -> None:
    run_id, artifact_id = await _run_with_image(repo, s3, settings, floor_plan_png())
    await _send(settings, make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id]))
    await _finished_job(pool, run_id)
    changelog = f"planstream-image_io{settings.app_id_suffix}-dedup-changelog"

    async def marked():
        records = await read_all(settings, changelog)
        return [r for r in records if step_key(run_id, 0, 1).encode() in (r.key or b"")]

    [mark] = await wait_for(marked)
    assert float(mark.value) > 0
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, changelog)]
        )
    finally:
        await admin.close()
    configs = {c[0]: c[1] for c in described.resources[0][4]}
    assert configs["cleanup.policy"] == "compact"
