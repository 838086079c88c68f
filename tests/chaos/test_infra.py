"""Infrastructure faults on private instances (never the shared stack): T05 the Kafka broker
killed with -9 under load and restarted, T08 PostgreSQL stopped (immediate shutdown) for 30 s.

A worker process that dies because its broker or database vanished is started again after the
fault heals, as a process supervisor (systemd, Kubernetes) would; the report counts them.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.infra import Kind
from planstream.dev.chaos.load import Ledger, Sample
from planstream.dev.chaos.measure import (
    first_progress_after,
    mark,
    measure,
    progress_between,
    quiesce,
)
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.streams import dead_letters, read_topics
from planstream.settings import Settings
from topics import DECISION_MADE


@pytest.fixture(scope="module")
async def private_env(
    base_settings: Settings, profile: Profile, chaos_root: Path, samples: list[Sample], seed: int
) -> AsyncIterator[Harness]:
    """Workers on a private Kafka broker and a private PostgreSQL (canary password)."""
    harness = Harness(base_settings, profile, chaos_root / "private", private=True, seed=seed)
    try:
        await harness.start(samples)
        yield harness
    finally:
        await harness.stop()


async def _dead_lettered(env: Harness, marks) -> dict[str, int]:
    """Dead letters written during the test, by service (a transient outage should make none)."""
    counts: dict[str, int] = {}
    for letter in await dead_letters(env.settings, marks.topics):
        service = letter.header("service") or "?"
        counts[service] = counts.get(service, 0) + 1
    return counts


async def _decision_equality(env: Harness, ledger: Ledger) -> Check:
    """T08: decision rows == distinct decision keys on the topic, for the test's runs."""
    records = await read_topics(
        env.settings, [DECISION_MADE.full_name(env.settings.topic_namespace)]
    )
    mine = set(ledger.run_ids)
    keys = {
        (v["run_id"], v["idempotency_key"])
        for v in (r.json() for r in records)
        if isinstance(v, dict) and v.get("run_id") in mine
    }
    conn = await env.connect()
    try:
        rows = int(
            await conn.fetchval(
                "SELECT count(*) FROM pipeline_decisions"
                " WHERE run_id = ANY($1) AND decided_by = 'supervisor'",
                list(mine),
            )
        )
    finally:
        await conn.close()
    return Check(
        "I2",
        f"decision rows {rows} != distinct decisions on the topic {len(keys)}",
        int(rows != len(keys)),
    )


async def _down_under_load(
    env: Harness, profile: Profile, component: Kind, down_s: float, result: Result, seed: int
) -> Result:
    """Kill ``component`` of the private stack 4 s into a load, start it again ``down_s``
    later, restart the workers that died of it, drain, and measure every invariant."""
    assert env.infra is not None
    marks = await mark(env)
    load = asyncio.create_task(env.load(profile.runs, seed=seed, rate_per_s=1.0))
    await asyncio.sleep(4.0)
    down_at = datetime.now(UTC)
    began = time.monotonic()
    await asyncio.to_thread(env.infra.kill, component)
    await asyncio.sleep(max(0.0, down_s - (time.monotonic() - began)))
    started_s = await env.infra.start(component)
    healed_at = datetime.now(UTC)
    ledger = await load
    await asyncio.sleep(5.0)
    revived = await asyncio.to_thread(env.ensure_running)
    drained = await quiesce(env, ledger, profile.quiesce_s)
    revived += await asyncio.to_thread(env.ensure_running)
    result.recovery_s = await first_progress_after(env, healed_at)
    finished = await progress_between(env, down_at, healed_at)
    result.progress_during_fault = f"{finished} jobs finished while down"
    figures = {
        f"{component}_start_s": round(started_s, 1),
        "workers_restarted": revived,
        "indeterminate_requests": len(ledger.indeterminate),
        "dead_letters": await _dead_lettered(env, marks),
        "drain_s": round(drained, 1),
    }
    checks = [await _decision_equality(env, ledger)]
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    return result


@pytest.mark.timeout(3600)
async def test_t05_broker_hard_restart_under_load(
    private_env: Harness, profile: Profile, seed: int, record
) -> None:
    fault = f"kill -9 the broker, {profile.broker_down_s:.0f} s down, restart"
    for repeat in range(1, profile.broker_restarts + 1):
        result = Result("T05", "broker hard restart", fault, profile.name, seed, repeat)
        await _down_under_load(
            private_env, profile, "kafka", profile.broker_down_s, result, seed + repeat
        )
        record(result)
        assert result.verdict == "PASS", result.violations


@pytest.mark.timeout(3600)
async def test_t08_postgres_down_30_s_under_load(
    private_env: Harness, profile: Profile, seed: int, record
) -> None:
    fault = f"immediate shutdown, {profile.pg_down_s:.0f} s down, under load"
    result = Result("T08", "PostgreSQL down", fault, profile.name, seed)
    await _down_under_load(private_env, profile, "postgres", profile.pg_down_s, result, seed)
    record(result)
    assert result.verdict == "PASS", result.violations
