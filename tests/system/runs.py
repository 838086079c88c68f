"""Runs of one scenario through the real ingress, followed to a status: the tests' shared steps."""

import asyncio
import random
import time

from planstream.adapters.http.client import PlanstreamClient
from planstream.dev.samples.generator import generate
from planstream.settings import Settings

__all__ = ["scenario_run", "until"]


async def scenario_run(client: PlanstreamClient, settings: Settings, scenario: str) -> str:
    """A fresh sample of ``scenario`` uploaded, its run created and step 0 requested; its id."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"{scenario}-{seed}"
    [sample] = generate(folder, seed=seed, scenarios=(scenario,), count=1).samples
    upload = await client.upload((folder / sample.file).read_bytes(), "image/png")
    run_id = await client.create_run(upload, request_text=sample.request_text)
    await client.request_step(run_id, 0)
    return run_id


async def until(
    client: PlanstreamClient, run_id: str, *statuses: str, timeout_s: float = 120
) -> str:
    """Wait until the run's status is one of ``statuses``; its id (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = await client.show_run(run_id)
        if view["status"] in statuses:
            return run_id
        await asyncio.sleep(0.5)
    raise AssertionError(f"run {run_id} is {view['status']}, not {statuses}")
