"""Every process's metrics endpoint after runs went through the real pipeline.

The processes are the launcher's (``ingress_url``); their endpoints are found the way the local
Prometheus finds them, in the targets file ``running`` writes. After a completed, a retried and a
blocked run, each process must serve the series a healthy run produces and answer /healthz 200,
and the counts of effects must equal the rows PostgreSQL holds (each decision and each ended model
call counted once, a step time for every Supervisor decision).
"""

import asyncio
import json
import os
import random
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from planstream.adapters.http.client import PlanstreamClient
from planstream.dev.launcher import targets_dir
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest, SampleEntry
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings
from tests.stackkit import wait_for
from tests.system.runs import sample_run, view_when
from topics import (
    COMPARISON_COMPLETED,
    DECISION_MADE,
    IMAGE_READY,
    INFO_EXTRACTED,
    INFO_REQUESTED,
    RENDER_REQUESTED,
    RUN_BLOCKED,
    RUN_COMPLETED,
    STEP_REQUESTED,
)

SCENARIOS = ("correct", "flawed_then_correct", "not_a_floor_plan")
MODEL_PROCESSES = ("info_worker", "comparison_worker", "supervisor", "render_worker")
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def samples(settings: Settings) -> tuple[Path, Manifest]:
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"test-{seed}"
    manifest = generate(
        folder, seed=seed, scenarios=SCENARIOS, count=len(SCENARIOS), max_attempts=3
    )
    return folder, manifest


@pytest.fixture(scope="module")
async def baseline(ingress_url: str, settings: Settings, pool: asyncpg.Pool) -> dict[str, float]:
    """The counts before this module's runs (the session's processes served other tests)."""
    return await _counts(settings, pool)


@pytest.fixture(scope="module")
async def finished(
    ingress_url: str, samples: tuple[Path, Manifest], baseline: dict[str, float], user_token: str
) -> dict[str, dict[str, Any]]:
    """Each scenario's run view once it completed or blocked."""
    folder, manifest = samples
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)

        async def follow(sample: SampleEntry) -> tuple[str, dict[str, Any]]:
            run_id = await sample_run(client, folder, sample)
            return sample.scenario, await view_when(client, run_id, timeout_s=180)

        return dict(await asyncio.gather(*(follow(s) for s in manifest.samples)))


def _targets(settings: Settings) -> dict[str, str]:
    """{process: base URL} from this session's targets file."""
    namespace = settings.topic_namespace.rstrip(".") or "default"
    files = sorted(targets_dir(settings).glob(f"{namespace}-{os.getpid()}-*.json"))
    assert len(files) == 1, f"expected one targets file of this session, found {files}"
    entries = json.loads(files[0].read_text())
    return {e["labels"]["process"]: f"http://{e['targets'][0]}" for e in entries}


async def _scrape(base: str) -> Series:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _has(series: Series, name: str, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(n == name and wanted <= set(found) for n, found in series)


def _sum(series: Series, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, found), v in series.items() if n == name and wanted <= set(found))


async def _counts(settings: Settings, pool: asyncpg.Pool) -> dict[str, float]:
    """What the sink and the model callers counted, and the rows PostgreSQL holds."""
    targets = _targets(settings)
    sink = await _scrape(targets["decisions_sink"])
    model_calls = 0.0
    for name in MODEL_PROCESSES:
        model_calls += _sum(await _scrape(targets[name]), "planstream_model_calls_total")
    decided = "SELECT count(*) FROM pipeline_decisions"
    return {
        "decisions": _sum(sink, "planstream_decisions_total"),
        "timed": _sum(sink, "planstream_step_seconds_count"),
        "model_calls": model_calls,
        "decision_rows": await pool.fetchval(decided),
        "timed_rows": await pool.fetchval(f"{decided} WHERE decided_by = 'supervisor'"),
        "model_call_rows": await pool.fetchval(
            "SELECT count(*) FROM pipeline_model_calls WHERE outcome <> 'started'"
        ),
    }


@pytest.fixture(scope="module")
async def scraped(finished, settings: Settings) -> dict[str, Series]:
    """Every process's series, once the sink stored every decision and the sweeper swept."""
    targets = _targets(settings)
    assert sorted(targets) == sorted(["ingress", *WORKERS])
    await asyncio.sleep(2 * settings.sweeper_interval_s)  # a sweep after the runs ended
    return {name: await _scrape(base) for name, base in targets.items()}


