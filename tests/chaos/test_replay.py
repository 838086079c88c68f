"""T14: the whole history replayed from the earliest offsets (every service group rewound, or
started under new group ids): nothing new may happen — no decision, model call, job, artifact
or stored object. It runs last on the shared environment, so the history is every other test's.
"""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from planstream.adapters.storage import Storage
from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.load import Ledger, LedgerEntry
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.streams import SERVICE_TOPICS, group_ids


async def _counts(env: Harness) -> dict[str, int]:
    conn = await env.connect()
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM pipeline_decisions) AS decisions,"
            " (SELECT count(*) FROM pipeline_model_calls) AS model_calls,"
            " (SELECT count(*) FROM pipeline_jobs) AS jobs,"
            " (SELECT count(*) FROM pipeline_artifacts) AS artifacts,"
            " (SELECT coalesce(sum(attempts), 0) FROM pipeline_jobs) AS deliveries"
        )
        counts = {k: int(v) for k, v in dict(row).items()}
    finally:
        await conn.close()
    counts["s3_objects"] = await _objects(env)
    return counts


async def _objects(env: Harness) -> int:
    storage = Storage(env.settings)
    await storage.start()
    try:
        client = storage._client  # the harness counts objects; planstream never lists
        total = 0
        token = None
        while True:
            kwargs = {"Bucket": env.settings.s3_bucket, "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            page = await client.list_objects_v2(**kwargs)
            total += int(page.get("KeyCount", 0))
            token = page.get("NextContinuationToken")
            if not token:
                return total
    finally:
        await storage.stop()


async def _rewind(env: Harness) -> int:
    """Commit every service group's offsets back to the earliest (the groups are empty)."""
    rewound = 0
    for service, group in group_ids(env.settings, SERVICE_TOPICS).items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=env.settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            names = [env.settings.topic_namespace + t for t in SERVICE_TOPICS[service]]
            partitions = [
                TopicPartition(n, p) for n in names for p in range(env.settings.topic_partitions)
            ]
            consumer.assign(partitions)
            starts = await consumer.beginning_offsets(partitions)
            await consumer.commit(dict(starts.items()))
            rewound += len(partitions)
        finally:
            await consumer.stop()
    return rewound


@pytest.mark.timeout(2400)
async def test_t14_full_replay_from_the_earliest_offsets(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    """Stop every worker, rewind every group to the start of its topics, start them again: the
    whole history is delivered again and nothing new may happen."""
    marks = await mark(env)
    ledger = await env.load(profile.runs, seed=seed)
    await quiesce(env, ledger, profile.quiesce_s)
    before = await _counts(env)
    await asyncio.gather(*(asyncio.to_thread(env.rig.stop, name) for name in env.workers))
    rewound = await _rewind(env)
    began = time.monotonic()
    await asyncio.gather(*(asyncio.to_thread(env.start_worker, name) for name in env.workers))
    everything = Ledger()
    conn = await env.connect()
    try:
        for row in await conn.fetch("SELECT DISTINCT run_id FROM pipeline_jobs"):
            everything.add(LedgerEntry(row["run_id"], "history", "replay", "acked", time.time()))
    finally:
        await conn.close()
    replayed = await quiesce(env, everything, profile.quiesce_s)
    after = await _counts(env)
    new = {k: after[k] - before[k] for k in before}
    checks = [
        Check("I6", f"new {k} after the replay", v)
        for k, v in new.items()
        if v and k != "deliveries"
    ]
    result = Result(
        "T14", "full replay", "every group rewound to the earliest offsets", profile.name, seed
    )
    result.recovery_s = round(time.monotonic() - began, 1)
    figures = {
        "partitions_rewound": rewound,
        "history_runs": len(everything.entries),
        "new_after_replay": new,
        "replay_s": round(replayed, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations
