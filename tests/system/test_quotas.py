"""Per-subject quotas at a second ingress (a replica on the session's database) with low limits:
refused with 429 and Retry-After, counted in PostgreSQL so concurrent requests cannot overrun."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from planstream.adapters.http.client import post_upload
from planstream.adapters.http.tokens import mint
from planstream.dev.isolation import free_port
from planstream.dev.launcher import ingress, running
from planstream.settings import Settings
from tests.images import floor_plan_png


@pytest.fixture(scope="module")
def strict(settings: Settings, logs: Path) -> Iterator[tuple[str, Settings]]:
    """An ingress replica allowing 3 runs a minute and 2 pending or running at once."""
    strict = settings.with_overrides(
        ingress_port=free_port(), quota_runs_per_minute=3, quota_active_runs=2
    )
    with running(strict, [ingress()], logs / "quotas"):
        yield f"http://127.0.0.1:{strict.ingress_port}", strict


async def _upload(http: aiohttp.ClientSession, base: str, auth: dict[str, str]) -> str:
    url = f"{base}/v1/uploads"
    async with http.post(url, json={"content_type": "image/png"}, headers=auth) as answer:
        slot = await answer.json()
    async with aiohttp.ClientSession() as storage:
        assert await post_upload(storage, slot, floor_plan_png(), "image/png") == 204
    upload_id: str = slot["upload_id"]
    return upload_id


async def _create(http: aiohttp.ClientSession, base: str, auth: dict[str, str], upload: str):
    async with http.post(f"{base}/v1/runs", json={"upload_id": upload}, headers=auth) as answer:
        return answer.status, answer.headers.get("Retry-After"), await answer.json()


async def test_runs_over_the_minute_quota_get_429_with_retry_after(strict) -> None:
    base, settings = strict
    auth = {"Authorization": f"Bearer {mint(settings, 'quota-minute')}"}
    async with aiohttp.ClientSession() as http:
        uploads = [await _upload(http, base, auth) for _ in range(10)]
        # Ten at once, from one subject: the lock on the subject lets exactly the quota through.
        answers = await asyncio.gather(*(_create(http, base, auth, u) for u in uploads))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses.count(201) == 2  # the active-runs quota (2) bites first
        assert statuses.count(429) == 8
        refused = [(after, body) for status, after, body in answers if status == 429]
        assert all(after is not None and int(after) >= 1 for after, _ in refused)
        assert all("quota" in body["error"] for _, body in refused)
        other = {"Authorization": f"Bearer {mint(settings, 'quota-someone-else')}"}
        status, _, _ = await _create(http, base, other, await _upload(http, base, other))
        assert status == 201  # one subject's quota is its own


async def test_the_runs_a_minute_quota_counts_finished_runs_too(strict, pool) -> None:
    base, settings = strict
    auth = {"Authorization": f"Bearer {mint(settings, 'quota-rate')}"}
    async with aiohttp.ClientSession() as http:
        created = []
        for _ in range(3):
            status, _, body = await _create(http, base, auth, await _upload(http, base, auth))
            assert status == 201, body
            created.append(body["run_id"])
            # The run ends at once: only the runs-a-minute quota is left to refuse the fourth.
            await pool.execute(
                "UPDATE pipeline_runs SET status = 'completed' WHERE run_id = $1", body["run_id"]
            )
        status, after, body = await _create(http, base, auth, await _upload(http, base, auth))
        assert status == 429, body
        assert "3 runs a minute" in body["error"]
        assert 1 <= int(after) <= 61
