"""Broken clients of the old function, one fault each, that the legacy suite must catch."""

from dataclasses import replace

from planstream.domain.events import LegacyStepRequested
from planstream.ports import LegacyAnswer, LegacyCall, LegacyRefused, LegacyUnavailable
from tests.conformance.fake_harnesses import FakeLegacyHarness
from tests.conformance.legacy import LegacyFunctionContract
from tests.conformance.mutants import breaks
from tests.fakes import FakeLegacyFunction

__all__: list[str] = []

C, H = LegacyFunctionContract, FakeLegacyHarness


@breaks(C, H, "test_worker_limit_is_not_worth_calling_again")
class CallsWorkerLimitAgain(FakeLegacyFunction):
    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer:
        try:
            return await super().run_step(request)
        except LegacyRefused as exc:
            raise LegacyUnavailable(str(exc), exc.call) from None


@breaks(
    C,
    H,
    "test_a_server_error_is_worth_calling_again",
    "test_a_throttle_is_worth_calling_again",
)
class GivesUpOnAnyError(FakeLegacyFunction):
    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer:
        try:
            return await super().run_step(request)
        except LegacyUnavailable as exc:
            raise LegacyRefused(str(exc), exc.call) from None


@breaks(C, H, "test_an_image_of_another_run_is_not_found")
class TrustsAnyImage(FakeLegacyFunction):
    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer:
        size = len(request.model_dump_json())
        call = LegacyCall("OK", 200, size, 100, 1)
        return LegacyAnswer("exe_trusting", request.input_artifact_ids[0], (), call)


@breaks(C, H, "test_a_step_is_answered_with_its_image_and_the_call_s_sizes")
class ForgetsTheSizes(FakeLegacyFunction):
    async def run_step(self, request: LegacyStepRequested) -> LegacyAnswer:
        answer = await super().run_step(request)
        return replace(answer, call=replace(answer.call, request_bytes=0))
