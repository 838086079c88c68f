"""The HTTP ingress against the real stack: limits, validation, uploads and idempotent steps."""

import asyncio
import json

import aiohttp
import pytest

from planstream.adapters.http.client import post_upload
from planstream.settings import Settings
from tests.images import floor_plan_png
from tests.stackkit import read_topic
from topics import STEP_REQUESTED


@pytest.fixture
async def http(user_token: str) -> aiohttp.ClientSession:
    """A session that calls the API as a user (the presigned POST goes through another)."""
    auth = {"Authorization": f"Bearer {user_token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth) as session:
        yield session


async def _post(http: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[int, dict]:
    async with http.post(url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def _new_run(http: aiohttp.ClientSession, ingress_url: str, **run: object) -> str:
    status, slot = await _post(
        http, f"{ingress_url}/v1/uploads", json={"content_type": "image/png"}
    )
    assert status == 201, slot
    async with aiohttp.ClientSession() as storage:  # no Authorization header for S3
        assert await post_upload(storage, slot, floor_plan_png(), "image/png") == 204
    status, created = await _post(
        http, f"{ingress_url}/v1/runs", json={"upload_id": slot["upload_id"], **run}
    )
    assert status == 201, created
    return created["run_id"]


async def test_a_body_over_10_kb_is_refused_with_413(http, ingress_url: str) -> None:
    body = json.dumps({"content_type": "image/png", "pad": "x" * 10_300})
    status, answer = await _post(
        http, f"{ingress_url}/v1/uploads", data=body, headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert "10240-byte limit" in answer["error"]


async def test_a_chunked_body_over_10_kb_is_refused_with_413(http, ingress_url: str) -> None:
    async def chunks():
        for _ in range(12):
            yield b"x" * 1024

    status, _ = await _post(http, f"{ingress_url}/v1/runs", data=chunks())
    assert status == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content_type": "image/png", "image": "iVBORw0KGgo="}, "image"),
        ({"content_type": "application/pdf"}, "content_type"),
    ],
)
async def test_bad_upload_bodies_are_refused_naming_the_field(
    http, ingress_url, body, field
) -> None:
    status, answer = await _post(http, f"{ingress_url}/v1/uploads", json=body)
    assert status == 422
    assert answer["field"] == field


@pytest.mark.parametrize(
    ("body", "field", "phrase"),
    [
        ({"upload_id": "data:image/png;base64,iVBORw0KGgo="}, "upload_id", "pattern"),
        ({"upload_id": "upl_" + "0" * 32, "extra": 1}, "extra", "Extra inputs"),
        ({"upload_id": "upl_" + "0" * 32, "quality_post_step4": "8K"}, "quality_post_step4", ""),
        (
            {"upload_id": "upl_" + "0" * 32, "request_text": "see iVBORw0KGgoAAAANSUhEUgAA"},
            "request_text",
            "base64",
        ),
    ],
)
async def test_bad_run_bodies_are_refused_naming_the_field(
    http, ingress_url, body, field, phrase
) -> None:
    status, answer = await _post(http, f"{ingress_url}/v1/runs", json=body)
    assert status == 422, answer
    assert answer["field"] == field
    assert phrase in answer["error"]


async def test_request_text_over_2000_characters_is_refused(http, ingress_url: str) -> None:
    with pytest.raises(AssertionError, match="2000 limit"):
        await _new_run(http, ingress_url, request_text="three bedrooms please. " * 90)


@pytest.mark.parametrize(
    ("key", "phrase"),
    [(None, "is required"), ("http://x/y", "must match"), ("a" * 70 + "Z9", "base64-like")],
)
async def test_step_requests_need_a_plain_idempotency_key(http, ingress_url, key, phrase) -> None:
    run_id = await _new_run(http, ingress_url)
    headers = {} if key is None else {"Idempotency-Key": key}
    status, answer = await _post(http, f"{ingress_url}/v1/runs/{run_id}/steps/0", headers=headers)
    assert status == 422
    assert answer["field"] == "Idempotency-Key"
    assert phrase in answer["error"]


async def test_only_step_0_is_requested_by_clients(http, ingress_url: str) -> None:
    run_id = await _new_run(http, ingress_url)
    status, answer = await _post(
        http, f"{ingress_url}/v1/runs/{run_id}/steps/3", headers={"Idempotency-Key": "k-1"}
    )
    assert (status, answer["field"]) == (422, "step_id")


async def test_twenty_identical_requests_make_one_job_and_one_event(
    http, ingress_url: str, settings: Settings, pool
) -> None:
    run_id = await _new_run(http, ingress_url, request_text="Two bedrooms and a bathroom.")
    url = f"{ingress_url}/v1/runs/{run_id}/steps/0"
    answers = await asyncio.gather(
        *(_post(http, url, headers={"Idempotency-Key": "double-click"}) for _ in range(20))
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 19 + [202]
    assert len({answer["job_id"] for _, answer in answers}) == 1
    # Another key for the same step still finds the same job: a step attempt runs once.
    status, again = await _post(url=url, http=http, headers={"Idempotency-Key": "second-tab"})
    assert (status, again["job_id"], again["replayed"]) == (200, answers[0][1]["job_id"], True)
    jobs = await pool.fetch(
        "SELECT payload_ref FROM pipeline_jobs WHERE run_id = $1 AND service = 'image_io'", run_id
    )
    assert len(jobs) == 1
    # The job keeps the request it published, so the sweeper can deliver it again.
    assert jobs[0]["payload_ref"]["topic"] == STEP_REQUESTED.name
    assert jobs[0]["payload_ref"]["event"]["run_id"] == run_id
    published = [m for m in await read_topic(settings, STEP_REQUESTED) if m.key == run_id.encode()]
    assert len(published) == 1


async def test_an_unknown_upload_is_404_naming_the_field(http, ingress_url: str) -> None:
    body = {"upload_id": "upl_" + "0" * 32}
    status, answer = await _post(http, f"{ingress_url}/v1/runs", json=body)
    assert (status, answer["field"]) == (404, "upload_id"), answer
    assert "does not exist" in answer["error"]


async def test_a_second_run_on_one_upload_is_409(http, ingress_url: str) -> None:
    run_id = await _new_run(http, ingress_url)
    async with http.get(f"{ingress_url}/v1/runs/{run_id}") as response:
        upload_id = (await response.json())["upload_id"]
    status, answer = await _post(http, f"{ingress_url}/v1/runs", json={"upload_id": upload_id})
    assert status == 409, answer
    assert f"upload {upload_id} already has a run" in answer["error"]


async def test_an_unknown_run_is_404(http, ingress_url: str) -> None:
    async with http.get(f"{ingress_url}/v1/runs/run_{'0' * 32}") as response:
        assert response.status == 404
