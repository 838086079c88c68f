"""Uploads by presigned POST on the stack's S3 (moto): the signed policy fixes the key, the exact
content type, a size of 1 to ``max_bytes`` and a short expiry; an image posted with the form
lands on its key. moto does not enforce a POST policy (real S3 answers 400 EntityTooLarge or
403 AccessDenied), so what a permissive store accepts must still never reach a reader: reads
are bounded by a HEAD first and again while the body streams."""

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from planstream.adapters.http.client import post_upload
from planstream.adapters.storage import Storage, _bounded
from planstream.domain.ids import new_id
from planstream.ports import ObjectTooLarge
from planstream.settings import Settings
from tests.images import floor_plan_png

MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    store = Storage(settings)
    await store.start()
    yield store
    await store.stop()


@pytest.fixture
async def plain() -> AsyncIterator[aiohttp.ClientSession]:
    """A session without an Authorization header, as S3 wants it."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def _key() -> str:
    return f"uploads/{new_id('upl')}"


def _policy(fields: dict[str, str]) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.b64decode(fields["policy"]))
    return decoded


async def test_the_forms_policy_fixes_key_type_size_and_expiry(
    storage: Storage, settings: Settings
) -> None:
    key = _key()
    before = datetime.now(UTC)

    form = await storage.presign_post(key, "image/png", MAX_BYTES, 120)

    assert form.url.startswith(settings.s3_endpoint or "https://")
    assert (form.fields["key"], form.fields["Content-Type"]) == (key, "image/png")
    assert form.fields["x-amz-signature"] and form.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    policy = _policy(form.fields)
    conditions = policy["conditions"]
    assert isinstance(conditions, list)
    assert {"bucket": settings.s3_bucket} in conditions
    assert {"key": key} in conditions  # exact: no starts-with, no ${filename}
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, MAX_BYTES] in conditions
    expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
    assert before + timedelta(seconds=110) <= expires <= before + timedelta(seconds=130)


async def test_an_image_posted_with_the_form_lands_on_its_key_with_its_type(
    storage: Storage, settings: Settings, s3, plain: aiohttp.ClientSession
) -> None:
    key, image = _key(), floor_plan_png(640, 480)
    form = await storage.presign_post(key, "image/png", MAX_BYTES, 60)
    slot = {"upload_url": form.url, "fields": form.fields}

    assert await post_upload(plain, slot, image, "image/png") == 204

    stored = await s3.get_object(Bucket=settings.s3_bucket, Key=key)
    assert stored["ContentType"] == "image/png"
    assert await stored["Body"].read() == image
    assert await storage.read(settings.s3_bucket, key, MAX_BYTES) == image


async def test_a_body_over_the_policy_never_reaches_a_reader(
    storage: Storage, settings: Settings, plain: aiohttp.ClientSession
) -> None:
    key, body = _key(), b"\x89PNG" + bytes(MAX_BYTES)
    form = await storage.presign_post(key, "image/png", MAX_BYTES, 60)

    status = await post_upload(plain, {"upload_url": form.url, "fields": form.fields}, body, "x")

    if status < 300:  # moto stored it: the read refuses it before downloading it
        with pytest.raises(ObjectTooLarge, match=f"{MAX_BYTES + 4} bytes, over the {MAX_BYTES}"):
            await storage.read(settings.s3_bucket, key, MAX_BYTES)
    else:  # S3 (or a store that checks policies) refused the upload
        assert status == 400


async def test_a_wrong_content_type_is_refused_or_kept_apart_from_the_form(
    storage: Storage, settings: Settings, s3, plain: aiohttp.ClientSession
) -> None:
    key = _key()
    form = await storage.presign_post(key, "image/png", MAX_BYTES, 60)
    fields = {**form.fields, "Content-Type": "image/gif"}

    status = await post_upload(plain, {"upload_url": form.url, "fields": fields}, b"GIF89a", "x")

    if status < 300:  # moto ignores the policy; Image I/O reads the format from the bytes
        stored = await s3.head_object(Bucket=settings.s3_bucket, Key=key)
        assert stored["ContentType"] == "image/gif"
    else:
        assert status == 403


async def test_a_body_that_grows_after_the_head_is_refused_while_it_streams(
    storage: Storage, settings: Settings, s3
) -> None:
    key = _key()
    await s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=bytes(3 * 256 * 1024))
    what = f"object {key}"

    declared = await s3.get_object(Bucket=settings.s3_bucket, Key=key)
    with pytest.raises(ObjectTooLarge, match="786432 bytes, over the 300000 limit"):
        await _bounded(declared, 300_000, what)

    undeclared = await s3.get_object(Bucket=settings.s3_bucket, Key=key)
    undeclared.pop("ContentLength")  # as if the length were unknown: counted while streaming
    with pytest.raises(ObjectTooLarge, match="grew past the 300000-byte limit while read"):
        await _bounded(undeclared, 300_000, what)
    assert (
        len(await _bounded(await s3.get_object(Bucket=settings.s3_bucket, Key=key), 1 << 20, what))
        == 786_432
    )
