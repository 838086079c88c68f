"""The Supervisor's routing on the fakes: the next step and every new attempt go on the path the
flags give when they are requested (read through a cache of ``route_cache_s``); a step attempt
already requested keeps its path across a flip; a retry changes path when its route did."""

from planstream.domain.events import (
    DecisionMade,
    InfoRequested,
    LegacyStepRequested,
    RenderRequested,
    StepRequested,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.policy import render_size
from planstream.domain.rules import DUPLICATE_SPACE_IDS, MODEL_UNAVAILABLE, WORKER_LOST, Policy
from planstream.ports import ImageAnswer
from planstream.services.render_worker import RenderWorker
from planstream.services.supervisor import SERVICE, Supervisor
from tests.fakes import FakeWorld, fake_image, make_world
from tests.unit.services.steps import (
    WHEN,
    audit_answer,
    make_comparison_completed,
    make_render_requested,
    make_step_failed,
)
from topics import (
    DECISION_MADE,
    INFO_REQUESTED,
    LEGACY_REQUESTED,
    RENDER_REQUESTED,
    STEP_REQUESTED,
)

ROLLBACK = {"use_new_pipeline": "false"}
DUPLICATE = DUPLICATE_SPACE_IDS.failure("S2 is numbered twice", space_id="S2")


async def _flip(world: FakeWorld, updates: dict[str, str]) -> None:
    await world.routes.set_flags(updates, operator="ops", reason="drill")


async def _proceed(world: FakeWorld, supervisor: Supervisor, step: int = 0) -> tuple[str, str]:
    """The Supervisor proceeds on ``step`` of a new run; (run id, the step's image id)."""
    run, source = await world.new_run()
    image = source
    if step > 0:
        image = await world.add_artifact(run.run_id, step, "render_image", fake_image(2048, 1536))
    world.model.script_chat(audit_answer(0.95))
    await supervisor.on_comparison(make_comparison_completed(run.run_id, image, [], step_id=step))
    return run.run_id, image


async def test_the_next_step_goes_to_legacy_when_it_is_routed_there() -> None:
    world = make_world()
    await _flip(world, {f"route.step{step}": "legacy" for step in range(1, 7)})

    run_id, image = await _proceed(world, Supervisor(world.runtime(SERVICE), Policy()))

    request = world.publisher.only(LEGACY_REQUESTED, LegacyStepRequested)
    assert (request.step_id, request.attempt, request.input_artifact_ids) == (1, 1, [image])
    assert request.idempotency_key == step_key(run_id, 1, 1)
    assert request.requested_by == "supervisor" and request.quality == "2K"
    assert world.publisher.events(RENDER_REQUESTED) == []
    assert world.routes.claims[run_id, 1, 1] == "legacy"


async def test_use_new_pipeline_false_overrides_every_route() -> None:
    world = make_world()
    await _flip(world, ROLLBACK)

    await _proceed(world, Supervisor(world.runtime(SERVICE), Policy()), step=3)

    request = world.publisher.only(LEGACY_REQUESTED, LegacyStepRequested)
    assert (request.step_id, request.quality) == (4, "2K")  # the run's tier, 2K by default


async def test_a_flip_reaches_a_running_supervisor_within_the_cache_period() -> None:
    world = make_world(route_cache_s=5.0)
    supervisor = Supervisor(world.runtime(SERVICE), Policy())
    await _proceed(world, supervisor)  # reads the flags: all new
    await _flip(world, ROLLBACK)

    world.clock.advance(4.0)
    await _proceed(world, supervisor)
    assert len(world.publisher.events(RENDER_REQUESTED)) == 2  # still the flags read 4 s ago
    assert world.publisher.events(LEGACY_REQUESTED) == []

    world.clock.advance(1.0)
    await _proceed(world, supervisor)
    assert len(world.publisher.events(LEGACY_REQUESTED)) == 1
    assert world.routes.reads == 2  # one read per cache period, not one per decision


async def test_a_step_attempt_requested_before_a_flip_keeps_its_path() -> None:
    world = make_world(route_cache_s=1.0)
    supervisor = Supervisor(world.runtime(SERVICE), Policy())
    run_id, image = await _proceed(world, supervisor)
    first = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    await _flip(world, ROLLBACK)
    world.clock.advance(2.0)

    # The Supervisor's job was re-delivered (it crashed after its follow): the same decision
    # is made again and the next step requested again, on the path first recorded.
    world.db.jobs.clear()
    world.model.script_chat(audit_answer(0.95))
    await supervisor.on_comparison(make_comparison_completed(run_id, image, []))

    again = world.publisher.events(RENDER_REQUESTED)
    assert len(again) == 2 and again[1].idempotency_key == first.idempotency_key
    assert world.publisher.events(LEGACY_REQUESTED) == []


async def test_a_new_analysis_follows_the_route_of_its_attempt() -> None:
    world = make_world()
    supervisor = Supervisor(world.runtime(SERVICE), Policy())
    run, source = await world.new_run()
    world.model.script_chat(audit_answer(0.9))
    await supervisor.on_comparison(make_comparison_completed(run.run_id, source, [DUPLICATE]))
    again = world.publisher.only(INFO_REQUESTED, InfoRequested)
    assert (again.attempt, again.artifact_ids) == (2, [source])

    await _flip(world, ROLLBACK)
    world.clock.advance(world.settings.route_cache_s)
    world.model.script_chat(audit_answer(0.9))
    await supervisor.on_comparison(
        make_comparison_completed(run.run_id, source, [DUPLICATE], attempt=2, model_calls=2)
    )
    legacy = world.publisher.only(LEGACY_REQUESTED, LegacyStepRequested)
    assert (legacy.step_id, legacy.attempt, legacy.input_artifact_ids) == (0, 3, [source])


async def test_a_failed_render_is_retried_on_legacy_after_a_rollback() -> None:
    world = make_world()
    run, _ = await world.new_run()
    step1 = await world.add_artifact(run.run_id, 1, "render_image", fake_image(2048, 1536))
    render = make_render_requested(run.run_id, step1, step_id=2)
    renderer = world.runtime("render_worker")
    assert await renderer.jobs.receive(render, RENDER_REQUESTED)
    job_id = world.job("render_worker", render.idempotency_key)["job_id"]
    await _flip(world, ROLLBACK)
    failure = MODEL_UNAVAILABLE.failure("render: 3 of 3 model calls used without an answer")
    failed = make_step_failed(run.run_id, failure, "render_worker", step_id=2, job_id=job_id)

    await Supervisor(world.runtime(SERVICE), Policy()).on_step_failed(failed)

    assert world.publisher.only(DECISION_MADE, DecisionMade).decision == "retry"
    legacy = world.publisher.only(LEGACY_REQUESTED, LegacyStepRequested)
    assert (legacy.step_id, legacy.attempt, legacy.input_artifact_ids) == (2, 2, [step1])
    assert world.publisher.events(RENDER_REQUESTED) == []


async def test_a_lost_legacy_job_is_retried_on_the_new_path_after_a_flip_back() -> None:
    world = make_world()
    run, _ = await world.new_run()
    step2 = await world.add_artifact(run.run_id, 2, "render_image", fake_image(2048, 1536))
    request = LegacyStepRequested(
        event_id=new_id("evt"),
        run_id=run.run_id,
        occurred_at=WHEN,
        step_id=3,
        attempt=1,
        idempotency_key=step_key(run.run_id, 3, 1),
        input_artifact_ids=[step2],
        quality="2K",
        requested_by="supervisor",
    )
    bridge = world.runtime("legacy_bridge")
    assert await bridge.jobs.receive(request, LEGACY_REQUESTED)
    job_id = world.job("legacy", request.idempotency_key)["job_id"]
    lost = WORKER_LOST.failure("legacy: the lease expired on all 3 deliveries")
    failed = make_step_failed(run.run_id, lost, "legacy", step_id=3, job_id=job_id)

    await Supervisor(world.runtime(SERVICE), Policy()).on_step_failed(failed)  # step 3 is new

    render = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    assert (render.step_id, render.attempt, render.source_artifact_id) == (3, 2, step2)
    assert world.publisher.events(LEGACY_REQUESTED) == []


async def test_a_render_after_step_0_on_the_old_function_measures_the_upload() -> None:
    """Image I/O never measured a run's upload when step 0 ran on the old function: the render
    of step 1 on the new path measures it itself."""
    world = make_world()
    run, source = await world.new_run()  # a 2400 x 1800 upload, no measured size on record
    assert "width_px" not in (await world.repo.artifact(source)).metadata  # type: ignore[union-attr]
    render = make_render_requested(run.run_id, source, step_id=1)
    size = render_size(2400, 1800, "2K")
    world.model.script_image(ImageAnswer(fake_image(*size), 1_000, 4_000, 5))

    await RenderWorker(world.runtime("render_worker")).handle(render)

    [edit] = world.model.image_requests
    assert (edit.width, edit.height) == size
    assert world.publisher.only(STEP_REQUESTED, StepRequested).step_id == 1
