"""What the model budget relies on from the model-call log: a call counts once, in its step,
purpose and attempt window, its transport retries not at all, and a started call is completed
rather than counted twice, its answer written with the completion (a frozen replay reads it)."""

from dataclasses import replace
from typing import Protocol

from planstream.domain.ids import new_id
from planstream.ports import ModelCall, ModelCallLog, Purpose

__all__ = ["ModelCallLogContract", "ModelCallsHarness", "make_call"]


class ModelCallsHarness(Protocol):
    @property
    def log(self) -> ModelCallLog: ...

    async def new_run(self) -> str:
        """A run the calls may belong to; its id."""

    async def outcome(self, call_id: str) -> str | None:
        """The recorded outcome of the call, None if it was never recorded."""

    async def answer(self, call_id: str) -> str | None:
        """The recorded answer of the call, None if it has none."""


def make_call(
    run_id: str,
    *,
    step_id: int = 0,
    attempt: int = 1,
    purpose: Purpose = "extract",
    outcome: str = "answered",
) -> ModelCall:
    return ModelCall(
        call_id=new_id("evt"),
        run_id=run_id,
        step_id=step_id,
        attempt=attempt,
        job_id=None,
        service="info_worker",
        purpose=purpose,
        model="planstream-scripted-vision",
        prompt_version="extract-v1",
        outcome=outcome,
        input_tokens=1_200,
        output_tokens=300,
        cost_usd=0.006,
        latency_ms=40,
        finish_reason="stop",
        error=None,
    )


class ModelCallLogContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_calls_count_within_their_window(self, harness: ModelCallsHarness) -> None:
        run_id, other = await harness.new_run(), await harness.new_run()
        for attempt in (1, 2, 3, 3, 4):
            await harness.log.record(make_call(run_id, attempt=attempt))
        await harness.log.record(make_call(run_id, purpose="audit"))
        await harness.log.record(make_call(run_id, step_id=1))
        await harness.log.record(make_call(other))
        assert await harness.log.count(run_id, 0, "extract", (1, 3)) == 4
        assert await harness.log.count(run_id, 0, "extract", (4, 6)) == 1
        assert await harness.log.count(run_id, 0, "extract", (2, 2)) == 1
        assert await harness.log.count(run_id, 0, "audit", (1, 3)) == 1
        assert await harness.log.count(run_id, 1, "extract", (1, 3)) == 1
        assert await harness.log.count(run_id, 2, "extract", (1, 3)) == 0

    async def test_a_started_call_is_completed_not_counted_twice(
        self, harness: ModelCallsHarness
    ) -> None:
        run_id = await harness.new_run()
        started = make_call(run_id, outcome="started")
        await harness.log.record(started)
        assert await harness.outcome(started.call_id) == "started"
        await harness.log.record(replace(started, outcome="throttled", error="429"))
        assert await harness.log.count(run_id, 0, "extract", (1, 3)) == 1
        assert await harness.outcome(started.call_id) == "throttled"

    async def test_transport_retries_are_part_of_their_call(
        self, harness: ModelCallsHarness
    ) -> None:
        run_id = await harness.new_run()
        for transport in (1, 2, 3):
            retry = replace(make_call(run_id, outcome="throttled"), transport_attempt=transport)
            await harness.log.record(retry)
        await harness.log.record(make_call(run_id))  # the budget's second call
        assert await harness.log.count(run_id, 0, "extract", (1, 3)) == 2

    async def test_the_answer_is_written_with_the_completion(
        self, harness: ModelCallsHarness
    ) -> None:
        run_id = await harness.new_run()
        started = make_call(run_id, outcome="started")
        await harness.log.record(started)
        assert await harness.answer(started.call_id) is None
        answer = '{"spaces": [], "note": "ü"}'
        await harness.log.record(replace(started, outcome="answered", answer=answer))
        assert await harness.answer(started.call_id) == answer
        await harness.log.record(replace(started, outcome="answered", answer="{}"))
        assert await harness.answer(started.call_id) == answer  # a completed call is kept

    async def test_a_completed_call_is_kept(self, harness: ModelCallsHarness) -> None:
        run_id = await harness.new_run()
        call = make_call(run_id, outcome="answered")
        await harness.log.record(call)
        await harness.log.record(replace(call, outcome="started"))
        await harness.log.record(replace(call, outcome="failed"))
        assert await harness.outcome(call.call_id) == "answered"
        assert await harness.log.count(run_id, 0, "extract", (1, 3)) == 1
