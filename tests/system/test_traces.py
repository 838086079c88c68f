"""Traces on the real pipeline: every event of a run, on every topic it crossed, carries a W3C
traceparent in the run's trace; the run keeps that trace (the one of the request that created
it, continued from the caller's header) and its view names it."""

import asyncio
import random
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.tracing import TRACEPARENT, trace_id_of
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import SampleEntry
from planstream.settings import Settings
from tests.stackkit import read_topic
from topics import (
    CATALOGUE,
    COMPARISON_COMPLETED,
    DECISION_MADE,
    IMAGE_READY,
    INFO_EXTRACTED,
    RENDER_REQUESTED,
    RUN_COMPLETED,
    STEP_REQUESTED,
)

CALLER_TRACE = secrets.token_hex(16)
# What a completed run crosses at least (its seven steps: analysis, then renders).
CROSSED = {
    spec.name
    for spec in (
        STEP_REQUESTED,
        IMAGE_READY,
        INFO_EXTRACTED,
        COMPARISON_COMPLETED,
        DECISION_MADE,
        RENDER_REQUESTED,
        RUN_COMPLETED,
    )
}


@pytest.fixture(scope="module")
def sample(settings: Settings) -> tuple[Path, SampleEntry]:
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"test-{seed}"
    manifest = generate(folder, seed=seed, scenarios=("correct",), count=1, max_attempts=3)
    return folder, manifest.samples[0]


@pytest.fixture(scope="module")
async def finished(
    ingress_url: str, sample: tuple[Path, SampleEntry], user_token: str
) -> dict[str, Any]:
    """A run created by a caller that sent its own traceparent, followed to its end."""
    folder, entry = sample
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)
        upload = await client.upload((folder / entry.file).read_bytes(), "image/png")
        body = {"upload_id": upload, "ratio": "4:3", "quality_post_step4": "2K"}
        if entry.request_text is not None:
            body["request_text"] = entry.request_text
        caller = {
            TRACEPARENT: f"00-{CALLER_TRACE}-{secrets.token_hex(8)}-01",
            "Authorization": f"Bearer {user_token}",
        }
        async with session.post(f"{ingress_url}/v1/runs", json=body, headers=caller) as answer:
            assert answer.status == 201, await answer.text()
            run_id = (await answer.json())["run_id"]
        await client.request_step(run_id, 0)  # a request of its own trace: linked, not joined
        deadline = time.monotonic() + 180
        while True:
            view = await client.show_run(run_id)
            if view["status"] in ("completed", "blocked", "failed"):
                return view
            assert time.monotonic() < deadline, f"run {run_id} did not finish: {view['status']}"
            await asyncio.sleep(0.5)


def test_the_run_keeps_the_trace_its_caller_started(finished: dict[str, Any]) -> None:
    assert finished["status"] == "completed"
    assert finished["trace_id"] == CALLER_TRACE


async def test_every_event_of_the_run_is_in_the_run_trace(
    finished: dict[str, Any], settings: Settings
) -> None:
    key = finished["run_id"].encode()
    traces: dict[str, list[str | None]] = {}
    for spec in CATALOGUE:
        for record in await read_topic(settings, spec):
            if record.key == key:
                value = dict(record.headers).get(TRACEPARENT)
                traces.setdefault(spec.name, []).append(
                    trace_id_of(value.decode("ascii")) if value is not None else None
                )
    assert set(traces) >= CROSSED, sorted(traces)
    wrong = {topic: ids for topic, ids in traces.items() if set(ids) != {finished["trace_id"]}}
    assert not wrong, wrong
