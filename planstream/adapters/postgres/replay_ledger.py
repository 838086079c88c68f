"""A replay's ledger for its workers (``ports.ReplayLedger``) over ``ReplayStore``.

The store keeps the registry and the attempts; this adds what the workers need on top: the
terms as one value, and the note that a frozen answer was rebuilt rather than recorded. The
note goes on the pending attempt at once and into the attempt's final mark, which keeps only
the first outcome, so a rebuilt attempt stays marked ``reconstructed`` whoever marks it.
"""

from typing import Final, cast

import asyncpg

from planstream.adapters.postgres.replay_records import AttemptStatus
from planstream.adapters.postgres.replay_schema import quoted, schema_name
from planstream.adapters.postgres.replays import ReplayStore
from planstream.domain.replay import ReplayMode
from planstream.ports import ReplayTerms

__all__ = ["ReplayLedger"]

_NOTE: Final = (
    "UPDATE {schema}.replay_attempts SET reconstructed = true"
    " WHERE run_id = $1 AND step_id = $2 AND attempt = $3 AND status = 'pending'"
)
_NOTED: Final = (
    "SELECT reconstructed FROM {schema}.replay_attempts"
    " WHERE run_id = $1 AND step_id = $2 AND attempt = $3"
)


class ReplayLedger:
    """The registry row and attempts of the replay in hand, over the replay's pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.store = ReplayStore(pool)

    async def terms(self, replay_id: str) -> ReplayTerms | None:
        record = await self.store.progress(replay_id)
        if record is None:
            return None
        return ReplayTerms(cast(ReplayMode, record.mode), record.max_usd)

    async def status(self, replay_id: str) -> str | None:
        return await self.store.status(replay_id)

    async def spent(self, replay_id: str) -> float:
        return await self.store.spent(replay_id)

    async def reserve(self, replay_id: str, usd: float) -> bool:
        return await self.store.reserve(replay_id, usd)

    async def add_cost(self, replay_id: str, usd: float) -> None:
        await self.store.add_cost(replay_id, usd)

    async def mark_attempt(
        self,
        replay_id: str,
        run_id: str,
        step_id: int,
        attempt: int,
        status: str,
        error: str | None = None,
    ) -> None:
        schema = quoted(schema_name(replay_id))
        noted = await self._pool.fetchval(_NOTED.format(schema=schema), run_id, step_id, attempt)
        await self.store.mark_attempt(
            replay_id,
            run_id,
            step_id,
            attempt,
            cast(AttemptStatus, status),
            error,
            reconstructed=bool(noted),
        )

    async def note_reconstructed(
        self, replay_id: str, run_id: str, step_id: int, attempt: int
    ) -> None:
        schema = quoted(schema_name(replay_id))
        await self._pool.execute(_NOTE.format(schema=schema), run_id, step_id, attempt)
