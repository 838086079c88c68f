"""The migration from the old run-pipeline-step function on the real stack (docs/migration.md):
the routing flags changed with `planstream flags`, the legacy bridge calling the stack's
scripted old function, and runs submitted through the ingress like a user's.

- steps 1-6 routed to legacy: runs complete with step 0 on planstream's services and steps 1-6
  under ``legacy``, one decision per step; a run routed step by step across both paths too;
- the rollback drill under load: runs flowing, ``use_new_pipeline=false`` then ``true``; new
  step attempts follow each flip within the cache period, every run ends, no step attempt is
  lost or done twice (the fault suite's checkers, both paths), the history has both changes;
- the seed's Test 2: a 4K run through all 7 steps on the new path, no WORKER_LIMIT; the same
  tier on the old function hits WORKER_LIMIT, and the report counts it;
- the old function runs a double click twice; through the bridge, a step attempt runs once.
"""

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.kafka import EventPublisher
from planstream.adapters.legacy import request_body
from planstream.adapters.postgres.path_report import read_jobs, summarise
from planstream.adapters.postgres.routes import Routes
from planstream.dev.chaos.checkers import check_database
from planstream.dev.launcher import child_env
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest, SampleEntry
from planstream.domain.events import LegacyStepRequested, step_key
from planstream.domain.ids import new_id
from planstream.settings import Settings
from tests.conformance.routes import RESET
from topics import LEGACY_REQUESTED

NEW_SERVICES = {"image_io", "info_worker", "comparison_worker", "supervisor", "render_worker"}
TERMINAL = ("completed", "blocked", "failed", "rejected")
_MODEL_DOWN = {"MODEL_UNAVAILABLE"}
SLACK_S = 0.5
"""Between a flag change's commit and the first step attempt bound to follow it, beyond the cache
period: the processes' clocks and PostgreSQL's are the same machine's."""

Flags = Callable[..., Awaitable[str]]


@pytest.fixture(scope="module")
def samples(settings: Settings) -> tuple[Path, Manifest]:
    """Correct plans the stack's model server knows (a new seed: new images)."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"migration-{seed}"
    return folder, generate(folder, seed=seed, scenarios=("correct",), count=40)


@pytest.fixture
async def flags(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Flags]:
    """``planstream flags ...`` as an operator runs it; every flag back to its default after."""

    async def run(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "planstream.cli",
            "flags",
            *args,
            env=child_env(settings, {"USER": "drill-operator"}),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    yield run
    await Routes(pool).set_flags(RESET, operator="tests", reason="back to the defaults")
    await asyncio.sleep(settings.route_cache_s + SLACK_S)  # every process reads them again


class Runs:
    """Submits the samples as runs through the ingress and follows them to their end."""

    def __init__(self, client: PlanstreamClient, samples: tuple[Path, Manifest]) -> None:
        self._client = client
        self._folder, manifest = samples
        self._left = list(manifest.samples)

    async def start(self, quality: str = "2K") -> str:
        sample: SampleEntry = self._left.pop()
        image = (self._folder / sample.file).read_bytes()
        upload = await self._client.upload(image, "image/png")
        run_id = await self._client.create_run(
            upload, request_text=sample.request_text, quality_post_step4=quality
        )
        await self._client.request_step(run_id, 0)
        return run_id

    async def finished(self, run_id: str, timeout_s: float = 240) -> dict[str, Any]:
        """The run once it ended and every job of it closed (the last step's job is closed just
        after its decision ends the run)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = await self._client.show_run(run_id)
            open_jobs = [j for j in view["jobs"] if j["status"] in ("pending", "running")]
            if view["status"] in TERMINAL and not open_jobs:
                return view
            await asyncio.sleep(0.5)
        raise AssertionError(f"run {run_id} did not end: {view['status']}, {view['decisions']}")

    async def run(self, quality: str = "2K") -> dict[str, Any]:
        return await self.finished(await self.start(quality))


@pytest.fixture
async def runs(
    ingress_url: str, samples: tuple[Path, Manifest], user_token: str
) -> AsyncIterator[Runs]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Runs(PlanstreamClient(ingress_url, session, user_token), samples)


async def _executions(settings: Settings) -> list[dict[str, Any]]:
    """What the scripted old function ran for this session's database."""
    base = settings.legacy_url.split("/projects/", 1)[0]
    project = settings.dsn.rsplit("/", 1)[1]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/_scripted/projects/{project}/executions") as response,
    ):
        assert response.status == 200
        found: list[dict[str, Any]] = await response.json()
        return found


