"""Duplicates: T12 one step request sent 100 times at once by 100 producers (and 100 clients),
T14 the whole history replayed from the earliest offsets. Effects must happen once: one job
execution, one decision row, one model call, one stored object per step attempt.
"""

import asyncio
import time
import uuid

import aiohttp
import pytest

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import make_runs, produce_from_many, step_requested
from planstream.dev.chaos.load import Ledger, LedgerEntry
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.streams import read_topic
from topics import IMAGE_READY, STEP_REQUESTED


async def _per_key(env: Harness, run_ids: list[str]) -> dict:
    conn = await env.connect()
    try:
        row = await conn.fetchrow(
            "SELECT"
            " (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM pipeline_decisions"
            "   WHERE run_id = ANY($1) AND step_id = 0 AND attempt = 1 GROUP BY run_id) d)"
            "   AS decisions,"
            " (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM pipeline_model_calls"
            "   WHERE run_id = ANY($1) AND step_id = 0 AND purpose = 'extract' GROUP BY run_id) c)"
            "   AS extract_calls,"
            " (SELECT coalesce(max(attempts), 0) FROM pipeline_jobs"
            "   WHERE run_id = ANY($1) AND step_id = 0 AND service = 'image_io') AS deliveries",
            run_ids,
        )
        return dict(row)
    finally:
        await conn.close()


@pytest.mark.timeout(2400)
async def test_t12_same_step_request_from_100_producers(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    marks = await mark(env)
    correct = [s for s in env.samples if s.scenario == "correct"]
    runs = await make_runs(
        env.ingress_url, [correct[i % len(correct)] for i in range(profile.dup_keys)], env.token()
    )
    topic = STEP_REQUESTED.full_name(env.settings.topic_namespace)
    acked = []
    for run in runs:  # the very same bytes, from 100 producers at once (no producer idempotence)
        value = step_requested(run)
        acked.append(
            await produce_from_many(
                env.settings, topic, run.run_id.encode(), value, profile.dup_producers
            )
        )
    # And through the ingress: 100 clients at once, each with its own Idempotency-Key.
    http_runs = await make_runs(env.ingress_url, correct[:2], env.token())
    statuses: list[int] = []
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=120), headers=env.auth()
    ) as session:

        async def ask(run_id: str) -> int:
            url = f"{env.ingress_url}/v1/runs/{run_id}/steps/0"
            async with session.post(url, headers={"Idempotency-Key": uuid.uuid4().hex}) as answer:
                return answer.status

        for run in http_runs:
            statuses += await asyncio.gather(
                *(ask(run.run_id) for _ in range(profile.dup_producers))
            )
    ledger = Ledger()
    for run in [*runs, *http_runs]:
        ledger.add(LedgerEntry(run.run_id, run.sample.scenario, "dup", "acked", time.time()))
    drained = await quiesce(env, ledger, profile.quiesce_s)
    ready = await read_topic(env.settings, IMAGE_READY)
    mine = {run.run_id for run in ledger.entries}
    executions: dict[str, int] = {}
    for r in ready:
        value = r.json() or {}
        if value.get("run_id") in mine and value.get("step_id") == 0:
            executions[value["run_id"]] = executions.get(value["run_id"], 0) + 1
    per_key = await _per_key(env, ledger.run_ids)
    published = await read_topic(env.settings, STEP_REQUESTED)
    http_published = {
        run.run_id: sum(
            1
            for r in published
            if r.key == run.run_id.encode() and (r.json() or {}).get("step_id") == 0
        )
        for run in http_runs
    }
    checks = []
    if max(executions.values(), default=0) > 1:
        checks.append(
            Check("I2", "a step attempt executed more than once", max(executions.values()))
        )
    if per_key["decisions"] > 1 or per_key["extract_calls"] > 1:
        checks.append(
            Check("I6", "more than one decision or model call per key", 1, (str(per_key),))
        )
    if any(n != 1 for n in http_published.values()):
        checks.append(
            Check(
                "I2",
                "the ingress published a step request more than once",
                1,
                (str(http_published),),
            )
        )
    if sorted(set(statuses)) not in ([200, 202], [202, 200], [202]):
        checks.append(Check("T12", f"ingress answers {sorted(set(statuses))}", 1))
    result = Result(
        "T12",
        "duplicate step requests",
        f"{profile.dup_producers} producers x {profile.dup_keys} keys, 100 clients x 2 runs",
        profile.name,
        seed,
    )
    figures = {
        "producer_sends_acked": sum(acked),
        "executions_per_key_max": max(executions.values(), default=0),
        "decisions_per_key_max": per_key["decisions"],
        "extract_calls_per_key_max": per_key["extract_calls"],
        "image_io_deliveries_max": per_key["deliveries"],
        "ingress_publishes_per_run": sorted(http_published.values()),
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations
