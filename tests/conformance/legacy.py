"""What the legacy bridge relies on from the old function's client: a step is answered with an
image of the run and the call's sizes; WORKER_LIMIT, a refusal and an unknown image are not worth
calling again; a server error or a throttle is."""

from typing import Protocol

import pytest

from planstream.domain.events import LegacyStepRequested
from planstream.ports import LegacyFunction, LegacyRefused, LegacyUnavailable

__all__ = ["LegacyFunctionContract", "LegacyHarness"]


class LegacyHarness(Protocol):
    @property
    def function(self) -> LegacyFunction: ...

    async def request(self, *, foreign: bool = False) -> LegacyStepRequested:
        """A request for step 0 of a new run whose image exists (another run's if foreign)."""

    async def script(self, status: int) -> None:
        """The function's next call answers ``status``."""


class LegacyFunctionContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_a_step_is_answered_with_its_image_and_the_call_s_sizes(
        self, harness: LegacyHarness
    ) -> None:
        request = await harness.request()
        answer = await harness.function.run_step(request)
        assert answer.output_artifact_id == request.input_artifact_ids[0]
        assert answer.failures == () and answer.execution_id
        call = answer.call
        assert (call.code, call.status) == ("OK", 200)
        assert 0 < call.request_bytes < 1_024 and call.response_bytes > 0 and call.latency_ms >= 0

    async def test_worker_limit_is_not_worth_calling_again(self, harness: LegacyHarness) -> None:
        request = await harness.request()
        await harness.script(546)
        with pytest.raises(LegacyRefused) as refused:
            await harness.function.run_step(request)
        assert (refused.value.call.code, refused.value.call.status) == ("WORKER_LIMIT", 546)
        assert refused.value.call.request_bytes > 0

    async def test_a_server_error_is_worth_calling_again(self, harness: LegacyHarness) -> None:
        await _worth_calling_again(harness, 503, "SERVER_ERROR")

    async def test_a_throttle_is_worth_calling_again(self, harness: LegacyHarness) -> None:
        await _worth_calling_again(harness, 429, "RATE_LIMITED")

    async def test_an_image_of_another_run_is_not_found(self, harness: LegacyHarness) -> None:
        request = await harness.request(foreign=True)
        with pytest.raises(LegacyRefused) as refused:
            await harness.function.run_step(request)
        assert (refused.value.call.code, refused.value.call.status) == ("NOT_FOUND", 404)


async def _worth_calling_again(harness: LegacyHarness, status: int, code: str) -> None:
    request = await harness.request()
    await harness.script(status)
    with pytest.raises(LegacyUnavailable) as unavailable:
        await harness.function.run_step(request)
    assert (unavailable.value.call.code, unavailable.value.call.status) == (code, status)
    assert (await harness.function.run_step(request)).call.code == "OK"
