"""The record of every model call: what it cost, how long it took, how it ended (asyncpg)."""

from typing import cast

import asyncpg

from planstream.ports import ModelCall, Purpose

__all__ = ["ModelCallLog"]


class ModelCallLog:
    """Writes ``pipeline_model_calls`` and counts a step's calls against its budget."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, call: ModelCall) -> None:
        """Write the call; a call recorded as ``started`` is completed (its answer with it, in
        the same statement), anything else is kept."""
        await self._pool.execute(
            "INSERT INTO pipeline_model_calls (call_id, run_id, step_id, attempt, job_id,"
            " service, purpose, model, prompt_version, outcome, input_tokens, output_tokens,"
            " cost_usd, latency_ms, finish_reason, error, transport_attempt, waited_ms, answer)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
            " $17, $18, $19)"
            " ON CONFLICT (call_id) DO UPDATE SET outcome = EXCLUDED.outcome,"
            " input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,"
            " cost_usd = EXCLUDED.cost_usd, latency_ms = EXCLUDED.latency_ms,"
            " finish_reason = EXCLUDED.finish_reason, error = EXCLUDED.error,"
            " answer = EXCLUDED.answer"
            " WHERE pipeline_model_calls.outcome = 'started'",
            call.call_id,
            call.run_id,
            call.step_id,
            call.attempt,
            call.job_id,
            call.service,
            call.purpose,
            call.model,
            call.prompt_version,
            call.outcome,
            call.input_tokens,
            call.output_tokens,
            call.cost_usd,
            call.latency_ms,
            call.finish_reason,
            call.error,
            call.transport_attempt,
            call.waited_ms,
            call.answer,
        )

    async def count(
        self, run_id: str, step_id: int, purpose: Purpose, attempts: tuple[int, int]
    ) -> int:
        """How many calls of ``purpose`` the step's budget spent in the attempts ``first..last``
        (first tries: a transport retry is part of its call)."""
        return cast(
            int,
            await self._pool.fetchval(
                "SELECT count(*) FROM pipeline_model_calls WHERE run_id = $1 AND step_id = $2"
                " AND purpose = $3 AND attempt BETWEEN $4 AND $5 AND transport_attempt = 1",
                run_id,
                step_id,
                purpose,
                *attempts,
            ),
        )
