"""A replay's decision diff as stored: each recorded decision beside the one the replay made, and
the list of replays; what `planstream replay show | diff` and the console's replay pages read."""

import asyncpg

from planstream.adapters.postgres import replay_queries as q
from planstream.adapters.postgres.replays import ReplayRecord, ReplayStore
from planstream.domain.replay import ReplaySummary, StepDiff, summarise

__all__ = ["decision_diff", "recent_replays"]


async def decision_diff(store: ReplayStore, replay_id: str) -> tuple[list[StepDiff], ReplaySummary]:
    """Every selected attempt of the replay, original and replayed side by side, and the sums."""
    originals = {(d.run_id, d.step_id, d.attempt): d for d in await store.originals(replay_id)}
    diffs = [
        StepDiff(
            replayed.run_id,
            replayed.step_id,
            replayed.attempt,
            originals[(replayed.run_id, replayed.step_id, replayed.attempt)].side(),
            replayed.side(),
            replayed.error,
        )
        for replayed in await store.replayed(replay_id)
    ]
    return diffs, summarise(diffs)


async def recent_replays(pool: asyncpg.Pool, limit: int) -> list[ReplayRecord]:
    """The newest replays first, purged ones too (their record stays)."""
    rows = await pool.fetch(
        f"SELECT {q.REGISTRY_COLUMNS} FROM public.pipeline_replays"
        " ORDER BY started_at DESC LIMIT $1",
        limit,
    )
    return [ReplayRecord.of(row) for row in rows]
