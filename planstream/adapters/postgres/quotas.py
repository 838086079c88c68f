"""Per-subject quotas kept in PostgreSQL, so every ingress replica counts the same runs.

A check runs inside the transaction that creates the run, after a transaction-scoped advisory
lock on the subject: two replicas creating runs for one subject at once count one after the
other, never both under the limit.
"""

from dataclasses import dataclass

import asyncpg

from planstream.domain.errors import QuotaExceeded

__all__ = ["RunQuota", "check_run_quota"]

# The advisory lock's first key: quota locks never collide with another use of advisory locks.
_QUOTA_LOCK_SPACE = 0x71756F7461  # "quota"


@dataclass(frozen=True)
class RunQuota:
    """How many runs one subject may create a minute, and have being worked on at once
    (pending or running: a blocked run waits for an operator, not for the subject)."""

    per_minute: int
    active: int


async def check_run_quota(conn: asyncpg.Connection, owner: str, quota: RunQuota) -> None:
    """Raise :class:`QuotaExceeded` when ``owner`` may not create a run now (in a transaction)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", _QUOTA_LOCK_SPACE & 0x7FFFFFFF, owner
    )
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE created_at > now() - interval '1 minute') AS recent,"
        " extract(epoch FROM min(created_at) FILTER"
        "  (WHERE created_at > now() - interval '1 minute') + interval '1 minute' - now())"
        "  AS recent_frees_in_s,"
        " count(*) FILTER (WHERE status IN ('pending', 'running')) AS active"
        " FROM pipeline_runs WHERE owner = $1"
        " AND (created_at > now() - interval '1 minute' OR status IN ('pending', 'running'))",
        owner,
    )
    if row["recent"] >= quota.per_minute:
        wait = max(1, int(float(row["recent_frees_in_s"] or 1)) + 1)
        raise QuotaExceeded(
            f"quota: {quota.per_minute} runs a minute per subject; try again in {wait} s", wait
        )
    if row["active"] >= quota.active:
        raise QuotaExceeded(
            f"quota: {quota.active} unfinished runs at once per subject; wait for one to end",
            30,
        )