async def _figures(pool: asyncpg.Pool, run_ids: list[str]) -> dict[tuple[str, int], Any]:
    rows = await read_jobs(pool, None, run_ids)
    return {(f.path, f.step): f.as_dict() for f in summarise(rows)}


async def test_steps_1_to_6_run_on_the_old_function(
    settings: Settings, pool: asyncpg.Pool, flags: Flags, runs: Runs
) -> None:
    changed = await flags("route", "--steps", "1-6", "--to", "legacy", "--reason", "phase 2")
    assert changed.splitlines() == [f"route.step{s}: new -> legacy" for s in range(1, 7)]
    await asyncio.sleep(settings.route_cache_s + SLACK_S)

    views = await asyncio.gather(*(runs.run() for _ in range(3)))

    for view in views:
        assert view["status"] == "completed", view["decisions"]
        by_step: dict[int, set[str]] = {}
        for job in view["jobs"]:
            by_step.setdefault(job["step_id"], set()).add(job["service"])
        assert by_step[0] == NEW_SERVICES - {"render_worker"}
        assert all(by_step[step] == {"legacy"} for step in range(1, 7)), by_step
        decided = [(d["step_id"], d["attempt"], d["decided_by"]) for d in view["decisions"]]
        assert decided == [(0, 1, "supervisor")] + [(s, 1, "legacy") for s in range(1, 7)]
        renders = [a for a in view["artifacts"] if a["kind"] == "render_image"]
        assert sorted(a["step_id"] for a in renders) == list(range(1, 7))
        assert {a["metadata"]["made_by"] for a in renders} == {"run-pipeline-step"}
        legacy_jobs = [j for j in view["jobs"] if j["service"] == "legacy"]
        assert all(j["status"] == "completed" and j["processing_time_ms"] for j in legacy_jobs)
        assert all(j["result_ref"]["calls"][0]["code"] == "OK" for j in legacy_jobs)
    run_ids = [view["run_id"] for view in views]
    ran = [
        (e["run_id"], e["step_id"]) for e in await _executions(settings) if e["run_id"] in run_ids
    ]
    assert sorted(ran) == sorted((r, s) for r in run_ids for s in range(1, 7))  # each once
    figures = await _figures(pool, run_ids)
    assert sorted(figures) == [("legacy", s) for s in range(1, 7)] + [("new", 0)]
    for step in range(1, 7):
        legacy = figures["legacy", step]
        assert (legacy["requests"], legacy["legacy_calls"], legacy["duplicate_jobs"]) == (3, 3, 0)
        assert legacy["errors"] == {"WORKER_LIMIT": 0}
        assert 0 < legacy["p50_bytes"] <= legacy["max_bytes"] < 1_024  # ids only
    assert figures["new", 0]["requests"] == 3
    assert figures["new", 0]["max_bytes"] < settings.max_event_bytes


async def test_a_run_moves_between_the_paths_step_by_step(
    settings: Settings, flags: Flags, runs: Runs
) -> None:
    """Steps 0 and 3 on the old function, the others on planstream: each path starts from the
    image the other made (step 1 from an upload Image I/O never measured)."""
    await flags("route", "--steps", "0,3", "--to", "legacy", "--reason", "mixed")
    await asyncio.sleep(settings.route_cache_s + SLACK_S)

    view = await runs.run()

    assert view["status"] == "completed", [_brief(d) for d in view["decisions"]]
    deciders = [(d["step_id"], d["decided_by"]) for d in view["decisions"]]
    legacy = {0, 3}
    assert deciders == [(s, "legacy" if s in legacy else "supervisor") for s in range(7)]
    for job in view["jobs"]:
        assert (job["service"] == "legacy") == (job["step_id"] in legacy), job["service"]
    renders = {
        a["step_id"]: a["metadata"] for a in view["artifacts"] if a["kind"] == "render_image"
    }
    assert renders[3]["made_by"] == "run-pipeline-step"
    assert all(renders[s]["within_band"] for s in (1, 2, 4, 5, 6))  # Image I/O checked them


