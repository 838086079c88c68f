"""Step 0 of a run through the four step services in process, each event handed to the next
service as its agent would: a flawed first answer, a retry, then the next step's render."""

from planstream.domain.events import (
    ComparisonCompleted,
    DecisionMade,
    ImageReady,
    InfoExtracted,
    InfoRequested,
    RenderRequested,
)
from planstream.domain.rules import Policy
from planstream.services import comparison_worker, image_io, info_worker, supervisor
from tests.fakes import make_world
from tests.unit.services.steps import audit_answer, clean_plan, make_step_requested, plan_answer
from topics import (
    COMPARISON_COMPLETED,
    DECISION_MADE,
    IMAGE_READY,
    INFO_EXTRACTED,
    INFO_REQUESTED,
    RENDER_REQUESTED,
)


def _flawed() -> dict[str, object]:
    """A clean plan whose last space is numbered like the first: DUPLICATE_SPACE_IDS."""
    document = clean_plan()
    document["spaces"][-1]["id"] = "S1"
    return document


async def test_a_flawed_first_answer_is_retried_then_the_run_moves_on() -> None:
    world = make_world()
    run, source = await world.new_run(request_text=None)
    images = image_io.ImageIO(world.runtime(image_io.SERVICE))
    info = info_worker.InfoWorker(world.runtime(info_worker.SERVICE))
    compare = comparison_worker.ComparisonWorker(world.runtime(comparison_worker.SERVICE), Policy())
    decide = supervisor.Supervisor(world.runtime(supervisor.SERVICE), Policy())
    world.model.script_chat(plan_answer(_flawed()), audit_answer(0.9))
    world.model.script_chat(plan_answer(), audit_answer(0.95))

    assert await images.handle(make_step_requested(run_id=run.run_id, input_artifact_ids=[source]))
    [ready] = world.publisher.events(IMAGE_READY)
    assert isinstance(ready, ImageReady)
    await info.handle(ready)
    first = world.publisher.events(INFO_EXTRACTED)[-1]
    assert isinstance(first, InfoExtracted)
    await compare.handle(first)
    compared = world.publisher.events(COMPARISON_COMPLETED)[-1]
    assert isinstance(compared, ComparisonCompleted)
    await decide.on_comparison(compared)
    [retry] = world.publisher.events(INFO_REQUESTED)
    assert isinstance(retry, InfoRequested) and retry.attempt == 2
    await info.handle(retry)
    second = world.publisher.events(INFO_EXTRACTED)[-1]
    assert isinstance(second, InfoExtracted)
    await compare.handle(second)
    compared = world.publisher.events(COMPARISON_COMPLETED)[-1]
    assert isinstance(compared, ComparisonCompleted)
    await decide.on_comparison(compared)

    decisions = [e for e in world.publisher.events(DECISION_MADE) if isinstance(e, DecisionMade)]
    assert [(d.attempt, d.decision) for d in decisions] == [(1, "retry"), (2, "proceed")]
    assert [f.rule for f in decisions[0].failures] == ["DUPLICATE_SPACE_IDS"]
    render = world.publisher.only(RENDER_REQUESTED, RenderRequested)
    assert (render.step_id, render.source_artifact_id) == (1, source)
    assert world.model.unplayed == 0
    statuses = {(row.service, row.attempt): row.status for row in world.db.jobs.values()}
    assert statuses == {
        ("image_io", 1): "completed",
        ("info_worker", 1): "completed",
        ("comparison_worker", 1): "completed",
        ("supervisor", 1): "completed",
        ("info_worker", 2): "completed",
        ("comparison_worker", 2): "completed",
        ("supervisor", 2): "completed",
    }
