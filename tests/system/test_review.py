"""A person decides on a blocked run: approve, retry with a fresh budget, or reject."""

import asyncio
import random
import time

import aiohttp
import pytest

from planstream.adapters.http.client import IngressError, PlanstreamClient
from planstream.dev.samples.generator import generate
from planstream.settings import Settings


@pytest.fixture
async def client(ingress_url: str):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield PlanstreamClient(ingress_url, session)


async def _blocked_run(client: PlanstreamClient, settings: Settings) -> str:
    """A run whose model always misses the bathroom: blocked after its 3 attempts."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"review-{seed}"
    [sample] = generate(folder, seed=seed, scenarios=("missing_room",), count=1).samples
    upload = await client.upload((folder / sample.file).read_bytes(), "image/png")
    run_id = await client.create_run(upload, request_text=sample.request_text)
    await client.request_step(run_id, 0)
    return await _until(client, run_id, "blocked")


async def _until(client: PlanstreamClient, run_id: str, *statuses: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = await client.show_run(run_id)
        if view["status"] in statuses:
            return run_id
        await asyncio.sleep(0.5)
    raise AssertionError(f"run {run_id} is {view['status']}, not {statuses}")


def _step0(view: dict) -> list[tuple[int, str, str]]:
    return [
        (d["attempt"], d["decision"], d["decided_by"])
        for d in view["decisions"]
        if d["step_id"] == 0
    ]


async def test_retry_gives_the_step_a_fresh_budget(client, settings: Settings) -> None:
    run_id = await _blocked_run(client, settings)
    await client.review(run_id, "retry", "re-scanned the plan", "ana")
    await asyncio.sleep(1)
    await _until(client, run_id, "blocked")
    view = await client.show_run(run_id)
    while len(_step0(view)) < 7:
        await asyncio.sleep(0.5)
        view = await client.show_run(run_id)
    assert _step0(view) == [
        (1, "retry", "supervisor"),
        (2, "retry", "supervisor"),
        (3, "block", "supervisor"),
        (3, "retry", "reviewer"),
        (4, "retry", "supervisor"),
        (5, "retry", "supervisor"),
        (6, "block", "supervisor"),
    ]
    extractions = [c for c in view["model_calls"] if c["purpose"] == "extract"]
    assert len(extractions) == 6  # 3 per budget, never more


async def test_reject_ends_the_run(client, settings: Settings) -> None:
    run_id = await _blocked_run(client, settings)
    await client.review(run_id, "reject", "not a plan we can furnish", "ana")
    await _until(client, run_id, "rejected")
    view = await client.show_run(run_id)
    assert view["block_reason"] == "rejected_by_reviewer"
    with pytest.raises(IngressError, match="409"):
        await client.review(run_id, "approve", "changed my mind", "ana")


async def test_approve_lets_the_run_go_on(client, settings: Settings) -> None:
    run_id = await _blocked_run(client, settings)
    await client.review(run_id, "approve", "the bathroom is outside the sheet", "ana")
    await _until(client, run_id, "completed")
    view = await client.show_run(run_id)
    assert [d["step_id"] for d in view["decisions"] if d["decision"] == "proceed"] == list(range(7))