def _expected(settings: Settings) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """What each process serves after a completed, a retried and a blocked run."""

    def step_service(name: str, consumes: str, publishes: str) -> list[tuple[str, dict[str, str]]]:
        return [
            ("planstream_events_consumed_total", {"service": name, "topic": consumes}),
            ("planstream_events_published_total", {"service": name, "topic": publishes}),
            ("planstream_event_bytes_count", {"topic": publishes}),
            ("planstream_handle_seconds_count", {"service": name}),
            ("planstream_rebalances_total", {"service": name}),
            ("planstream_work_pool_capacity", {"service": name}),
        ]

    def model(purpose: str, service: str) -> list[tuple[str, dict[str, str]]]:
        call = {"purpose": purpose}
        return [
            ("planstream_model_calls_total", {**call, "outcome": "answered"}),
            ("planstream_model_call_seconds_count", call),
            ("planstream_model_tokens_total", {**call, "direction": "input"}),
            ("planstream_model_tokens_total", {**call, "direction": "output"}),
            ("planstream_model_cost_usd_total", call),
            ("planstream_model_calls_in_flight", {"service": service}),
        ]

    group = f"planstream-supervisor{settings.app_id_suffix}"
    return {
        "ingress": [
            ("planstream_http_requests_total", {"route": "/v1/uploads", "status": "201"}),
            ("planstream_http_requests_total", {"route": "/v1/runs", "status": "201"}),
            ("planstream_http_requests_total", {"route": "/v1/runs/{run_id}/steps/{step_id}"}),
            ("planstream_http_requests_total", {"route": "/v1/runs/{run_id}", "status": "200"}),
            ("planstream_http_request_seconds_count", {"route": "/v1/runs/{run_id}"}),
            ("planstream_events_published_total", {"service": "ingress"}),
            ("planstream_event_bytes_count", {"topic": STEP_REQUESTED.name}),
        ],
        "image_io": step_service("image_io", STEP_REQUESTED.name, IMAGE_READY.name),
        "info_worker": [
            *step_service("info_worker", IMAGE_READY.name, INFO_EXTRACTED.name),
            ("planstream_events_consumed_total", {"topic": INFO_REQUESTED.name}),
            *model("extract", "info_worker"),
        ],
        "comparison_worker": [
            *step_service("comparison_worker", INFO_EXTRACTED.name, COMPARISON_COMPLETED.name),
            *model("compare", "comparison_worker"),
        ],
        "supervisor": [
            *step_service("supervisor", COMPARISON_COMPLETED.name, DECISION_MADE.name),
            *[
                ("planstream_events_published_total", {"service": "supervisor", "topic": t.name})
                for t in (RENDER_REQUESTED, INFO_REQUESTED, RUN_COMPLETED, RUN_BLOCKED)
            ],
            ("planstream_audits_total", {"outcome": "scored"}),
            ("planstream_audit_consistency_score_count", {}),
            *model("audit", "supervisor"),
        ],
        "render_worker": [
            *step_service("render_worker", RENDER_REQUESTED.name, STEP_REQUESTED.name),
            *model("render", "render_worker"),
        ],
        "decisions_sink": [
            ("planstream_events_consumed_total", {"topic": DECISION_MADE.name}),
            ("planstream_decisions_total", {"decision": "proceed", "block_reason": "none"}),
            ("planstream_decisions_total", {"decision": "retry", "block_reason": "none"}),
            ("planstream_decisions_total", {"decision": "block"}),
            ("planstream_rule_failures_total", {}),
            ("planstream_step_seconds_count", {"step": "0"}),
            ("planstream_step_seconds_count", {"step": "6"}),
            ("planstream_handle_seconds_count", {"service": "decisions_sink", "handler": "batch"}),
            ("planstream_rebalances_total", {"service": "decisions_sink"}),
        ],
        "sweeper": [
            ("planstream_consumer_lag_messages", {"group": group}),
            ("planstream_oldest_pending_job_seconds", {"service": "supervisor"}),
            ("planstream_runs_blocked", {"reason": "NOT_A_FLOOR_PLAN"}),
            ("planstream_handle_seconds_count", {"service": "sweeper", "handler": "sweep"}),
        ],
    }


def test_the_runs_ended_as_their_scenarios_expect(finished) -> None:
    assert {name: view["status"] for name, view in finished.items()} == {
        "correct": "completed",
        "flawed_then_correct": "completed",
        "not_a_floor_plan": "blocked",
    }


def test_every_process_serves_its_build_info(scraped) -> None:
    for process, series in scraped.items():
        assert _has(series, "planstream_build_info", service=process), process


def test_every_process_serves_the_series_a_healthy_run_produces(scraped, settings) -> None:
    missing = [
        (process, name, labels)
        for process, wanted in _expected(settings).items()
        for name, labels in wanted
        if not _has(scraped[process], name, **labels)
    ]
    assert missing == []


def test_the_checks_find_a_missing_series() -> None:
    """Self-test: the series check fails on a scrape that lacks what it looks for."""
    series: Series = {("planstream_runs_blocked", frozenset({("reason", "other")})): 0.0}
    assert not _has(series, "planstream_runs_blocked", reason="NOT_A_FLOOR_PLAN")
    assert _has(series, "planstream_runs_blocked", reason="other")


async def test_each_decision_and_model_call_is_counted_once(
    finished, baseline: dict[str, float], settings: Settings, pool: asyncpg.Pool
) -> None:
    """Counted where the effect happened: the decisions the sink stored (a step time for each
    Supervisor decision), the model calls whose end was recorded; as many as the new rows."""
    pairs = [
        ("decisions", "decision_rows"),
        ("timed", "timed_rows"),
        ("model_calls", "model_call_rows"),
    ]

    async def settled() -> dict[str, float] | None:
        now = await _counts(settings, pool)
        moved = {key: now[key] - baseline[key] for key in now}
        return moved if all(moved[a] == moved[b] for a, b in pairs) else None

    moved = await wait_for(settled, timeout_s=30)
    assert moved["decision_rows"] >= len(SCENARIOS) + 7  # 7 steps, a retry, a block
    assert moved["timed_rows"] >= 1 and moved["model_call_rows"] > 0


async def test_every_process_is_live(finished, settings: Settings) -> None:
    async with aiohttp.ClientSession() as session:
        for process, base in _targets(settings).items():
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200, (process, await response.text())


async def test_a_refused_message_is_counted_as_a_dead_letter(finished, settings: Settings) -> None:
    """Counted by the service that refused it, once the dead-letter topic acknowledged it."""
    base = _targets(settings)["image_io"]
    before = _sum(await _scrape(base), "planstream_dead_letters_total", service="image_io")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        topic = STEP_REQUESTED.full_name(settings.topic_namespace)
        await producer.send_and_wait(topic, b"this is no event", key=b"run")
    finally:
        await producer.stop()

    async def counted() -> float | None:
        now = _sum(await _scrape(base), "planstream_dead_letters_total", service="image_io")
        return now - before or None

    assert await wait_for(counted, timeout_s=30) == 1
