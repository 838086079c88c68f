"""A refused event waits as a dead letter until its cause is fixed, then is redriven once."""

from datetime import UTC, datetime

import pytest

from planstream.adapters.kafka import redrive as dead_letters
from planstream.domain.ids import new_id
from planstream.domain.records import Run, Upload
from planstream.settings import Settings
from tests.factories import make_step_requested
from tests.images import floor_plan_png
from tests.stackkit import wait_for
from tests.system.test_image_io import _send

pytestmark = pytest.mark.usefixtures("ingress_url")


async def test_a_letter_is_redriven_after_the_fix_and_only_once(repo, pool, s3, settings: Settings):
    run_id, artifact_id = new_id("run"), new_id("art")
    request = make_step_requested(run_id=run_id, input_artifact_ids=[artifact_id])
    await _send(settings, request)  # the run does not exist yet: dead-lettered

    async def letters():
        found = dead_letters.select(await dead_letters.read_dead_letters(settings), run_id, None)
        return found or None

    [letter] = await wait_for(letters)
    assert f"run {run_id} does not exist" in letter.error
    assert letter.source_topic.endswith("planstream.step.requested.v1")

    # The fix: the run and its upload now exist.
    upload = Upload(
        new_id("upl"), settings.s3_bucket, f"uploads/{run_id}", "image/png", datetime.now(UTC)
    )
    await repo.create_upload(upload)
    await s3.put_object(Bucket=settings.s3_bucket, Key=upload.storage_path, Body=floor_plan_png())
    await repo.create_run(
        Run(run_id, upload.upload_id, "4:3", "2K", None, "pending", 0), upload, artifact_id, 10
    )

    assert await dead_letters.redrive(settings, [letter], "ana", "run created late") == (1, 0)
    assert await dead_letters.redrive(settings, [letter], "ana", "again") == (0, 1)

    async def image_checked():
        return await pool.fetchval(
            "SELECT status FROM pipeline_jobs WHERE run_id = $1 AND service = 'image_io'"
            " AND status = 'completed'",
            run_id,
        )

    await wait_for(image_checked)
    audit = await pool.fetchrow(
        "SELECT operator, reason, run_id FROM dead_letter_redrives WHERE dlq_offset = $1"
        " AND dlq_partition = $2",
        letter.offset,
        letter.partition,
    )
    assert dict(audit) == {"operator": "ana", "reason": "run created late", "run_id": run_id}


async def test_only_this_deployments_topics_are_redrive_targets(settings: Settings) -> None:
    stranger = dead_letters.DeadLetter(
        0, 0, None, "other.topic", 0, 0, "x", None, None, b"k", b"v", ()
    )
    with pytest.raises(dead_letters.RedriveRefused, match=r"other\.topic"):
        await dead_letters.redrive(settings, [stranger], "ana", "no")
