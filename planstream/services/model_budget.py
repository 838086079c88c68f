"""Model calls within a step's budget: every call, answered or not, is recorded and counted.

A call is recorded as ``started`` before it is made and completed after, each write waiting out
a PostgreSQL outage, so no call the model saw can be missing from the count (F10).

Transport failures (timeouts, 429, 5xx) are retried here with backoff, honouring Retry-After,
but only while the step's calls of that purpose stay within ``max_attempts`` over all its
attempts; a refusal is never retried.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from planstream.domain.decisions import budget_window
from planstream.domain.events import Failure, StepEvent
from planstream.domain.ids import new_id
from planstream.domain.rules import MODEL_REFUSED, MODEL_UNAVAILABLE
from planstream.ports import (
    ChatAnswer,
    ModelCall,
    ModelCallLog,
    ModelRefused,
    ModelUnavailable,
    Purpose,
)
from planstream.services.retrying import RetryPolicy, backoff_delay, call_through_outages
from planstream.services.runtime import Runtime
from planstream.settings import Settings

__all__ = ["Answered", "BudgetedCaller", "CallSpec", "Usage", "chat_usage", "price"]

T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    """What a call reports about itself, for the record."""

    input_tokens: int
    output_tokens: int
    finish_reason: str | None


def chat_usage(answer: ChatAnswer) -> Usage:
    """What a chat answer reports about itself."""
    return Usage(answer.input_tokens, answer.output_tokens, answer.finish_reason)


@dataclass(frozen=True)
class CallSpec:
    """Which call this is, for the step's budget and the record."""

    event: StepEvent
    job_id: str | None
    purpose: Purpose
    model: str
    prompt_version: str


@dataclass(frozen=True)
class Answered(Generic[T]):
    """The model's answer, or the failure that replaces it, and the step's calls so far."""

    answer: T | None
    failure: Failure | None
    calls_used: int


def price(settings: Settings, model: str, input_tokens: int, output_tokens: int) -> float:
    """USD for one call by the configured price table (0 for a model it does not list)."""
    per_input, per_output = settings.model_prices.get(model, (0.0, 0.0))
    return (input_tokens * per_input + output_tokens * per_output) / 1_000_000


class BudgetedCaller:
    """Runs one kind of model call for a step, retrying transient failures within the budget.

    ``outages`` are the exceptions that mean the call log's database is down: a record that
    fails with one is tried again until it is written (``Runtime.outage_errors``).
    """

    def __init__(
        self,
        settings: Settings,
        calls: ModelCallLog,
        service: str,
        outages: tuple[type[BaseException], ...],
    ) -> None:
        self._settings = settings
        self._calls = calls
        self._service = service
        self._outages = outages
        self._policy = RetryPolicy(attempts=settings.max_attempts)

    @classmethod
    def of(cls, runtime: Runtime, service: str) -> "BudgetedCaller":
        """The caller for ``service``'s model calls, on the runtime's call log and settings."""
        return cls(runtime.settings, runtime.model_calls, service, runtime.outage_errors)

    async def call(
        self, spec: CallSpec, invoke: Callable[[], Awaitable[T]], usage: Callable[[T], Usage]
    ) -> Answered[T]:
        """The first answer within the budget, or MODEL_REFUSED / MODEL_UNAVAILABLE."""
        budget = self._settings.max_attempts
        window = budget_window(spec.event.attempt, budget)
        used = await self._calls.count(spec.event.run_id, spec.event.step_id, spec.purpose, window)
        failures = 0
        while used < budget:
            used += 1
            call_id = new_id("evt")
            started = time.monotonic()
            await self._record(spec, call_id, started, "started", Usage(0, 0, None), None)
            try:
                answer = await invoke()
            except ModelRefused as exc:
                await self._record(spec, call_id, started, "refused", Usage(0, 0, None), str(exc))
                return Answered(None, MODEL_REFUSED.failure(str(exc)), used)
            except ModelUnavailable as exc:
                failures += 1
                await self._record(spec, call_id, started, exc.outcome, Usage(0, 0, None), str(exc))
                if used < budget:
                    await asyncio.sleep(self._delay(exc, failures))
                continue
            await self._record(spec, call_id, started, "answered", usage(answer), None)
            return Answered(answer, None, used)
        detail = f"{spec.purpose}: {used} of {budget} model calls used without an answer"
        return Answered(None, MODEL_UNAVAILABLE.failure(detail), used)

    def _delay(self, exc: ModelUnavailable, failures: int) -> float:
        if exc.retry_after_s is not None:
            return min(exc.retry_after_s, self._settings.model_retry_after_cap_s)
        return backoff_delay(self._policy, failures, random.random())

    async def _record(
        self,
        spec: CallSpec,
        call_id: str,
        started: float,
        outcome: str,
        usage: Usage,
        error: str | None,
    ) -> None:
        event = spec.event
        call = ModelCall(
            call_id=call_id,
            run_id=event.run_id,
            step_id=event.step_id,
            attempt=event.attempt,
            job_id=spec.job_id,
            service=self._service,
            purpose=spec.purpose,
            model=spec.model,
            prompt_version=spec.prompt_version,
            outcome=outcome,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=price(self._settings, spec.model, usage.input_tokens, usage.output_tokens),
            latency_ms=int((time.monotonic() - started) * 1000),
            finish_reason=usage.finish_reason,
            error=error[:500] if error else None,
        )
        await call_through_outages(
            lambda: self._calls.record(call),
            self._outages,
            max_delay_s=self._settings.db_outage_retry_max_s,
            what=f"{self._service}: recording a model call",
        )