async def test_the_rollback_drill_under_load(
    settings: Settings, pool: asyncpg.Pool, flags: Flags, runs: Runs
) -> None:
    started: list[str] = []
    flowing = True

    async def load() -> None:
        while flowing:
            started.append(await runs.start())
            await asyncio.sleep(2.0)

    feeder = asyncio.create_task(load())
    try:
        await asyncio.sleep(5)
        await flags("set", "use_new_pipeline=false", "--reason", "drill: roll back")
        await asyncio.sleep(10)
        await flags("set", "use_new_pipeline=true", "--reason", "drill: forward again")
        await asyncio.sleep(8)
    finally:
        flowing = False
        await feeder
    views = [await runs.finished(run_id) for run_id in started]

    # Every run ends; one that does not complete may only have been blocked by the shared model
    # server's timeouts under the machine's load (MODEL_UNAVAILABLE), never by the routing.
    unfinished = [
        (v["run_id"], v["status"], v["block_reason"], [_brief(d) for d in v["decisions"]])
        for v in views
        if v["status"] != "completed"
    ]
    assert all(
        status == "blocked" and {rule for *_, rules in brief for rule, _ in rules} <= _MODEL_DOWN
        for _, status, _, brief in unfinished
    ), unfinished
    assert len(unfinished) < len(views) / 2, unfinished
    async with pool.acquire() as conn:
        figures = await check_database(conn, started, max_attempts=settings.max_attempts)
        routed = await conn.fetch(
            "SELECT run_id, step_id, attempt, route, requested_at FROM pipeline_step_routes"
            " WHERE run_id = ANY($1)",
            started,
        )
    assert figures.runs_terminal == figures.runs_started == len(started)
    assert {c.name: c.value for c in figures.checks if c.value} == {}, figures.checks
    history = await Routes(pool).history(2)
    assert [(c.flag, c.old, c.new, c.operator) for c in reversed(history)] == [
        ("use_new_pipeline", "true", "false", "drill-operator"),
        ("use_new_pipeline", "false", "true", "drill-operator"),
    ]
    back, forward = history[1].changed_at, history[0].changed_at
    settled = timedelta(seconds=settings.route_cache_s + SLACK_S)
    legacy_window = [r for r in routed if back + settled < r["requested_at"] < forward]
    new_window = [r for r in routed if r["requested_at"] > forward + settled]
    assert legacy_window and all(r["route"] == "legacy" for r in legacy_window)
    assert new_window and all(r["route"] == "new" for r in new_window)
    assert all(r["route"] == "new" for r in routed if r["requested_at"] < back)
    jobs: dict[tuple[str, int, int], set[str]] = {}
    for view in views:
        for job in view["jobs"]:
            attempt = (view["run_id"], job["step_id"], job["attempt"])
            jobs.setdefault(attempt, set()).add(job["service"])
    for row in routed:  # each step attempt ran on the path it was requested on, and only there
        services = jobs.get((row["run_id"], row["step_id"], row["attempt"]), set())
        if row["route"] == "legacy":
            assert services == {"legacy"}, dict(row)
        else:
            assert services and "legacy" not in services, dict(row)
    legacy = {
        step_key(r["run_id"], r["step_id"], r["attempt"]) for r in routed if r["route"] == "legacy"
    }
    calls = {
        step_key(v["run_id"], j["step_id"], j["attempt"]): [
            c["code"] for c in j["result_ref"]["calls"]
        ]
        for v in views
        for j in v["jobs"]
        if j["service"] == "legacy"
    }
    ran = Counter(
        e["idempotency_key"] for e in await _executions(settings) if e["run_id"] in started
    )
    assert set(ran) == legacy  # the old function ran every step attempt routed to it ...
    for key, times in ran.items():  # ... once, but where a call timed out and was made again
        unsure = sum(code in ("TIMEOUT", "UNREACHABLE") for code in calls[key])
        assert times <= 1 + unsure, (key, times, calls[key])


def _brief(decision: dict[str, Any]) -> tuple[Any, ...]:
    """A decision in a line: step, attempt, who, what, and its failures' rules and details."""
    checks = decision["rule_checks"] or {}
    rules = [(f["rule"], f["detail"][:160]) for f in checks.get("failures", [])]
    who = decision["decided_by"]
    return decision["step_id"], decision["attempt"], who, decision["decision"], rules


