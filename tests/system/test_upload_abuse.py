"""Hostile uploads through the real ingress, S3 (moto) and the real workers: each ends as a
refused upload or a blocked run whose reason names the problem, Image I/O's peak memory stays
under 400 MB, and the model and renders read the bytes Image I/O checked, never a re-upload."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from planstream.adapters.http.client import IngressError, PlanstreamClient, post_upload
from planstream.dev.chaos.attacks import peak_rss_bytes
from planstream.dev.chaos.bombs import animated_png, gif_plan, png_bomb
from planstream.settings import Settings
from tests.images import floor_plan_png
from tests.stackkit import wait_for

MEMORY_LIMIT_BYTES = 400 * 1024 * 1024
THIRTY_MB = 30 * 1000 * 1000
GIF = gif_plan(floor_plan_png())


@pytest.fixture
async def api(user_token: str) -> AsyncIterator[aiohttp.ClientSession]:
    """The API as this module's user (uploads to S3 go through ``plain``)."""
    auth = {"Authorization": f"Bearer {user_token}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth) as session:
        yield session


@pytest.fixture
async def plain() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


async def _call(api: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with api.request(method, url, **kw) as response:
        return response.status, await response.json(content_type=None)


async def _slot(api: aiohttp.ClientSession, base: str, content_type: str) -> dict[str, Any]:
    status, slot = await _call(
        api, "POST", f"{base}/v1/uploads", json={"content_type": content_type}
    )
    assert status == 201, slot
    return dict(slot)


async def _start(api: aiohttp.ClientSession, base: str, upload_id: str) -> str:
    status, created = await _call(api, "POST", f"{base}/v1/runs", json={"upload_id": upload_id})
    assert status == 201, created
    run_id = str(created["run_id"])
    step = f"{base}/v1/runs/{run_id}/steps/0"
    status, accepted = await _call(api, "POST", step, headers={"Idempotency-Key": f"{run_id}-0"})
    assert status == 202, accepted
    return run_id


async def _ended(api: aiohttp.ClientSession, base: str, run_id: str) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        status, view = await _call(api, "GET", f"{base}/v1/runs/{run_id}")
        assert status == 200, view
        return dict(view) if view["status"] in ("blocked", "failed", "rejected") else None

    return await wait_for(settled, timeout_s=180, interval_s=0.5)


def _image_io_pid() -> int:
    """The Image I/O worker this session started (a child of this process)."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # `planstream worker image_io` execs `python -m agents image_io`: same process.
        if ppid == me and argv[-3:-1] == [b"agents", b"image_io"]:
            return int(proc.name)
    raise AssertionError("the session's Image I/O worker is not running")


def test_the_peak_memory_measure_sees_an_allocation() -> None:
    """The measure's self-test: a child that holds 200 MB shows a peak over 200 MB."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = b'x' * 200_000_000; sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while peak_rss_bytes(holder.pid) < 200_000_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert peak_rss_bytes(holder.pid) > 200_000_000
    finally:
        holder.communicate(b"", timeout=30)


@pytest.mark.parametrize(
    ("image", "content_type", "declared", "rule", "named"),
    [
        (b"30 MB", "image/png", None, "IMAGE_TOO_LARGE", "bytes, over"),
        (png_bomb(20_000, 20_000), "image/png", None, "IMAGE_DIMENSIONS_INVALID", "pixel cap"),
        (animated_png(floor_plan_png()), "image/png", None, "IMAGE_ANIMATED", "holds 2 frames"),
        (GIF, "image/png", None, "IMAGE_FORMAT_UNSUPPORTED", "format GIF"),
        (GIF, "image/png", "image/gif", "IMAGE_FORMAT_UNSUPPORTED", "format GIF"),
    ],
    ids=["30-mb", "20000x20000-png", "animated-png", "gif-named-png", "wrong-content-type"],
)
async def test_a_hostile_upload_ends_refused_or_blocked_by_name_within_400_mb(
    api: aiohttp.ClientSession,
    plain: aiohttp.ClientSession,
    ingress_url: str,
    pool: Any,
    s3: Any,
    settings: Settings,
    image: bytes,
    content_type: str,
    declared: str | None,
    rule: str,
    named: str,
) -> None:
    slot = await _slot(api, ingress_url, content_type)
    assert (slot["method"], slot["max_bytes"]) == ("POST", settings.max_upload_bytes)
    if declared is not None:  # the form's own field altered: the policy says image/png
        slot["fields"] = {**slot["fields"], "Content-Type": declared}
    if image == b"30 MB":  # made here: a failure message never shows 30 MB of bytes
        image = floor_plan_png() + bytes(THIRTY_MB)
    status = await post_upload(plain, slot, image, declared or content_type)
    try:
        if status >= 300:  # a store that checks the policy refused the upload: also named
            assert status in (400, 403), status
            return
        run_id = await _start(api, ingress_url, slot["upload_id"])
        view = await _ended(api, ingress_url, run_id)
        assert (view["status"], view["block_reason"]) == ("blocked", rule), view
        error = await pool.fetchval(
            "SELECT last_error FROM pipeline_jobs WHERE run_id = $1 AND service = 'image_io'",
            run_id,
        )
        assert error.startswith(f"{rule}: ") and named in error, error
    finally:
        await s3.delete_object(Bucket=settings.s3_bucket, Key=f"uploads/{slot['upload_id']}")
    peak = peak_rss_bytes(_image_io_pid())
    print(f"Image I/O peak RSS after {rule}: {peak / 2**20:.0f} MiB")  # the figure, shown with -s
    assert peak < MEMORY_LIMIT_BYTES, f"Image I/O peaked at {peak / 2**20:.0f} MiB"


async def test_a_re_upload_after_the_check_is_never_what_the_pipeline_reads(
    api: aiohttp.ClientSession,
    plain: aiohttp.ClientSession,
    ingress_url: str,
    pool: Any,
    s3: Any,
    settings: Settings,
) -> None:
    checked = floor_plan_png(2_400, 1_800)
    slot = await _slot(api, ingress_url, "image/png")
    assert await post_upload(plain, slot, checked, "image/png") == 204
    run_id = await _start(api, ingress_url, slot["upload_id"])

    async def copied() -> Any:
        row = await pool.fetchrow(
            "SELECT storage_path, signed_url_cached FROM pipeline_artifacts"
            " WHERE run_id = $1 AND kind = 'source_image'",
            run_id,
        )
        ready = row is not None and row["signed_url_cached"] and "/source-" in row["storage_path"]
        return row if ready else None

    row = await wait_for(copied, timeout_s=180, interval_s=0.5)
    assert row["storage_path"].startswith(f"runs/{run_id}/source-")
    assert urlsplit(row["signed_url_cached"]).path.endswith(row["storage_path"])

    # The same form, still valid, puts other bytes on the upload key: nobody reads them.
    assert await post_upload(plain, slot, png_bomb(20_000, 20_000), "image/png") == 204
    copy = await s3.get_object(Bucket=settings.s3_bucket, Key=row["storage_path"])
    assert await copy["Body"].read() == checked
    async with plain.get(row["signed_url_cached"]) as response:
        assert response.status == 200
        assert await response.read() == checked

    status, answer = await _call(
        api, "POST", f"{ingress_url}/v1/runs", json={"upload_id": slot["upload_id"]}
    )
    assert status == 409, answer  # one run per upload, also once its artifact moved


async def test_the_client_uploads_through_the_form_and_refuses_what_is_too_big(
    ingress_url: str, user_token: str, settings: Settings
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)
        upload_id = await client.upload(floor_plan_png(), "image/png")
        assert (await client.create_run(upload_id)).startswith("run_")
        with pytest.raises(IngressError, match=f"over {settings.max_upload_bytes}"):
            await client.upload(bytes(settings.max_upload_bytes + 1), "image/png")
