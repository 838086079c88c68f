"""Model calls within a step's budget: every call, answered or not, is recorded and counted.

A call is recorded as ``started`` before it is made and completed after, each write waiting out
a PostgreSQL outage, so no call the model saw can be missing from the count (F10).

Two budgets (docs/model-protocol.md). The step's: ``max_attempts`` calls of each purpose over
all its attempts, each a first try (an answer, a timeout, a refusal, or a call whose transport
tries all failed). A call's transport budget: ``model_transport_attempts`` tries through 429s,
5xx and lost connections, each recorded with its ``transport_attempt``, paced by backoff or
Retry-After; a 429 also pauses the model's rate-limit bucket for every process. Before each try
the call waits its turn at the rate limiter (``planstream.services.rate_limits``), which spends
neither budget. A refusal is never retried.

An answered chat call's record keeps its content (capped at ``model_max_response_bytes``),
written by the update that completes the record, so a frozen replay can answer the same call
again without the model (``planstream.services.replay_model``). While a try is made,
``current_call`` names its step attempt and purpose to the model client.
"""

import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Generic, TypeVar

from planstream.domain.decisions import budget_window
from planstream.domain.events import Failure, StepEvent
from planstream.domain.ids import new_id
from planstream.domain.rules import MODEL_REFUSED, MODEL_UNAVAILABLE, REPLAY_COST_CAP
from planstream.ports import (
    ChatAnswer,
    Clock,
    CostCapReached,
    ModelCall,
    ModelCallLog,
    ModelRefused,
    ModelUnavailable,
    Purpose,
)
from planstream.services import metrics
from planstream.services.rate_limits import Allowance, ModelLimiter, Pacing, Sleep
from planstream.services.retrying import RetryPolicy, backoff_delay, wait_out_outages
from planstream.services.runtime import Runtime
from planstream.settings import Settings

__all__ = [
    "Answered",
    "BudgetedCaller",
    "CallSpec",
    "Usage",
    "chat_usage",
    "current_call",
    "price",
    "recordable_answer",
]

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    """What a call reports about itself, for the record."""

    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    answer: str | None = None  # a chat answer's content (an image edit keeps none)


def chat_usage(answer: ChatAnswer) -> Usage:
    """What a chat answer reports about itself, its content included."""
    return Usage(answer.input_tokens, answer.output_tokens, answer.finish_reason, answer.content)


def recordable_answer(content: str | None, max_bytes: int) -> str | None:
    """``content`` as a text column takes it: at most ``max_bytes`` of UTF-8 (cut on a
    character), a lone surrogate replaced, a NUL (which PostgreSQL text refuses) made U+FFFD.
    A JSON answer that held a raw NUL or a lone surrogate was invalid and stays invalid."""
    if content is None:
        return None
    data = content.encode("utf-8", "replace")[:max_bytes]
    return data.decode("utf-8", "ignore").replace("\x00", "\ufffd")


@dataclass(frozen=True)
class CallSpec:
    """Which call this is, for the step's budget and the record."""

    event: StepEvent
    job_id: str | None
    purpose: Purpose
    model: str
    prompt_version: str
    prompt_tokens: int = 0  # the prompt's estimate for the rate limiter (rate_limits.prompt_tokens)


current_call: ContextVar[CallSpec | None] = ContextVar("planstream_model_call", default=None)
"""The call a model client is asked for now (set around each try): its step attempt and
purpose, which a frozen replay's client answers by (``planstream.services.replay_model``)."""


@dataclass(frozen=True)
class Answered(Generic[T]):
    """The model's answer, or the failure that replaces it, and the step's calls so far."""

    answer: T | None
    failure: Failure | None
    calls_used: int


