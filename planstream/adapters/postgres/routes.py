"""The routing flags, their history and each step attempt's route, in PostgreSQL (asyncpg).

A change locks the flags it names, writes them and their history rows in one transaction, so
two operators changing flags at once are serialised and the history has every change once.
"""

from collections.abc import Mapping
from typing import cast

import asyncpg

from planstream.domain.routing import (
    FLAG_NAMES,
    FlagChange,
    Flags,
    Route,
    check_operator,
    check_reason,
    check_updates,
)

__all__ = ["Routes"]

_LOCK = """
SELECT name, value FROM routing_flags WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE
"""
_SET = "UPDATE routing_flags SET value = $2, updated_by = $3, updated_at = now() WHERE name = $1"
_HISTORY = """
INSERT INTO routing_flag_history (name, old_value, new_value, operator, reason)
VALUES ($1, $2, $3, $4, $5) RETURNING changed_at
"""
_CLAIM = """
WITH claimed AS (
    INSERT INTO pipeline_step_routes (run_id, step_id, attempt, route) VALUES ($1, $2, $3, $4)
    ON CONFLICT (run_id, step_id, attempt) DO NOTHING RETURNING route
)
SELECT route FROM claimed
UNION ALL
SELECT route FROM pipeline_step_routes WHERE run_id = $1 AND step_id = $2 AND attempt = $3
LIMIT 1
"""


class Routes:
    """``planstream.ports.Routes`` over one asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def flags(self) -> Flags:
        rows = await self._pool.fetch("SELECT name, value FROM routing_flags")
        return Flags.from_values({row["name"]: row["value"] for row in rows})

    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        wanted = check_updates(updates)
        who, why = check_operator(operator), check_reason(reason)
        changes: list[FlagChange] = []
        async with self._pool.acquire() as conn, conn.transaction():
            held = {r["name"]: r["value"] for r in await conn.fetch(_LOCK, list(wanted))}
            for name in (n for n in FLAG_NAMES if n in wanted):
                old, new = held[name], wanted[name]
                if old == new:
                    continue
                await conn.execute(_SET, name, new, who)
                when = await conn.fetchval(_HISTORY, name, old, new, who, why)
                changes.append(FlagChange(name, old, new, who, why, when))
        return changes

    async def history(self, limit: int) -> list[FlagChange]:
        rows = await self._pool.fetch(
            "SELECT name, old_value, new_value, operator, reason, changed_at"
            " FROM routing_flag_history ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [FlagChange(*row) for row in rows]

    async def claim(self, run_id: str, step_id: int, attempt: int, route: Route) -> Route:
        # A concurrent claim waits on the primary key until the first commits, then finds it.
        found = await self._pool.fetchval(_CLAIM, run_id, step_id, attempt, route)
        if found is None:  # the first claim's row was not visible to this statement's snapshot
            found = await self._pool.fetchval(
                "SELECT route FROM pipeline_step_routes"
                " WHERE run_id = $1 AND step_id = $2 AND attempt = $3",
                run_id,
                step_id,
                attempt,
            )
        return cast(Route, found)
