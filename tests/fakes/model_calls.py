"""The model-call log in memory, as ``adapters/postgres/model_calls.py`` writes and counts it."""

from planstream.ports import ModelCall, Purpose
from tests.fakes.database import FakeDatabase, FakeIntegrityError

__all__ = ["FakeModelCallLog"]


class FakeModelCallLog:
    """``ModelCallLog`` over a ``FakeDatabase``."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def record(self, call: ModelCall) -> None:
        """Write the call; a call recorded as ``started`` is completed, anything else is kept."""
        self._db.require_run(call.run_id)
        if call.job_id is not None and call.job_id not in self._db.jobs:
            raise FakeIntegrityError(f"job {call.job_id} does not exist (foreign key)")
        kept = self._db.model_calls.get(call.call_id)
        if kept is None or kept.outcome == "started":
            # Identity columns stay as first written, as the real ON CONFLICT UPDATE keeps them.
            self._db.model_calls[call.call_id] = call if kept is None else _completed(kept, call)

    async def count(
        self, run_id: str, step_id: int, purpose: Purpose, attempts: tuple[int, int]
    ) -> int:
        """How many calls of ``purpose`` the step's budget spent in the attempts ``first..last``
        (first tries: a transport retry is part of its call)."""
        first, last = attempts
        return sum(
            1
            for call in self._db.model_calls.values()
            if call.run_id == run_id
            and call.step_id == step_id
            and call.purpose == purpose
            and first <= call.attempt <= last
            and call.transport_attempt == 1
        )

    def calls(self, run_id: str) -> list[ModelCall]:
        """Every call recorded for the run, in the order first written (for assertions)."""
        return [call for call in self._db.model_calls.values() if call.run_id == run_id]


def _completed(kept: ModelCall, call: ModelCall) -> ModelCall:
    """The started row with the outcome columns of ``call`` (its answer among them)."""
    return ModelCall(
        call_id=kept.call_id,
        run_id=kept.run_id,
        step_id=kept.step_id,
        attempt=kept.attempt,
        job_id=kept.job_id,
        service=kept.service,
        purpose=kept.purpose,
        model=kept.model,
        prompt_version=kept.prompt_version,
        outcome=call.outcome,
        input_tokens=call.input_tokens,
        output_tokens=call.output_tokens,
        cost_usd=call.cost_usd,
        latency_ms=call.latency_ms,
        finish_reason=call.finish_reason,
        error=call.error,
        transport_attempt=kept.transport_attempt,
        waited_ms=kept.waited_ms,
        answer=call.answer,
    )
