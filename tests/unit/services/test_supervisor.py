"""The Supervisor's real code on the fakes: proceed, retry and block as RULES.md decides them,
the LLM audit and its budget, and upstream failures decided without an audit."""

from datetime import UTC, datetime

import pytest

from planstream.domain.errors import EventRejected
from planstream.domain.events import (
    DecisionMade,
    Failure,
    InfoRequested,
    RenderRequested,
    RunBlocked,
    RunReviewed,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.rules import (
    ARTIFACT_MISSING,
    DUPLICATE_SPACE_IDS,
    MODEL_UNAVAILABLE,
    NOT_A_FLOOR_PLAN,
    Policy,
)
from planstream.services.supervisor import SERVICE, Supervisor
from tests.fakes import FakeWorld, make_world, timed_out
from tests.unit.services.steps import (
    audit_answer,
    make_comparison_completed,
    make_render_requested,
    make_step_failed,
)
from topics import DECISION_MADE, INFO_REQUESTED, RENDER_REQUESTED, RUN_BLOCKED, STEP_FAILED

DUPLICATE = DUPLICATE_SPACE_IDS.failure("S2 is numbered twice", space_id="S2")


async def _decide(
    world: FakeWorld, failures: list[Failure], attempt: int = 1
) -> tuple[DecisionMade, str]:
    """The Supervisor's decision on a comparison with ``failures``; and the step's image id."""
    run, source = await world.new_run()
    completed = make_comparison_completed(
        run.run_id, source, failures, attempt=attempt, model_calls=attempt
    )
    await Supervisor(world.runtime(SERVICE), Policy()).on_comparison(completed)
    return world.publisher.only(DECISION_MADE, DecisionMade), source


async def test_a_clean_step_proceeds_to_the_next_render() -> None:
    world = make_world()
    world.model.script_chat(audit_answer(0.95))

    decision, image = await _decide(world, [])

    assert (decision.decision, decision.consistency_score, decision.retry_budget_remaining) == (
        "proceed",
        0.95,
        2,
    )
    render = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    assert (render.step_id, render.attempt, render.source_artifact_id) == (1, 1, image)
    job = world.job(SERVICE, decision.idempotency_key)
    assert (job["status"], job["result_ref"]["decision"]) == ("completed", "proceed")
    [audit] = world.model.chat_requests
    assert audit.schema_name == "decision_audit_v1"


async def test_a_high_failure_within_the_budget_is_retried() -> None:
    world = make_world()
    world.model.script_chat(audit_answer(0.9))

    decision, image = await _decide(world, [DUPLICATE])

    assert (decision.decision, decision.block_reason) == ("retry", None)
    assert [f.rule for f in decision.failures] == ["DUPLICATE_SPACE_IDS"]
    again = world.publisher.only(INFO_REQUESTED, InfoRequested)
    assert (again.step_id, again.attempt, again.artifact_ids) == (0, 2, [image])
    assert again.idempotency_key == step_key(decision.run_id, 0, 2)
    assert world.publisher.topics() == [DECISION_MADE.name, INFO_REQUESTED.name]
    assert world.job(SERVICE, decision.idempotency_key)["status"] == "completed"


async def test_a_high_failure_at_the_last_attempt_blocks() -> None:
    world = make_world()
    world.model.script_chat(audit_answer(0.9))

    decision, _ = await _decide(world, [DUPLICATE], attempt=3)

    assert (decision.decision, decision.block_reason) == ("block", "retry_budget_exhausted")
    assert decision.retry_budget_remaining == 0
    blocked = world.publisher.only(RUN_BLOCKED, RunBlocked)
    assert (blocked.attempt, blocked.block_reason) == (3, "retry_budget_exhausted")
    assert world.job(SERVICE, decision.idempotency_key)["status"] == "blocked"
    assert world.publisher.events(INFO_REQUESTED) == []


async def test_a_critical_failure_blocks_at_once() -> None:
    world = make_world()
    world.model.script_chat(audit_answer(1.0))

    decision, _ = await _decide(world, [NOT_A_FLOOR_PLAN.failure("document_type is site_plan")])

    assert (decision.decision, decision.block_reason) == ("block", "NOT_A_FLOOR_PLAN")
    assert world.publisher.only(RUN_BLOCKED, RunBlocked).block_reason == "NOT_A_FLOOR_PLAN"


async def test_an_inconsistent_audit_is_a_failure_of_its_own() -> None:
    world = make_world()
    world.model.script_chat(audit_answer(0.2, "S7 balcony is not on the plan"))

    decision, _ = await _decide(world, [])

    assert decision.decision == "retry"
    assert [f.rule for f in decision.failures] == ["AUDIT_INCONSISTENT"]
    assert decision.contradictions == ["S7 balcony is not on the plan"]


async def test_an_audit_the_model_never_answers_uses_up_its_budget() -> None:
    world = make_world()
    world.model.script_chat(timed_out(), timed_out(), timed_out(), audit_answer())

    decision, _ = await _decide(world, [])

    assert [f.rule for f in decision.failures] == ["MODEL_UNAVAILABLE"]
    assert decision.decision == "retry" and world.model.unplayed == 1
    calls = world.model_calls.calls(decision.run_id)
    assert [(c.purpose, c.outcome) for c in calls] == [("audit", "timeout")] * 3


async def test_an_upstream_failure_is_decided_without_an_audit() -> None:
    world = make_world()
    run, _ = await world.new_run()
    failed = make_step_failed(run.run_id, ARTIFACT_MISSING.failure("the stored copy is gone"))

    await Supervisor(world.runtime(SERVICE), Policy()).on_step_failed(failed)

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert (decision.decision, decision.block_reason) == ("block", "ARTIFACT_MISSING")
    assert decision.audit_note == "nothing to audit: image_io failed with ARTIFACT_MISSING"
    assert world.publisher.only(RUN_BLOCKED, RunBlocked).step_id == 0
    assert world.model.chat_requests == []
    assert world.job(SERVICE, failed.idempotency_key)["status"] == "blocked"


async def test_a_transient_upstream_failure_repeats_the_failed_request() -> None:
    world = make_world()
    run, source = await world.new_run()
    render = make_render_requested(run.run_id, source, step_id=1)
    renderer = world.runtime("render_worker")
    assert await renderer.jobs.receive(render, RENDER_REQUESTED)
    job_id = world.job("render_worker", render.idempotency_key)["job_id"]
    failure = MODEL_UNAVAILABLE.failure("render: 3 of 3 model calls used without an answer")
    failed = make_step_failed(run.run_id, failure, "render_worker", step_id=1, job_id=job_id)

    await Supervisor(world.runtime(SERVICE), Policy()).on_step_failed(failed)

    assert world.publisher.only(DECISION_MADE, DecisionMade).decision == "retry"
    again = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    assert (again.step_id, again.attempt, again.source_artifact_id) == (1, 2, source)
    assert again.idempotency_key == step_key(run.run_id, 1, 2)
    assert again.event_id != render.event_id
    assert world.publisher.events(STEP_FAILED) == []


async def _blocked(world: FakeWorld) -> str:
    """A run blocked at step 0, attempt 3 (its newest decision), as the sink records it."""
    run, _ = await world.new_run()
    world.db.runs[run.run_id].status = "blocked"
    world.db.record_decision(run.run_id, 0, 3)
    return run.run_id


def _review(run_id: str, action: str = "approve") -> RunReviewed:
    return RunReviewed(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        action=action,
        reason="the plan is fine",
        reviewer="olga",
    )


async def test_the_review_that_claimed_the_block_is_carried_out() -> None:
    world = make_world()
    run_id = await _blocked(world)
    review = _review(run_id)
    world.db.review_claims[(run_id, 0, 3)] = review.event_id

    await Supervisor(world.runtime(SERVICE), Policy()).on_review(review)

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert (decision.decided_by, decision.decision, decision.attempt) == ("reviewer", "proceed", 3)
    assert decision.audit_note == "decided by olga: the plan is fine"


async def test_a_review_without_the_claim_is_refused_and_decides_nothing() -> None:
    """A raw-produced review, or one whose publish failed and whose claim went to another."""
    world = make_world()
    run_id = await _blocked(world)
    world.db.review_claims[(run_id, 0, 3)] = new_id("evt")  # another review holds the block

    with pytest.raises(EventRejected, match="holds no claim"):
        await Supervisor(world.runtime(SERVICE), Policy()).on_review(_review(run_id, "reject"))

    assert world.publisher.events(DECISION_MADE) == []
