"""Service logs on the real pipeline: every line is a JSON object naming its process, and every
line about a run's event names the run, the step and the instance (and, in a worker, the run's
trace)."""

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.dev.launcher import everything
from planstream.dev.samples.generator import generate
from planstream.settings import Settings

IDENTITY = ("ts", "level", "logger", "msg", "service", "instance_id")
# A clean run, and one whose model call hangs (timeouts, retries: warnings on the way).
SCENARIOS = ("correct", "hang")
# The processes whose lines about a run come from handling its events.
HANDLERS = ("image_io", "info_worker", "comparison_worker", "supervisor", "render_worker")
RUN_EVENTS = ("RunReviewed",)  # events about a run, not one of its steps


@pytest.fixture(scope="module")
async def views(ingress_url: str, settings: Settings, user_token: str) -> list[dict[str, Any]]:
    """Each scenario's run, through the real processes, followed to its end."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"test-{seed}"
    manifest = generate(
        folder, seed=seed, scenarios=SCENARIOS, count=len(SCENARIOS), max_attempts=3
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)
        run_ids = []
        for sample in manifest.samples:
            upload = await client.upload((folder / sample.file).read_bytes(), "image/png")
            run_id = await client.create_run(upload, request_text=sample.request_text)
            await client.request_step(run_id, 0)
            run_ids.append(run_id)
        deadline = time.monotonic() + 180
        while True:
            views = [await client.show_run(run_id) for run_id in run_ids]
            if all(v["status"] in ("completed", "blocked", "failed") for v in views):
                return views
            assert time.monotonic() < deadline, [v["status"] for v in views]
            await asyncio.sleep(0.5)


def _entries(logs: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every line of every service log, parsed (``path:line`` first); a line that is no JSON
    object fails the test where it stands."""
    entries = []
    for path in sorted(logs.glob("*.log")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            place = f"{path.name}:{number}"
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"{place} is not JSON: {line[:300]!r}")
            assert isinstance(entry, dict), f"{place}: {line[:300]!r}"
            entries.append((place, entry))
    return entries


def test_every_service_line_is_json_with_the_process_identity(
    views: list[dict[str, Any]], logs: Path
) -> None:
    entries = _entries(logs)
    services = {child.name for child in everything()}
    assert {place.split(".log:")[0] for place, _ in entries} == services
    for place, entry in entries:
        missing = [key for key in IDENTITY if not entry.get(key)]
        assert not missing, f"{place} lacks {missing}: {entry}"
        assert entry["service"] == place.split(".log:")[0], place
        # A healthy run logs no secret: anything redacted was one, or a redaction gone wrong.
        assert "[redacted]" not in json.dumps(entry), f"{place}: {entry}"
    assert any(entry["msg"].endswith(": Ready") for _, entry in entries)


def test_every_line_about_a_run_names_its_run_step_and_instance(
    views: list[dict[str, Any]], logs: Path
) -> None:
    traces = {view["run_id"]: view["trace_id"] for view in views}
    about: dict[str, int] = {}
    for place, entry in _entries(logs):
        # Any run's, this module's or another's of the session; a review is about the run's
        # block, so the lines handling a RunReviewed event name no step.
        if "run_id" in entry and entry.get("event") not in RUN_EVENTS:
            assert isinstance(entry.get("step_id"), int), f"{place} names no step: {entry}"
        named = [run_id for run_id in traces if run_id in json.dumps(entry)]
        if not named:
            continue
        assert entry.get("run_id") in named, f"{place}: a line about {named} says {entry}"
        if entry["service"] in HANDLERS:
            assert entry.get("trace_id") == traces[entry["run_id"]], f"{place}: {entry}"
        about[entry["service"]] = about.get(entry["service"], 0) + 1
    assert set(HANDLERS) <= set(about), about
