"""T26: an S3 object missing (non-retryable: the run ends without a model call) and S3 down for
30 s under load (transient: the runs finish after it heals, within the attempt budget).
"""

import asyncio
import time
from datetime import UTC, datetime

import aioboto3
import aiohttp
import pytest

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import make_runs
from planstream.dev.chaos.load import Ledger, LedgerEntry
from planstream.dev.chaos.measure import (
    first_progress_after,
    mark,
    measure,
    progress_between,
    quiesce,
)
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result


async def _delete_uploads(env: Harness, run_ids: list[str]) -> int:
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT u.storage_bucket, u.storage_path FROM uploads u"
            " JOIN pipeline_runs r USING (upload_id) WHERE r.run_id = ANY($1)",
            run_ids,
        )
    finally:
        await conn.close()
    s = env.settings
    session = aioboto3.Session(
        aws_access_key_id=s.s3_access_key_id,
        aws_secret_access_key=s.s3_secret_access_key,
        region_name=s.s3_region,
    )
    async with session.client("s3", endpoint_url=s.s3_endpoint) as client:
        for row in rows:
            await client.delete_object(Bucket=row["storage_bucket"], Key=row["storage_path"])
    return len(rows)


@pytest.mark.timeout(1800)
async def test_t26_s3_object_missing(env: Harness, profile: Profile, seed: int, record) -> None:
    marks = await mark(env)
    runs = await make_runs(env.ingress_url, env.samples[:3], env.token())
    deleted = await _delete_uploads(env, [r.run_id for r in runs])
    ledger = Ledger()
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60), headers=env.auth()
    ) as session:
        for run in runs:
            url = f"{env.ingress_url}/v1/runs/{run.run_id}/steps/0"
            async with session.post(
                url, headers={"Idempotency-Key": f"missing-{run.run_id}"}
            ) as answer:
                status = "acked" if answer.status in (200, 202) else "refused"
            ledger.add(LedgerEntry(run.run_id, "missing", "missing", status, time.time()))
    drained = await quiesce(env, ledger, profile.quiesce_s)
    conn = await env.connect()
    try:
        outcome = await conn.fetch(
            "SELECT r.run_id, r.status, r.block_reason,"
            " (SELECT count(*) FROM pipeline_model_calls c WHERE c.run_id = r.run_id) AS calls"
            " FROM pipeline_runs r WHERE r.run_id = ANY($1)",
            ledger.run_ids,
        )
    finally:
        await conn.close()
    checks = [
        Check(
            "T26",
            f"run {row['run_id']} ended {row['status']}/{row['block_reason']}"
            f" with {row['calls']} model calls",
            1,
        )
        for row in outcome
        if row["status"] != "blocked" or row["block_reason"] != "ARTIFACT_MISSING" or row["calls"]
    ]
    result = Result(
        "T26", "S3 missing / down", "source object deleted before step 0", profile.name, seed
    )
    figures = {
        "deleted": deleted,
        "model_calls": sum(int(r["calls"]) for r in outcome),
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations


@pytest.mark.timeout(1800)
async def test_t26_s3_down_for_30_s(env: Harness, profile: Profile, seed: int, record) -> None:
    assert env.s3 is not None
    marks = await mark(env)
    ledger = await env.load(profile.runs, seed=seed)
    await asyncio.sleep(2.0)
    down_at = datetime.now(UTC)
    env.s3.set("down")
    try:
        await asyncio.sleep(profile.s3_down_s)
    finally:
        env.s3.heal()
    healed_at = datetime.now(UTC)
    drained = await quiesce(env, ledger, profile.quiesce_s)
    result = Result(
        "T26",
        "S3 missing / down",
        f"S3 refuses connections for {profile.s3_down_s:.0f} s under load",
        profile.name,
        seed,
    )
    result.recovery_s = await first_progress_after(env, healed_at)
    during = await progress_between(env, down_at, healed_at)
    result.progress_during_fault = f"{during} jobs finished during the outage"
    await measure(
        env,
        marks,
        ledger,
        result,
        figures={"drain_s": round(drained, 1), "s3_connections": env.s3.connections},
    )
    completed = result.figures["completed"]
    result.figures["success_rate"] = (
        f"{100 * completed / max(1, result.runs_started):.0f}% completed"
    )
    record(result)
    assert result.verdict == "PASS", result.violations