@dataclass(frozen=True)
class _Tried(Generic[T]):
    """How one call of the budget ended: an answer, a failure that ends the step's calls, or
    the error after which it may be tried again as the next call of the budget."""

    answer: T | None = None
    failure: Failure | None = None
    error: ModelUnavailable | None = None
    made: bool = True  # False: the rate limit's wait ran out before the call's first try


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
        limiter: ModelLimiter,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._calls = calls
        self._service = service
        self._outages = outages
        self._limiter = limiter
        self._sleep = sleep
        self._seconds = lambda: clock().timestamp()  # the clock the waits move (a fake's too)
        self._policy = RetryPolicy(attempts=settings.max_attempts)

    @classmethod
    def of(cls, runtime: Runtime, service: str) -> "BudgetedCaller":
        """The caller for ``service``'s model calls, on the runtime's call log, rate limiter
        and settings."""
        limiter = ModelLimiter(
            runtime.settings, runtime.limiter, runtime.sleep, runtime.outage_errors
        )
        return cls(
            runtime.settings,
            runtime.model_calls,
            service,
            runtime.outage_errors,
            limiter,
            runtime.sleep,
            runtime.clock,
        )

    async def call(
        self, spec: CallSpec, invoke: Callable[[], Awaitable[T]], usage: Callable[[T], Usage]
    ) -> Answered[T]:
        """The first answer within the budget, or MODEL_REFUSED / MODEL_UNAVAILABLE.

        The budget counts calls of the step (``max_attempts`` of each purpose over its
        attempts); a 429, a 5xx or a lost connection is tried again within the call's transport
        budget, and waiting for the rate limiter counts toward neither (docs/model-protocol.md).
        """
        budget = self._settings.max_attempts
        window = budget_window(spec.event.attempt, budget)
        used = await self._calls.count(spec.event.run_id, spec.event.step_id, spec.purpose, window)
        allowance = Allowance(self._settings.model_limiter_max_wait_s)
        failures = 0
        while used < budget:
            used += 1
            tried = await self._tries(spec, invoke, usage, allowance)
            if not tried.made:  # the rate limit's wait ran out before the call was made
                used -= 1
            if tried.answer is not None or tried.failure is not None:
                return Answered(tried.answer, tried.failure, used)
            failures += 1
            if used < budget and tried.error is not None:
                metrics.count_retry(self._service, f"model_{tried.error.outcome}")
                await self._sleep(self._delay(tried.error, failures))
        detail = f"{spec.purpose}: {used} of {budget} model calls used without an answer"
        return Answered(None, MODEL_UNAVAILABLE.failure(detail), used)

    async def _tries(
        self,
        spec: CallSpec,
        invoke: Callable[[], Awaitable[T]],
        usage: Callable[[T], Usage],
        allowance: Allowance,
    ) -> "_Tried[T]":
        """One call of the step's budget: its turn at the rate limiter, then its transport tries
        through 429s (which pause the model for every process), 5xx and lost connections."""
        pacing = Pacing(self._settings.model_retry_after_cap_s, self._sleep, self._seconds)
        tokens = self._limiter.estimate(spec.prompt_tokens)
        error: ModelUnavailable | None = None
        for transport in range(1, self._settings.model_transport_attempts + 1):
            waited = await self._limiter.wait_turn(spec.model, tokens, allowance)
            if waited is None:
                detail = f"{spec.purpose}: waited {allowance.waited_s:.0f} s for the rate limit"
                failure = MODEL_UNAVAILABLE.failure(f"{detail} of {spec.model}")
                return _Tried(failure=failure, made=transport > 1)
            if waited >= 1:
                log.info("waited %.0f s for the rate limit of %s", waited, spec.model)
            call_id = new_id("evt")
            turn = {"transport": transport, "waited_ms": int(waited * 1000)}
            opened = time.monotonic()
            await self._record(spec, call_id, opened, "started", Usage(0, 0, None), None, **turn)
            await pacing.keep_gap()  # the gap runs from the failure to the next try itself
            started = time.monotonic()
            naming = current_call.set(spec)
            try:
                with metrics.model_call_in_flight(self._service):
                    answer = await invoke()
            except ModelRefused as exc:
                await self._record(
                    spec, call_id, started, "refused", Usage(0, 0, None), str(exc), **turn
                )
                rule = REPLAY_COST_CAP if isinstance(exc, CostCapReached) else MODEL_REFUSED
                return _Tried(failure=rule.failure(str(exc)))
            except ModelUnavailable as exc:
                error = exc
                gap = pacing.failed(exc)
                await self._record(
                    spec, call_id, started, exc.outcome, Usage(0, 0, None), str(exc), **turn
                )
                if exc.outcome == "timeout":  # the model may have done the work: a budget call
                    return _Tried(error=exc)
                if exc.outcome == "throttled":
                    await self._limiter.throttle(spec.model, gap)
                if transport < self._settings.model_transport_attempts:
                    metrics.count_retry(self._service, f"model_{exc.outcome}")
                continue
            finally:
                current_call.reset(naming)
            used = usage(answer)
            await self._limiter.settle(spec.model, tokens, used.input_tokens + used.output_tokens)
            await self._record(spec, call_id, started, "answered", used, None, **turn)
            return _Tried(answer=answer)
        return _Tried(error=error)

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
        *,
        transport: int = 1,
        waited_ms: int = 0,
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
            transport_attempt=transport,
            waited_ms=waited_ms,
            answer=recordable_answer(usage.answer, self._settings.model_max_response_bytes),
        )
        await wait_out_outages(
            lambda: self._calls.record(call),
            self._outages,
            self._settings,
            self._service,
            "recording a model call",
        )
        if outcome != "started":  # the call ended and its record is written: count it
            metrics.count_model_call(
                spec.purpose,
                spec.model,
                outcome,
                seconds=call.latency_ms / 1000,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cost_usd=call.cost_usd,
            )
