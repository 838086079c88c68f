"""The legacy bridge: a step attempt routed to the old ``run-pipeline-step`` function.

For each request it leases the step attempt's job (``service = legacy``), calls the old function
with ids only, within a timeout and the step's budget of ``max_attempts`` calls (a 429, a 5xx, a
timeout or a lost connection is called again after a backoff; WORKER_LIMIT, a refusal or an
unusable answer is not), then decides the step as RULES.md does on what the function's checks
reported (``decided_by = legacy``), publishes the decision, hands the run on to the next step by
its route, and closes the job with every call's code, sizes and latency in ``result_ref``.
"""

import logging
import random
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from planstream.crashpoints import crashpoint
from planstream.domain.decisions import RetryBudget, budget_window, decide
from planstream.domain.events import (
    MAX_LISTED_FAILURES,
    DecisionMade,
    Failure,
    LegacyStepRequested,
    Versions,
)
from planstream.domain.ids import new_id
from planstream.domain.rules import LEGACY_FAILED, RULES_VERSION, Policy
from planstream.domain.service_names import LEGACY
from planstream.domain.spaces import SPACES_VERSION
from planstream.ports import (
    LegacyAnswer,
    LegacyCall,
    LegacyFunction,
    LegacyRefused,
    LegacyUnavailable,
)
from planstream.services import metrics
from planstream.services.retrying import RetryPolicy, backoff_delay
from planstream.services.run_flow import RunFlow
from planstream.services.runtime import Runtime
from planstream.services.step_attempt import hold_step
from topics import DECISION_MADE, LEGACY_REQUESTED

__all__ = ["SERVICE", "LegacyBridge"]

log = logging.getLogger(__name__)

SERVICE: Final = LEGACY
"""The service of the bridge's jobs; the worker itself is ``legacy_bridge``."""
VERSIONS: Final = Versions(
    spaces_schema=SPACES_VERSION, prompt="legacy", model="run-pipeline-step", rules=RULES_VERSION
)


class LegacyBridge:
    """The bridge's logic for one step attempt."""

    def __init__(
        self,
        runtime: Runtime,
        function: LegacyFunction,
        policy: Policy,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._rt = runtime
        self._function = function
        self._policy = policy
        self._flow = RunFlow(runtime)
        self._draw = draw

    async def handle(self, request: LegacyStepRequested) -> None:
        rt = self._rt
        held = await hold_step(rt, request, LEGACY_REQUESTED)
        if held is None:
            return
        async with held.work as work:
            calls: list[LegacyCall] = []
            answer, failure = await self._run(request, calls)
            decision = self._decision(request, answer, failure)
            await rt.publisher.publish(DECISION_MADE, decision)
            crashpoint("legacy_bridge.after_decision")
            follow = partial(self._flow.follow, decision, held.run)
            await rt.after_output(SERVICE, follow, "what the decision calls for")
            result: dict[str, Any] = {
                "path": "legacy",
                "event_id": decision.event_id,
                "decision": decision.decision,
                "request_bytes": max((c.request_bytes for c in calls), default=0),
                "calls": [call.as_record() for call in calls],
            }
            if answer is not None:
                result["execution_id"] = answer.execution_id
                result["output_artifact_id"] = answer.output_artifact_id
            error = f"{failure.rule}: {failure.detail}" if failure else None
            await rt.jobs.finish(work, _status(decision, failure), result, error=error)

    async def _run(
        self, request: LegacyStepRequested, calls: list[LegacyCall]
    ) -> tuple[LegacyAnswer | None, Failure | None]:
        """The old function's answer within the step's budget, or the failure in its place."""
        rt = self._rt
        limit = rt.settings.max_attempts
        backoff = RetryPolicy(attempts=limit, max_delay_s=rt.settings.legacy_retry_max_delay_s)
        for number in range(1, limit + 1):
            try:
                answer = await self._function.run_step(request)
            except LegacyUnavailable as exc:
                self._count(request, exc.call, calls)
                if number == limit:
                    detail = f"{exc.call.code} on all {limit} calls: {exc}"
                    return None, LEGACY_FAILED.failure(detail)
                delay = backoff_delay(backoff, number, self._draw())
                if exc.retry_after_s is not None:
                    delay = min(max(delay, exc.retry_after_s), backoff.max_delay_s)
                metrics.count_retry(SERVICE, f"legacy_{exc.call.code.lower()}")
                log.warning("the old function failed (%s); call again in %.1fs", exc, delay)
                await rt.sleep(delay)
            except LegacyRefused as exc:
                self._count(request, exc.call, calls)
                return None, LEGACY_FAILED.failure(f"{exc.call.code}: {exc}")
            else:
                self._count(request, answer.call, calls)
                problem = await self._foreign_output(request, answer)
                return (None, problem) if problem else (answer, None)
        raise AssertionError("unreachable: the loop returns")

    def _count(
        self, request: LegacyStepRequested, call: LegacyCall, calls: list[LegacyCall]
    ) -> None:
        calls.append(call)
        metrics.count_legacy_call(
            request.step_id, call.code, call.latency_ms / 1000, call.request_bytes
        )

    async def _foreign_output(
        self, request: LegacyStepRequested, answer: LegacyAnswer
    ) -> Failure | None:
        """LEGACY_FAILED when the answer's image is no artifact of this run (never trusted)."""
        output = await self._rt.repo.artifact(answer.output_artifact_id)
        if output is None or output.run_id != request.run_id:
            detail = f"BAD_RESPONSE: {answer.output_artifact_id} is no image of {request.run_id}"
            return LEGACY_FAILED.failure(detail)
        return None

    def _decision(
        self,
        request: LegacyStepRequested,
        answer: LegacyAnswer | None,
        failure: Failure | None,
    ) -> DecisionMade:
        """RULES.md's decision on the function's checks (or its failure), within the budget."""
        limit = self._rt.settings.max_attempts
        first, _ = budget_window(request.attempt, limit)
        budget = RetryBudget(request.attempt - first + 1, limit)
        failures = list(answer.failures) if answer is not None else []
        if failure is not None:
            failures.append(failure)
        result = decide(failures, budget, self._policy)
        listed = list(result.failures)
        note = (
            "run and checked by the old run-pipeline-step function: no LLM audit"
            if answer is not None
            else "the old run-pipeline-step function did not run the step"
        )
        return DecisionMade.model_validate(
            {
                **request.same_step(new_id("evt"), self._rt.clock()),
                "decided_by": "legacy",
                "decision": result.decision,
                "block_reason": result.block_reason,
                "failures": listed[:MAX_LISTED_FAILURES],
                "failure_count": len(listed),
                "schema_valid": None,
                "audit_note": note,
                "retry_budget_remaining": budget.remaining,
                "image_artifact_id": answer.output_artifact_id if answer else None,
                "versions": VERSIONS,
            }
        )


def _status(decision: DecisionMade, failure: Failure | None) -> str:
    """The job's end: failed when the function did not run the step, else as decided."""
    if failure is not None:
        return "failed"
    return "blocked" if decision.decision == "block" else "completed"
