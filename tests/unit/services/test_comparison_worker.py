"""The Comparison Worker's real code on the fakes: the stored document against the rules, the
measured image and the user's request; an upstream failure passed on as it came."""

import json

from planstream.domain.events import ComparisonCompleted, InfoExtracted
from planstream.domain.rules import MODEL_REFUSED, Policy
from planstream.services.comparison_worker import SERVICE, ComparisonWorker
from tests.fakes import FakeWorld, make_world, timed_out
from tests.unit.services.steps import (
    clean_plan,
    comparison_answer,
    make_info_extracted,
    plan_answer,
)
from topics import COMPARISON_COMPLETED


async def _extracted(
    world: FakeWorld, document: object, request_text: str | None = None
) -> tuple[str, InfoExtracted]:
    run, source = await world.new_run(request_text=request_text)
    await world.repo.merge_artifact_metadata(source, {"width_px": 2400, "height_px": 1800})
    data = json.dumps(document).encode()
    spaces = await world.add_artifact(run.run_id, 0, "spaces_json", data)
    return run.run_id, make_info_extracted(run.run_id, source, spaces)


async def test_a_clean_plan_without_a_request_passes() -> None:
    world = make_world()
    _, extracted = await _extracted(world, clean_plan())

    await ComparisonWorker(world.runtime(SERVICE), Policy()).handle(extracted)

    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    assert (completed.passed, completed.schema_valid, completed.failures) == (True, True, [])
    assert world.model.chat_requests == []
    assert world.job(SERVICE, completed.idempotency_key)["result_ref"] == {
        "event_id": completed.event_id,
        "failures": 0,
    }


async def test_the_rules_run_against_the_measured_image() -> None:
    world = make_world()
    _, extracted = await _extracted(world, clean_plan(1000, 800))

    await ComparisonWorker(world.runtime(SERVICE), Policy()).handle(extracted)

    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    assert [f.rule for f in completed.failures] == ["IMAGE_SIZE_MISMATCH"]
    assert (completed.passed, completed.schema_valid) == (False, True)


async def test_the_request_is_compared_by_the_model() -> None:
    world = make_world()
    run_id, extracted = await _extracted(world, clean_plan(), request_text="Three bedrooms.")
    world.model.script_chat(comparison_answer(("2 bedrooms fewer than asked", "high")))

    await ComparisonWorker(world.runtime(SERVICE), Policy()).handle(extracted)

    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    [mismatch] = completed.failures
    assert (mismatch.rule, mismatch.severity) == ("REQUEST_MISMATCH", "high")
    [request] = world.model.chat_requests
    assert request.schema_name == "request_comparison_v1"
    assert json.loads(request.messages[-1]["content"])["request_text"] == "Three bedrooms."
    assert [(c.purpose, c.outcome) for c in world.model_calls.calls(run_id)] == [
        ("compare", "answered")
    ]


async def test_a_comparison_the_model_never_answers_is_model_unavailable() -> None:
    world = make_world()
    _, extracted = await _extracted(world, clean_plan(), request_text="Two bedrooms.")
    world.model.script_chat(timed_out(), timed_out(), timed_out())

    await ComparisonWorker(world.runtime(SERVICE), Policy()).handle(extracted)

    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    assert [f.rule for f in completed.failures] == ["MODEL_UNAVAILABLE"]


async def test_an_extraction_failure_is_passed_on_without_reading_a_document() -> None:
    world = make_world()
    run, source = await world.new_run()
    world.model.script_chat(plan_answer())  # nothing may take it
    extracted = make_info_extracted(
        run.run_id, source, None, failure=MODEL_REFUSED.failure("refused"), space_count=0
    )

    await ComparisonWorker(world.runtime(SERVICE), Policy()).handle(extracted)

    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    assert [f.rule for f in completed.failures] == ["MODEL_REFUSED"]
    assert completed.schema_valid is False and world.model.unplayed == 1


async def test_a_step_without_a_document_is_schema_invalid() -> None:
    world = make_world()
    run, source = await world.new_run()
    extracted = make_info_extracted(run.run_id, source, None)

    await ComparisonWorker(world.runtime(SERVICE), Policy()).handle(extracted)

    completed = world.publisher.only(COMPARISON_COMPLETED, ComparisonCompleted)
    assert [f.rule for f in completed.failures] == ["SCHEMA_INVALID"]
    assert completed.schema_valid is False
