"""The Info Worker's real code on the fakes: a document stored and announced, transport failures
retried within the call's transport budget, timeouts spending the step's budget (and the budget
running out), a refusal, and a result refused when the job was taken over while the model was
thinking."""

import json

from planstream.domain.events import ImageReady, InfoExtracted
from planstream.ports import ChatAnswer
from planstream.services.info_worker import SERVICE, InfoWorker
from tests.fakes import FakeWorld, make_world, refused, server_error, throttled, timed_out
from tests.fakes.model import ChatRequest
from tests.unit.services.steps import clean_plan, make_image_ready, plan_answer
from topics import IMAGE_READY, INFO_EXTRACTED


async def _ready(world: FakeWorld) -> tuple[str, str, ImageReady]:
    run, source = await world.new_run()
    return run.run_id, source, make_image_ready(run.run_id, source)


async def test_a_document_is_stored_and_announced() -> None:
    world = make_world()
    run_id, source, ready = await _ready(world)
    world.model.script_chat(plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert (extracted.failure, extracted.space_count, extracted.model_calls) == (None, 4, 1)
    assert extracted.image_artifact_id == source and extracted.spaces_artifact_id is not None
    spaces = await world.repo.artifact(extracted.spaces_artifact_id)
    assert spaces is not None and spaces.kind == "spaces_json"
    stored = await world.storage.read(spaces.storage_bucket, spaces.storage_path, 1 << 20)
    assert json.loads(stored) == clean_plan()
    [request] = world.model.chat_requests
    assert request.schema_name == "spaces_v1"
    assert [c.outcome for c in world.model_calls.calls(run_id)] == ["answered"]
    assert world.job(SERVICE, extracted.idempotency_key)["status"] == "completed"


async def test_transport_failures_are_retried_within_one_call_of_the_budget() -> None:
    world = make_world()
    run_id, _, ready = await _ready(world)
    world.model.script_chat(throttled(), server_error(), plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert (extracted.failure, extracted.model_calls) == (None, 1)
    calls = world.model_calls.calls(run_id)
    assert [(c.outcome, c.transport_attempt) for c in calls] == [
        ("throttled", 1),
        ("failed", 2),
        ("answered", 3),
    ]


async def test_three_unavailable_calls_exhaust_the_budget() -> None:
    world = make_world()
    run_id, _, ready = await _ready(world)
    world.model.script_chat(timed_out(), timed_out(), timed_out(), plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert extracted.failure is not None
    assert (extracted.failure.rule, extracted.failure.severity) == ("MODEL_UNAVAILABLE", "high")
    assert (extracted.spaces_artifact_id, extracted.raw_artifact_id) == (None, None)
    assert extracted.model_calls == 3 and world.model.unplayed == 1
    outcomes = [c.outcome for c in world.model_calls.calls(run_id)]
    assert outcomes == ["timeout", "timeout", "timeout"]
    job = world.job(SERVICE, extracted.idempotency_key)
    assert job["status"] == "completed" and job["last_error"].startswith("MODEL_UNAVAILABLE: ")


async def test_calls_of_earlier_attempts_count_against_the_budget() -> None:
    world = make_world()
    run_id, source, first = await _ready(world)
    world.model.script_chat(timed_out(), plan_answer(clean_plan(1000, 800)))
    await InfoWorker(world.runtime(SERVICE)).handle(first)
    second = make_image_ready(run_id, source, attempt=2)
    world.model.script_chat(timed_out(), plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(second)

    latest = world.publisher.events(INFO_EXTRACTED)[-1]
    assert isinstance(latest, InfoExtracted) and latest.attempt == 2
    assert latest.failure is not None and latest.failure.rule == "MODEL_UNAVAILABLE"
    assert latest.model_calls == 3 and world.model.unplayed == 1


async def test_a_refusal_is_not_retried() -> None:
    world = make_world()
    run_id, _, ready = await _ready(world)
    world.model.script_chat(refused(400, "image_url is not allowed"), plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert extracted.failure is not None and extracted.failure.rule == "MODEL_REFUSED"
    assert extracted.model_calls == 1 and world.model.unplayed == 1
    assert [c.outcome for c in world.model_calls.calls(run_id)] == ["refused"]


async def test_a_result_after_a_takeover_is_refused_and_not_recorded() -> None:
    world = make_world()
    run_id, _, ready = await _ready(world)
    other = world.runtime(SERVICE, worker_id="info_worker-other")

    async def thinks_past_the_lease(request: ChatRequest) -> ChatAnswer:
        world.clock.advance(world.settings.lease_s + 1)
        assert await other.jobs.begin(ready, IMAGE_READY) is not None
        return plan_answer()

    world.model.script_chat(thinks_past_the_lease)
    await InfoWorker(world.runtime(SERVICE, worker_id="info_worker-slow")).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    job = world.job(SERVICE, extracted.idempotency_key)
    assert (job["status"], job["locked_by"], job["result_epoch"]) == (
        "running",
        "info_worker-other",
        None,
    )
    [stale] = world.db.stale_writes
    assert (stale.presented_epoch, stale.current_epoch, stale.worker_id) == (
        1,
        2,
        "info_worker-slow",
    )
    assert [c.outcome for c in world.model_calls.calls(run_id)] == ["answered"]
