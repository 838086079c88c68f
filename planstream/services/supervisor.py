"""Supervisor: audit each step's outcome, decide proceed / retry / block, and drive the run on.

The decision is RULES.md's (``planstream.domain.decisions``), on the comparison's failures plus
the LLM audit's; the retry budget counts every extraction call of the step. Then: proceed → the next
step's render (or ``RunCompleted`` after step 6); retry → a new Info request; block → RunBlocked.
"""

import json
import logging
from dataclasses import dataclass
from typing import Final

import fastjsonschema

from planstream.crashpoints import crashpoint
from planstream.domain.decisions import (
    Audit,
    DecisionResult,
    RetryBudget,
    audit_failures,
    budget_window,
    decide,
)
from planstream.domain.errors import EventRejected, RecordMissing
from planstream.domain.events import (
    MAX_LISTED_FAILURES,
    ComparisonCompleted,
    DecisionMade,
    Event,
    Failure,
    RunReviewed,
    StepEvent,
    StepFailed,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.prompts import AUDIT, audit_messages
from planstream.domain.records import Artifact, Run
from planstream.domain.rules import (
    MODEL_REFUSED,
    REJECTED_BY_REVIEWER,
    SCHEMA_INVALID,
    Policy,
    clean_detail,
)
from planstream.domain.spaces import JsonRejected, parse_json
from planstream.ports import ChatAnswer
from planstream.services import metrics
from planstream.services.jobs import StepWork
from planstream.services.model_budget import BudgetedCaller, CallSpec, chat_usage
from planstream.services.rate_limits import prompt_tokens
from planstream.services.routing import path_of
from planstream.services.run_flow import RunFlow
from planstream.services.runtime import Runtime
from planstream.services.step_attempt import hold_step, step_versions
from topics import COMPARISON_COMPLETED, DECISION_MADE, STEP_FAILED, TopicSpec, by_name

__all__ = ["SERVICE", "Supervisor"]

log = logging.getLogger(__name__)

SERVICE: Final = "supervisor"
_check_audit = fastjsonschema.compile(AUDIT.schema)


@dataclass(frozen=True)
class _Audited:
    audit: Audit | None
    failure: Failure | None
    note: str | None
    outcome: str  # planstream_audits_total: scored | invalid | unavailable | refused | no_image


class Supervisor:
    """The Supervisor's logic for one step attempt."""

    def __init__(self, runtime: Runtime, policy: Policy) -> None:
        self._rt = runtime
        self._policy = policy
        self._caller = BudgetedCaller.of(runtime, SERVICE)
        self._flow = RunFlow(runtime)

    async def on_comparison(self, completed: ComparisonCompleted) -> None:
        rt = self._rt
        held = await hold_step(rt, completed, COMPARISON_COMPLETED)
        if held is None:
            return
        async with held.work as work:
            run = held.run
            audited = await self._audit(completed, work, run)
            failures = list(completed.failures)
            if audited.failure is not None:
                failures.append(audited.failure)
            elif completed.schema_valid:  # SCHEMA_INVALID stops the audit rule (RULES.md)
                failures += audit_failures(audited.audit, self._policy)
            budget = self._budget(completed, completed.model_calls)
            result = decide(failures, budget, self._policy)
            audit = audited.audit
            decision = self._decision(
                completed,
                result,
                budget,
                schema_valid=completed.schema_valid,
                consistency_score=audit.consistency_score if audit else None,
                contradictions=list(audit.contradictions) if audit else [],
                audit_note=audited.note,
                image_artifact_id=completed.image_artifact_id,
                spaces_artifact_id=completed.spaces_artifact_id,
                versions=step_versions(
                    AUDIT.version, rt.settings.model_vision, self._policy.version
                ),
            )
            await self._settle(decision, run, work)
            metrics.count_audit(audited.outcome, decision.consistency_score)

    async def on_step_failed(self, failed: StepFailed) -> None:
        """An upstream failure (Image I/O, render): decided like any failure, without an audit."""
        held = await hold_step(self._rt, failed, STEP_FAILED)
        if held is None:
            return
        async with held.work as work:
            budget = self._budget(failed, 1)
            result = decide([failed.failure], budget, self._policy)
            decision = self._decision(
                failed,
                result,
                budget,
                schema_valid=None,
                consistency_score=None,
                contradictions=[],
                audit_note=f"nothing to audit: {failed.service} failed with {failed.failure.rule}",
                image_artifact_id=None,
                spaces_artifact_id=None,
                versions=None,
            )
            again = await self._again(failed) if result.decision == "retry" else None
            await self._settle(decision, held.run, work, again)  # None: requested on its route

    async def on_review(self, review: RunReviewed) -> None:
        """A reviewer's decision on a blocked run, stored and carried out like any other."""
        rt = self._rt
        run = await rt.repo.get_run(review.run_id)
        blocked = await rt.repo.blocked_step(review.run_id) if run else None
        if run is None or run.status != "blocked" or blocked is None:
            log.warning("review ignored: the run is not blocked", extra={"run_id": review.run_id})
            return
        step, attempt = blocked
        if not await rt.repo.review_claimed(run.run_id, step, attempt, review.event_id):
            raise EventRejected(
                f"review {review.event_id} holds no claim on run {run.run_id}'s block at step"
                f" {step} attempt {attempt}: only a review the ingress accepted is carried out"
            )
        limit = rt.settings.max_attempts
        match review.action:
            case "approve":
                decision, reason = "proceed", None
            case "retry":
                decision, reason = "retry", None
            case "reject":
                decision, reason = "block", REJECTED_BY_REVIEWER
        made = DecisionMade(
            event_id=new_id("evt"),
            run_id=run.run_id,
            occurred_at=rt.clock(),
            step_id=step,
            attempt=attempt,
            idempotency_key=f"{step_key(run.run_id, step, attempt)}:review",
            decided_by="reviewer",
            decision=decision,
            block_reason=reason,
            failure_count=0,
            schema_valid=None,
            audit_note=clean_detail(f"decided by {review.reviewer}: {review.reason}"),
            retry_budget_remaining=limit,
            image_artifact_id=await rt.repo.step_image(run.run_id, step),
        )
        await rt.publisher.publish(DECISION_MADE, made)
        if decision == "retry":  # a fresh budget: the first attempt of the next window
            _, last = budget_window(attempt, limit)
            await self._flow.follow(made.model_copy(update={"attempt": last}), run)
        elif decision == "proceed":
            await self._flow.follow(made, run)

    def _budget(self, event: StepEvent, calls_in_window: int) -> RetryBudget:
        """Where the step stands in its budget: its attempt (or calls) within the window."""
        limit = self._rt.settings.max_attempts
        first, _ = budget_window(event.attempt, limit)
        return RetryBudget(max(event.attempt - first + 1, calls_in_window), limit)

    async def _again(self, failed: StepFailed) -> tuple[TopicSpec, Event] | None:
        """The failed service's request once more, as the step's next attempt; None when the
        next attempt's route is the other path (the run flow then requests it there)."""
        stored = await self._rt.repo.job_event(failed.job_id) if failed.job_id else None
        if stored is None:
            raise RecordMissing(f"no request is kept for the job that failed: {failed.job_id}")
        spec = by_name(stored[0])
        assert spec.value_model is not None
        attempt = failed.attempt + 1
        if await self._rt.routing.route(failed.run_id, failed.step_id, attempt) != path_of(spec):
            return None
        event = spec.value_model.model_validate(
            {
                **stored[1],
                "event_id": new_id("evt"),
                "occurred_at": self._rt.clock(),
                "attempt": attempt,
                "idempotency_key": step_key(failed.run_id, failed.step_id, attempt),
            }
        )
        assert isinstance(event, Event)
        return spec, event

    async def _settle(
        self,
        decision: DecisionMade,
        run: Run,
        work: StepWork,
        retry: tuple[TopicSpec, Event] | None = None,
    ) -> None:
        """Publish the decision, then what follows from it, then close the job."""
        await self._rt.publisher.publish(DECISION_MADE, decision)
        crashpoint("supervisor.after_decision")
        await self._rt.after_output(
            SERVICE, lambda: self._flow.follow(decision, run, retry), "what the decision calls for"
        )
        crashpoint("supervisor.after_follow")
        status = "blocked" if decision.decision == "block" else "completed"
        await self._rt.jobs.finish(
            work, status, {"event_id": decision.event_id, "decision": decision.decision}
        )

    def _decision(
        self,
        event: StepEvent,
        result: DecisionResult,
        budget: RetryBudget,
        **details: object,
    ) -> DecisionMade:
        failures = list(result.failures)
        return DecisionMade.model_validate(
            {
                **event.same_step(new_id("evt"), self._rt.clock()),
                "decision": result.decision,
                "block_reason": result.block_reason,
                "failures": failures[:MAX_LISTED_FAILURES],
                "failure_count": len(failures),
                "retry_budget_remaining": budget.remaining,
                **details,
            }
        )

    async def _audit(self, completed: ComparisonCompleted, work: StepWork, run: Run) -> _Audited:
        """The LLM audit of the step's image, document, rule results and request."""
        rt = self._rt
        wanted = [completed.image_artifact_id, completed.spaces_artifact_id]
        found = await rt.repo.artifacts([i for i in wanted if i])  # both in one read
        image = found.get(completed.image_artifact_id)
        if image is None:
            return _Audited(None, None, "the step's image is gone: nothing to audit", "no_image")
        url = rt.signed_urls.for_calls(image)
        spaces_id = completed.spaces_artifact_id
        spaces = await self._spaces(completed, found.get(spaces_id) if spaces_id else None)
        results = [f.model_dump(mode="json") for f in completed.failures]
        model = rt.settings.model_vision
        messages = audit_messages(await url(), spaces, results, run.request_text)
        estimate = prompt_tokens(messages, AUDIT.schema, rt.settings.model_image_prompt_tokens)

        async def ask() -> ChatAnswer:
            # The URL again before each try: a retry window can outlast the one asked first.
            return await rt.model.chat(
                model=model,
                messages=audit_messages(await url(), spaces, results, run.request_text),
                schema_name=AUDIT.schema_name,
                schema=AUDIT.schema,
            )

        answered = await self._caller.call(
            CallSpec(completed, work.lease.job_id, "audit", model, AUDIT.version, estimate),
            ask,
            chat_usage,
        )
        if answered.answer is None:
            refused = answered.failure is not None and answered.failure.rule == MODEL_REFUSED.name
            return _Audited(None, answered.failure, None, "refused" if refused else "unavailable")
        audit = _parse_audit(answered.answer.content)
        if audit is None:
            failure = SCHEMA_INVALID.failure("the audit answer is not decision_audit_v1")
            return _Audited(None, failure, None, "invalid")
        return _Audited(audit, None, None, "scored")

    async def _spaces(self, completed: ComparisonCompleted, artifact: Artifact | None) -> object:
        rt = self._rt
        if artifact is None or not completed.schema_valid:
            return None
        raw = await rt.storage.read(
            artifact.storage_bucket, artifact.storage_path, rt.settings.model_max_response_bytes
        )
        return json.loads(raw)


def _parse_audit(content: str | None) -> Audit | None:
    """The audit in the answer, or None when it breaks decision_audit_v1."""
    try:
        answer = _check_audit(parse_json(content or ""))
    except (fastjsonschema.JsonSchemaException, JsonRejected):
        return None
    notes = tuple(clean_detail(text) for text in answer["contradictions"])
    return Audit(float(answer["consistency_score"]), notes)
