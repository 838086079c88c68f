"""Figure 6, dedup: idempotency checks per second, the job lease against a plain upsert.

planstream's check is ``JobLeases.acquire`` (one ``INSERT … ON CONFLICT … DO UPDATE …
WHERE`` that creates or takes over a job's lease, then a read of why not when it refuses).
Each of N job keys is checked twice: a first delivery (the job is created and leased) and a
duplicate from another worker (refused: leased). The baseline runs the same 2N checks as a
plain ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING`` into the same table. Both
use a pool of ``db_pool_max`` connections and the same number of concurrent loops, and must
end with exactly N jobs, N acquisitions and N refusals.
"""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.dev.bench import rows
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.rows import step_request
from planstream.dev.bench.stats import BenchmarkFailed, Figure, Pair, verify_exactly_once
from planstream.dev.bench.workspace import Workspace
from planstream.domain.ids import new_id
from planstream.domain.records import Lease, NewJob
from topics import STEP_REQUESTED

__all__ = ["run_dedup"]

_RUNS = 100
_PLAIN = (
    "INSERT INTO pipeline_jobs (job_id, run_id, step_id, attempt, service, idempotency_key,"
    " payload_ref, max_attempts) VALUES ($1, $2, 0, 1, 'image_io', $3, $4, $5)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING job_id"
)
Check = Callable[[str, str, str], Awaitable[bool]]


def _payload(run_id: str) -> dict[str, object]:
    """What ``Jobs.begin`` keeps with a job: its topic and the event, for a re-drive."""
    return {"topic": STEP_REQUESTED.name, "event": step_request(run_id).model_dump(mode="json")}


async def _loops(
    keys: Sequence[tuple[str, str]], loops: int, check: Check
) -> tuple[float, list[bool]]:
    """Check every key twice (first delivery, then a duplicate); (seconds, outcomes)."""
    outcomes: list[bool] = []

    async def loop(part: Sequence[tuple[str, str]]) -> None:
        for run_id, key in part:
            outcomes.append(await check(run_id, key, "worker-a"))
            outcomes.append(await check(run_id, key, "worker-b"))

    started = time.monotonic()
    await asyncio.gather(*(loop(keys[i::loops]) for i in range(loops)))
    return time.monotonic() - started, outcomes


async def _variant(
    variant: str,
    pool: asyncpg.Pool,
    keys: Sequence[tuple[str, str]],
    profile: Profile,
    max_attempts: int,
) -> float:
    leases = JobLeases(pool)

    async def lease(run_id: str, key: str, worker: str) -> bool:
        job = NewJob(new_id("job"), run_id, 0, 1, "image_io", key, _payload(run_id), max_attempts)
        result = await leases.acquire(job, worker_id=worker, lease_s=300)
        if not isinstance(result, Lease) and result != "leased":
            raise BenchmarkFailed(f"a duplicate check answered {result!r}, not 'leased'")
        return isinstance(result, Lease)

    async def plain(run_id: str, key: str, worker: str) -> bool:
        job = await pool.fetchval(
            _PLAIN, new_id("job"), run_id, key, _payload(run_id), max_attempts
        )
        return job is not None

    seconds, outcomes = await _loops(
        keys, profile.dedup_concurrency, lease if variant == "planstream" else plain
    )
    counted = Counter(outcomes)
    if counted[True] != len(keys) or counted[False] != len(keys):
        raise BenchmarkFailed(
            f"{variant}: {counted[True]} first deliveries accepted and {counted[False]}"
            f" duplicates refused, expected {len(keys)} each"
        )
    stored = await pool.fetch("SELECT idempotency_key, attempts FROM pipeline_jobs")
    verify_exactly_once(
        f"jobs ({variant})", [k for _, k in keys], [r["idempotency_key"] for r in stored]
    )
    return 2 * len(keys) / seconds


async def run_dedup(workspace: Workspace, profile: Profile) -> Figure:
    settings = workspace.settings
    figure = Figure("dedup", "Dedup: idempotency checks per second")
    results: dict[str, list[float]] = {"planstream": [], "plain": []}
    pool = await create_pool(
        settings.dsn, min_size=settings.db_pool_max, max_size=settings.db_pool_max
    )
    try:
        async with pool.acquire() as conn:
            runs = await rows.reset_runs(conn, _RUNS, settings.s3_bucket)
        for index in range(profile.repeats):
            for variant in ("planstream", "plain") if index % 2 == 0 else ("plain", "planstream"):
                await pool.execute("TRUNCATE pipeline_jobs CASCADE")
                keys = [
                    (runs[i % _RUNS], f"image_io:{uuid.uuid4().hex}")
                    for i in range(profile.dedup_keys)
                ]
                results[variant].append(
                    await _variant(variant, pool, keys, profile, settings.max_attempts)
                )
    finally:
        await pool.close()
    figure.repeats = profile.repeats
    figure.pairs.append(
        Pair.of(
            "checks/s",
            "checks/s",
            results["planstream"],
            results["plain"],
            "INSERT … ON CONFLICT DO NOTHING loop",
        )
    )
    figure.details = {
        "keys": profile.dedup_keys,
        "checks_per_key": 2,
        "concurrent_loops": profile.dedup_concurrency,
        "pool_size": settings.db_pool_max,
    }
    return figure
