"""Replays in PostgreSQL: the registry in public, and one schema per replay (docs/replay.md).

``ReplayStore`` selects the recorded Supervisor decisions to re-decide, starts a replay (the
registry row, the schema ``replay_<hex>`` with its copies of the step tables, the selected runs'
rows and the attempts, in one transaction), keeps its progress and cost, cancels and purges it,
and reads both sides of the diff. It names every table with its schema, so it works the same on
a production pool and on a replay pool. The replay workers' own writes go through
``create_replay_pool`` (planstream.adapters.postgres.replay_pool), which runs production's
statements inside the replay's schema.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Final, get_args

import asyncpg

from planstream.adapters.postgres import replay_queries as q
from planstream.adapters.postgres.replay_pool import (
    ReplayGone,
    ReplayUnset,
    create_replay_pool,
    current_replay,
    replay_scope,
    search_path,
)
from planstream.adapters.postgres.replay_records import (
    AttemptStatus,
    RecordedDecision,
    ReplayedAttempt,
    ReplayRecord,
    SelectedAttempt,
    Selection,
)
from planstream.adapters.postgres.replay_schema import (
    ERROR_CHARS,
    REPLAY_TABLES,
    SNAPSHOT_TABLES,
    NotAReplayId,
    build_schema,
    lock_keys,
    quoted,
    schema_name,
)
from planstream.domain.errors import Conflict, RecordMissing
from planstream.domain.replay import ReplayMode

__all__ = [
    "REPLAY_TABLES",
    "SNAPSHOT_TABLES",
    "AttemptStatus",
    "NotAReplayId",
    "RecordedDecision",
    "ReplayGone",
    "ReplayRecord",
    "ReplayStore",
    "ReplayUnset",
    "ReplayedAttempt",
    "SelectedAttempt",
    "Selection",
    "create_replay_pool",
    "current_replay",
    "replay_scope",
    "schema_name",
    "search_path",
]

_FINAL: Final = ("decided", "failed", "cancelled")


class ReplayStore:
    """The registry and the schemas of replays, over one asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def select_attempts(self, selection: Selection) -> list[SelectedAttempt]:
        """The recorded Supervisor decisions ``selection`` names: at most ``selection.limit``,
        newest run first (a run's attempts in order). ValueError for a selection that
        ``Selection.problem`` refuses (its limit's upper bound is the caller's setting)."""
        rows = await self._pool.fetch(q.SELECT, *_arguments(selection))
        return [SelectedAttempt.of_decision(row) for row in rows]

    async def skipped(self, selection: Selection) -> dict[str, int]:
        """How many decisions of the selected attempts' runs the replay leaves out, by who made
        them (a reviewer's, the legacy bridge's: only the Supervisor's are re-decided)."""
        rows = await self._pool.fetch(q.SKIPPED, *_arguments(selection))
        return {row["decided_by"]: row["decisions"] for row in rows}

    async def create(
        self,
        replay_id: str,
        started_by: str,
        mode: ReplayMode,
        selection_json: Mapping[str, Any],
        versions: Mapping[str, Any],
        max_usd: float | None,
        attempts: Sequence[SelectedAttempt],
    ) -> None:
        """Start a replay in one transaction: its registry row (``running``), its schema with
        the copies of the step tables, the rows of the attempts' runs, and its attempts
        (``pending``). Conflict when the id is taken. Run it on a production pool."""
        schema = quoted(schema_name(replay_id))
        if mode not in get_args(ReplayMode):
            raise ValueError(f"mode must be one of {', '.join(get_args(ReplayMode))}")
        if not attempts:
            raise ValueError("a replay needs at least one attempt")
        if max_usd is not None and max_usd < 0:
            raise ValueError("max_usd must not be negative")
        runs = list(dict.fromkeys(a.run_id for a in attempts))
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    q.REGISTER,
                    replay_id,
                    started_by,
                    mode,
                    dict(selection_json),
                    dict(versions),
                    max_usd,
                    len(attempts),
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"replay {replay_id} exists already") from None
            await build_schema(conn, replay_id, runs)
            await conn.executemany(
                f"INSERT INTO {schema}.replay_attempts ({q.ATTEMPT_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                [a.row() for a in attempts],
            )

    async def attempts(self, replay_id: str) -> list[SelectedAttempt]:
        """The replay's attempts as selected, newest run first."""
        schema = quoted(schema_name(replay_id))
        async with _inside(replay_id):
            rows = await self._pool.fetch(
                f"SELECT {', '.join(f'a.{c}' for c in q.ATTEMPT_COLUMNS.split(', '))}"
                f" FROM {schema}.replay_attempts a JOIN {schema}.pipeline_runs r USING (run_id)"
                " ORDER BY r.created_at DESC, a.run_id, a.step_id, a.attempt"
            )
        return [SelectedAttempt.of_attempt(row) for row in rows]

    async def progress(self, replay_id: str) -> ReplayRecord | None:
        """The replay's registry row (None: no such replay)."""
        schema_name(replay_id)
        row = await self._pool.fetchrow(
            f"SELECT {q.REGISTRY_COLUMNS} FROM public.pipeline_replays WHERE replay_id = $1",
            replay_id,
        )
        return None if row is None else ReplayRecord.of(row)

    async def status(self, replay_id: str) -> str | None:
        """``running``, ``completed``, ``cancelled``, ``failed`` or ``purged`` (None: unknown)."""
        schema_name(replay_id)
        value = await self._pool.fetchval(
            "SELECT status FROM public.pipeline_replays WHERE replay_id = $1", replay_id
        )
        return None if value is None else str(value)

    async def mark_attempt(
        self,
        replay_id: str,
        run_id: str,
        step_id: int,
        attempt: int,
        status: AttemptStatus,
        error: str | None = None,
        *,
        reconstructed: bool = False,
    ) -> bool:
        """Record how a pending attempt ended, with the registry's counters, atomically; False
        when it had ended already (the first outcome stays) or is not the replay's."""
        if status not in _FINAL:
            raise ValueError(f"an attempt ends {', '.join(_FINAL)}, not {status!r:.40}")
        schema = quoted(schema_name(replay_id))
        cut = None if error is None else error[:ERROR_CHARS]
        async with _inside(replay_id):
            found = await self._pool.fetchval(
                q.MARK.format(schema=schema),
                run_id,
                step_id,
                attempt,
                status,
                cut,
                reconstructed,
                replay_id,
            )
        return found is not None

    async def add_cost(self, replay_id: str, usd: float) -> float:
        """Add ``usd`` (negative: give back part of a reservation) to the replay's cost; the
        new total."""
        schema_name(replay_id)
        total = await self._pool.fetchval(
            "UPDATE public.pipeline_replays SET cost_usd = greatest(0, cost_usd + $2)"
            " WHERE replay_id = $1 RETURNING cost_usd",
            replay_id,
            usd,
        )
        if total is None:
            raise RecordMissing(f"replay {replay_id} does not exist")
        return float(total)

    async def reserve(self, replay_id: str, usd: float) -> bool:
        """Add ``usd`` to the replay's cost only if that stays within its ``max_usd``: the cost
        gate's check and spend in one statement, so concurrent calls cannot pass the cap."""
        schema_name(replay_id)
        total = await self._pool.fetchval(
            "UPDATE public.pipeline_replays SET cost_usd = cost_usd + $2 WHERE replay_id = $1"
            " AND (max_usd IS NULL OR cost_usd + $2 <= max_usd) RETURNING cost_usd",
            replay_id,
            usd,
        )
        return total is not None

    async def spent(self, replay_id: str) -> float:
        """The replay's recorded cost in USD."""
        schema_name(replay_id)
        total = await self._pool.fetchval(
            "SELECT cost_usd FROM public.pipeline_replays WHERE replay_id = $1", replay_id
        )
        if total is None:
            raise RecordMissing(f"replay {replay_id} does not exist")
        return float(total)

    async def cancel(self, replay_id: str) -> bool:
        """Cancel a running replay and its pending attempts (counted neither done nor failed);
        False when it was not running."""
        schema = quoted(schema_name(replay_id))
        async with _inside(replay_id):
            found = await self._pool.fetchval(q.CANCEL.format(schema=schema), replay_id)
        return found is not None

    async def fail(self, replay_id: str, note: str) -> bool:
        """End a running replay as ``failed``, keeping why; False when it was not running."""
        schema_name(replay_id)
        found = await self._pool.fetchval(
            "UPDATE public.pipeline_replays SET status = 'failed', finished_at = now(),"
            " note = $2 WHERE replay_id = $1 AND status = 'running' RETURNING replay_id",
            replay_id,
            note[:ERROR_CHARS],
        )
        return found is not None

    async def purge(self, replay_id: str, *, force: bool = False) -> None:
        """Drop the replay's schema and mark it ``purged`` (its stored objects are the
        caller's to delete). Conflict while it runs (unless ``force``) or while a connection
        works inside it; RecordMissing for an unknown replay. Run it on a production pool."""
        schema = quoted(schema_name(replay_id))
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, $2)", *lock_keys(replay_id)
            ):
                raise Conflict(f"replay {replay_id} is in use by a replay worker: try again")
            status = await conn.fetchval(
                "SELECT status FROM public.pipeline_replays WHERE replay_id = $1", replay_id
            )
            if status is None:
                raise RecordMissing(f"replay {replay_id} does not exist")
            if status == "running" and not force:
                raise Conflict(f"replay {replay_id} is running: cancel it first")
            # The schema first: a concurrent mark_attempt holds an attempt before the registry.
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.execute(
                "UPDATE public.pipeline_replays SET status = 'purged',"
                " finished_at = coalesce(finished_at, now()) WHERE replay_id = $1",
                replay_id,
            )

    async def expired(self, older_than: timedelta) -> list[str]:
        """Replays not yet purged that finished (or, still running, started) longer than
        ``older_than`` ago, oldest first: what the retention sweep purges."""
        rows = await self._pool.fetch(
            "SELECT replay_id FROM public.pipeline_replays WHERE status <> 'purged'"
            " AND coalesce(finished_at, started_at) < now() - $1::interval"
            " ORDER BY coalesce(finished_at, started_at), replay_id",
            older_than,
        )
        return [row["replay_id"] for row in rows]

    async def originals(self, replay_id: str) -> list[RecordedDecision]:
        """Production's decisions of the replay's attempts, newest run first."""
        schema = quoted(schema_name(replay_id))
        async with _inside(replay_id):
            rows = await self._pool.fetch(
                f"SELECT a.run_id, a.step_id, a.attempt, {q.DECISION_COLUMNS}"
                f" FROM {schema}.replay_attempts a JOIN {schema}.pipeline_runs r USING (run_id)"
                " JOIN public.pipeline_decisions d ON d.decision_id = a.decision_id"
                " ORDER BY r.created_at DESC, a.run_id, a.step_id, a.attempt"
            )
        return [RecordedDecision.of(row) for row in rows]

    async def replayed(self, replay_id: str) -> list[ReplayedAttempt]:
        """Every attempt of the replay with the decision it made (if any) and its model cost,
        newest run first."""
        schema = quoted(schema_name(replay_id))
        async with _inside(replay_id):
            rows = await self._pool.fetch(
                q.REPLAYED.format(schema=schema, columns=q.DECISION_COLUMNS)
            )
        return [
            ReplayedAttempt(
                run_id=row["run_id"],
                step_id=row["step_id"],
                attempt=row["attempt"],
                status=row["status"],
                error=row["error"],
                reconstructed=row["reconstructed"],
                replayed_at=row["replayed_at"],
                decision=None if row["decision_id"] is None else RecordedDecision.of(row),
                cost_usd=float(row["cost_usd"]),
                model_calls=row["calls"],
            )
            for row in rows
        ]


def _arguments(selection: Selection) -> tuple[Any, ...]:
    """The selection as the parameters of ``q.SELECT``; refused when it is not well formed."""
    problem = selection.problem(max_limit=max(selection.limit, 1))
    if problem is not None:
        raise ValueError(problem)
    s = selection
    return list(s.run_ids), s.since, s.until, s.decision, s.block_reason, s.limit


@asynccontextmanager
async def _inside(replay_id: str) -> AsyncIterator[None]:
    """Statements on the replay's schema: a schema that is not there is :class:`ReplayGone`."""
    try:
        yield
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise ReplayGone(f"replay {replay_id} has no schema: never started, or purged") from None
