"""Runs through the real ingress, followed to a status: the system tests' shared steps."""

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from planstream.adapters.http.client import PlanstreamClient
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import SampleEntry
from planstream.settings import Settings

__all__ = ["sample_run", "scenario_run", "until", "view_when"]

ENDED = ("completed", "blocked")


async def sample_run(client: PlanstreamClient, folder: Path, sample: SampleEntry) -> str:
    """``sample``'s plan uploaded, its run created and step 0 requested; the run's id."""
    upload = await client.upload((folder / sample.file).read_bytes(), "image/png")
    run_id = await client.create_run(upload, request_text=sample.request_text)
    await client.request_step(run_id, 0)
    return run_id


async def scenario_run(client: PlanstreamClient, settings: Settings, scenario: str) -> str:
    """A run of a fresh sample of ``scenario`` (see :func:`sample_run`); its id."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"{scenario}-{seed}"
    [sample] = generate(folder, seed=seed, scenarios=(scenario,), count=1).samples
    return await sample_run(client, folder, sample)


async def view_when(
    client: PlanstreamClient, run_id: str, *statuses: str, timeout_s: float = 120
) -> dict[str, Any]:
    """The run's view once its status is one of ``statuses`` (default: it completed or
    blocked); AssertionError naming where it stands after ``timeout_s``."""
    wanted = statuses or ENDED
    deadline = time.monotonic() + timeout_s
    while True:
        view = await client.show_run(run_id)
        if view["status"] in wanted:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {view['status']}, not {wanted}: {view}")
        await asyncio.sleep(0.5)


async def until(
    client: PlanstreamClient, run_id: str, *statuses: str, timeout_s: float = 120
) -> str:
    """Wait until the run's status is one of ``statuses``; its id."""
    await view_when(client, run_id, *statuses, timeout_s=timeout_s)
    return run_id
