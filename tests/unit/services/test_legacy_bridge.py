"""The legacy bridge's real code on the fakes: a step attempt routed to the old function is
called with ids only, within the step's budget, decided by RULES.md on what the function
reported (``decided_by = legacy``), handed on by its route, and recorded on its job."""

from typing import Any

from planstream.domain.events import (
    DecisionMade,
    LegacyStepRequested,
    RenderRequested,
    RunBlocked,
    RunCompleted,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.rules import NOT_A_FLOOR_PLAN, Policy
from planstream.services.legacy_bridge import SERVICE, LegacyBridge
from planstream.services.metrics import REGISTRY
from tests.fakes import FakeLegacyFunction, FakeWorld, fake_image, legacy_error, make_world
from tests.unit.services.steps import WHEN
from topics import DECISION_MADE, LEGACY_REQUESTED, RENDER_REQUESTED, RUN_BLOCKED, RUN_COMPLETED


def _request(run_id: str, image_id: str, step: int = 2, attempt: int = 1) -> LegacyStepRequested:
    return LegacyStepRequested(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=WHEN,
        step_id=step,
        attempt=attempt,
        idempotency_key=step_key(run_id, step, attempt),
        input_artifact_ids=[image_id],
        quality="2K",
        requested_by="supervisor",
    )


async def _bridge(
    world: FakeWorld, step: int = 2, attempt: int = 1, *script: Any
) -> tuple[LegacyStepRequested, FakeLegacyFunction]:
    """The bridge run on one request for ``step`` of a new run whose step before has an image."""
    run, source = await world.new_run()
    image = source
    if step > 0:
        before = fake_image(2048, 1536)
        image = await world.add_artifact(run.run_id, step - 1, "render_image", before)
    function = FakeLegacyFunction(world.repo, world.storage)
    function.script(*script)
    request = _request(run.run_id, image, step, attempt)
    runtime = world.runtime("legacy_bridge")
    assert await runtime.jobs.receive(request, LEGACY_REQUESTED)
    await LegacyBridge(runtime, function, Policy(), draw=lambda: 0.5).handle(request)
    return request, function


async def test_a_step_run_by_the_old_function_is_decided_by_legacy_and_handed_on() -> None:
    world = make_world()

    request, function = await _bridge(world)

    assert function.requests == [request]
    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert (decision.decided_by, decision.decision, decision.step_id) == ("legacy", "proceed", 2)
    assert decision.idempotency_key == request.idempotency_key
    render = world.publisher.only(RENDER_REQUESTED, RenderRequested)  # step 3 is new by default
    assert (render.step_id, render.attempt) == (3, 1)
    assert render.source_artifact_id == decision.image_artifact_id != request.input_artifact_ids[0]
    job = world.job(SERVICE, request.idempotency_key)
    assert (job["service"], job["status"], job["last_error"]) == ("legacy", "completed", None)
    result = job["result_ref"]
    assert result["path"] == "legacy" and result["decision"] == "proceed"
    assert [c["code"] for c in result["calls"]] == ["OK"]
    assert result["request_bytes"] == result["calls"][0]["request_bytes"] > 0
    assert result["output_artifact_id"] == decision.image_artifact_id
    assert job["processing_time_ms"] is not None


async def test_the_next_step_follows_its_route() -> None:
    world = make_world()
    await world.routes.set_flags({"route.step3": "legacy"}, operator="t", reason="phase 1")

    await _bridge(world)

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    following = world.publisher.events(LEGACY_REQUESTED)
    assert len(following) == 1 and isinstance(following[0], LegacyStepRequested)
    assert (following[0].step_id, following[0].attempt) == (3, 1)
    assert following[0].input_artifact_ids == [decision.image_artifact_id]
    assert following[0].requested_by == "legacy"
    assert world.publisher.events(RENDER_REQUESTED) == []


async def test_the_last_step_completes_the_run() -> None:
    world = make_world()

    await _bridge(world, step=6)

    assert world.publisher.only(RUN_COMPLETED, RunCompleted).steps_completed == 7


async def test_step_zero_answers_its_input_and_step_one_follows() -> None:
    world = make_world()

    request, _ = await _bridge(world, step=0)

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert decision.image_artifact_id == request.input_artifact_ids[0]
    render = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    assert (render.step_id, render.source_artifact_id) == (1, request.input_artifact_ids[0])


async def test_a_transient_failure_is_called_again_within_the_budget() -> None:
    world = make_world()
    started = world.clock()

    request, function = await _bridge(world, 2, 1, legacy_error("SERVER_ERROR"))

    assert len(function.requests) == 2 and len(function.executions) == 1
    assert world.clock() > started  # it waited (the fake clock) before calling again
    job = world.job(SERVICE, request.idempotency_key)
    assert [c["code"] for c in job["result_ref"]["calls"]] == ["SERVER_ERROR", "OK"]
    assert world.publisher.only(DECISION_MADE, DecisionMade).decision == "proceed"


def _worker_limits() -> float:
    labels = {"step": "2", "code": "WORKER_LIMIT"}
    return REGISTRY.get_sample_value("planstream_legacy_calls_total", labels) or 0.0


async def test_worker_limit_is_not_called_again_and_the_step_is_retried_on_its_route() -> None:
    world = make_world()
    counted = _worker_limits()

    request, function = await _bridge(world, 2, 1, legacy_error("WORKER_LIMIT"))

    assert len(function.requests) == 1
    assert _worker_limits() == counted + 1  # planstream_legacy_calls_total{step, code}
    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert (decision.decided_by, decision.decision) == ("legacy", "retry")
    assert [f.rule for f in decision.failures] == ["LEGACY_FAILED"]
    assert "WORKER_LIMIT" in decision.failures[0].detail
    job = world.job(SERVICE, request.idempotency_key)
    assert job["status"] == "failed"
    assert job["last_error"].startswith("LEGACY_FAILED: WORKER_LIMIT")
    assert [c["code"] for c in job["result_ref"]["calls"]] == ["WORKER_LIMIT"]
    # Step 2's route is new: its next attempt renders the step again from step 1's image.
    again = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    assert (again.step_id, again.attempt) == (2, 2)
    assert again.source_artifact_id == request.input_artifact_ids[0]


async def test_a_retry_stays_on_legacy_while_the_step_is_routed_there() -> None:
    world = make_world()
    await world.routes.set_flags({"use_new_pipeline": "false"}, operator="t", reason="rollback")

    request, _ = await _bridge(world, 2, 1, legacy_error("WORKER_LIMIT"))

    [again] = world.publisher.events(LEGACY_REQUESTED)
    assert isinstance(again, LegacyStepRequested)
    assert (again.step_id, again.attempt, again.input_artifact_ids) == (
        2,
        2,
        request.input_artifact_ids,
    )


async def test_the_last_attempt_blocks_when_the_function_fails() -> None:
    world = make_world()

    await _bridge(world, 2, 3, legacy_error("WORKER_LIMIT"))

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert (decision.decision, decision.block_reason) == ("block", "retry_budget_exhausted")
    assert world.publisher.only(RUN_BLOCKED, RunBlocked).attempt == 3


async def test_a_function_that_never_answers_spends_the_budget() -> None:
    world = make_world()
    timeouts = [legacy_error("TIMEOUT")] * 3

    request, function = await _bridge(world, 2, 1, *timeouts)

    assert len(function.requests) == 3 and function.executions == []
    job = world.job(SERVICE, request.idempotency_key)
    assert [c["code"] for c in job["result_ref"]["calls"]] == ["TIMEOUT"] * 3
    assert "TIMEOUT on all 3 calls" in job["last_error"]


async def test_the_function_s_checks_are_decided_by_rules_md() -> None:
    world = make_world()
    critical = NOT_A_FLOOR_PLAN.failure("the old function saw a site plan")

    await _bridge(world, 2, 1, [critical])

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert (decision.decision, decision.block_reason) == ("block", "NOT_A_FLOOR_PLAN")


async def test_an_image_of_another_run_is_refused() -> None:
    world = make_world()
    _, other_source = await world.new_run()

    class Foreign(FakeLegacyFunction):
        async def _output(self, request: LegacyStepRequested) -> str:
            return other_source

    run, source = await world.new_run()
    request = _request(run.run_id, source, 0)
    runtime = world.runtime("legacy_bridge")
    await LegacyBridge(runtime, Foreign(world.repo, world.storage), Policy()).handle(request)

    decision = world.publisher.only(DECISION_MADE, DecisionMade)
    assert decision.decision == "retry" and decision.image_artifact_id is None
    assert "BAD_RESPONSE" in decision.failures[0].detail


async def test_a_step_attempt_delivered_twice_calls_the_function_once() -> None:
    world = make_world()
    request, function = await _bridge(world)

    runtime = world.runtime("legacy_bridge", "legacy_bridge-2")
    await LegacyBridge(runtime, function, Policy()).handle(request)

    assert len(function.requests) == 1
    assert len(world.publisher.events(DECISION_MADE)) == 1