async def test_a_4k_run_on_the_new_path_has_no_worker_limit(
    settings: Settings, pool: asyncpg.Pool, flags: Flags, runs: Runs
) -> None:
    """The seed's Test 2: 4K quality, all 7 steps on the new path, 0 WORKER_LIMIT errors."""
    new = await runs.run("4K")

    assert new["status"] == "completed", new["decisions"]
    assert [d["step_id"] for d in new["decisions"]] == list(range(7))
    renders = {a["step_id"]: a["metadata"] for a in new["artifacts"] if a["kind"] == "render_image"}
    assert all(max(renders[s]["width_px"], renders[s]["height_px"]) == 4096 for s in (4, 5, 6))
    figures = await _figures(pool, [new["run_id"]])
    assert sorted(figures) == [("new", step) for step in range(7)]
    assert all(f["errors"]["WORKER_LIMIT"] == 0 for f in figures.values())

    # The same tier on the old function: its workers run out of memory at the first 4K render.
    await flags("route", "--steps", "4-6", "--to", "legacy", "--reason", "phase 2 at 4K")
    await asyncio.sleep(settings.route_cache_s + SLACK_S)
    old = await runs.run("4K")

    assert (old["status"], old["block_reason"]) == ("blocked", "retry_budget_exhausted")
    step4 = [
        (d["attempt"], d["decided_by"], d["decision"])
        for d in old["decisions"]
        if d["step_id"] == 4
    ]
    assert step4 == [(1, "legacy", "retry"), (2, "legacy", "retry"), (3, "legacy", "block")]
    figures = await _figures(pool, [old["run_id"]])
    assert figures["legacy", 4]["errors"]["WORKER_LIMIT"] == 3
    assert figures["legacy", 4]["legacy_calls"] == 3  # WORKER_LIMIT is never called again
    report = await flags("report")
    print(report)  # the figures, for the record (pytest -s)
    assert "WORKER_LIMIT=3" in report and report.splitlines()[0].startswith("path")
    shown = (await flags("show")).splitlines()
    assert "effective: 0 new, 1 new, 2 new, 3 new, 4 legacy, 5 legacy, 6 legacy" in shown
    assert "drill-operator  route.step4 new -> legacy  (phase 2 at 4K)" in "\n".join(shown)


async def test_the_old_function_runs_a_double_click_twice_the_bridge_once(
    settings: Settings, pool: asyncpg.Pool, flags: Flags, runs: Runs
) -> None:
    await flags("set", "use_new_pipeline=false", "--reason", "phase 1")
    await asyncio.sleep(settings.route_cache_s + SLACK_S)
    view = await runs.run()
    assert view["status"] == "completed" and {j["service"] for j in view["jobs"]} == {"legacy"}
    run_id = view["run_id"]
    source = next(a for a in view["artifacts"] if a["kind"] == "source_image")["artifact_id"]
    request = LegacyStepRequested(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        step_id=0,
        attempt=9,
        idempotency_key=step_key(run_id, 0, 9),
        input_artifact_ids=[source],
        quality="2K",
        requested_by="operator",
    )
    headers = {
        settings.legacy_auth_header: f"Bearer {settings.legacy_auth_token}",
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as session:

        async def click() -> int:
            async with session.post(
                settings.legacy_url, data=request_body(request), headers=headers
            ) as response:
                return response.status

        assert await asyncio.gather(click(), click()) == [200, 200]
        big = json.dumps({"padding": "x" * settings.legacy_server_max_request_bytes}).encode()
        async with session.post(settings.legacy_url, data=big, headers=headers) as response:
            assert response.status == 546
            assert (await response.json())["code"] == "WORKER_LIMIT"
    twice = [
        e for e in await _executions(settings) if e["idempotency_key"] == request.idempotency_key
    ]
    assert len(twice) == 2  # the old behaviour: no idempotency

    through = request.model_copy(
        update={"attempt": 8, "idempotency_key": step_key(run_id, 0, 8), "event_id": new_id("evt")}
    )
    publisher = EventPublisher(settings, "tests")
    await publisher.start()
    try:
        for _ in range(2):  # the same request delivered twice
            await publisher.publish(LEGACY_REQUESTED, through)
    finally:
        await publisher.stop()

    async def decided() -> bool:
        key = through.idempotency_key
        found = await pool.fetchval(
            "SELECT count(*) FROM pipeline_decisions WHERE idempotency_key = $1", key
        )
        return bool(found)

    deadline = time.monotonic() + 60
    while not await decided():
        assert time.monotonic() < deadline, "the bridge never decided the redelivered request"
        await asyncio.sleep(0.3)
    await asyncio.sleep(2)  # the second delivery, had it run, would have called by now
    once = [
        e for e in await _executions(settings) if e["idempotency_key"] == through.idempotency_key
    ]
    assert len(once) == 1
