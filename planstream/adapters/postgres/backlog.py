"""What is waiting in PostgreSQL, for the sweeper's gauges: unfinished jobs and blocked runs."""

import asyncpg

__all__ = ["blocked_runs", "oldest_unfinished_jobs"]

_OLDEST = """
SELECT service, extract(epoch FROM now() - min(created_at))::float8 AS age_s
FROM pipeline_jobs
WHERE status IN ('pending', 'running')
GROUP BY service
"""

_BLOCKED = """
SELECT block_reason, count(*)::int AS runs
FROM pipeline_runs
WHERE status = 'blocked'
GROUP BY block_reason
"""


async def oldest_unfinished_jobs(pool: asyncpg.Pool) -> dict[str, float]:
    """{service: seconds since its oldest pending or running job was recorded}."""
    rows = await pool.fetch(_OLDEST)
    return {row["service"]: max(0.0, float(row["age_s"])) for row in rows}


async def blocked_runs(pool: asyncpg.Pool) -> dict[str | None, int]:
    """{block reason: runs blocked now}."""
    rows = await pool.fetch(_BLOCKED)
    return {row["block_reason"]: int(row["runs"]) for row in rows}
