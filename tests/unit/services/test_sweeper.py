"""The sweeper's real code on the fakes: a forgotten job is delivered again, but one whose kept
event can never be delivered (no longer valid, e.g. text kept before the stricter text rules)
is given up once, its run failed with why — not tried again at every sweep."""

from typing import Any

from planstream.domain.events import step_key
from planstream.domain.ids import new_id
from planstream.domain.records import NewJob
from planstream.domain.rules import MODEL_UNAVAILABLE
from planstream.services.sweeper import Sweeper
from tests.fakes import FakeWorld, make_world
from tests.unit.services.steps import make_step_failed
from topics import STEP_FAILED


async def _forgotten_job(world: FakeWorld, detail: str) -> tuple[str, str]:
    """A Supervisor job received and never leased, keeping a StepFailed whose failure's detail
    is ``detail`` (written as JSON, as PostgreSQL keeps it); (run id, job id)."""
    run, _ = await world.new_run()
    failed = make_step_failed(run.run_id, MODEL_UNAVAILABLE.failure("timed out"))
    event: dict[str, Any] = failed.model_dump(mode="json")
    event["failure"]["detail"] = detail
    job_id = new_id("job")
    await world.leases.receive(
        NewJob(
            job_id=job_id,
            run_id=run.run_id,
            step_id=0,
            attempt=1,
            service="supervisor",
            idempotency_key=f"supervisor:{step_key(run.run_id, 0, 1)}",
            payload_ref={"topic": STEP_FAILED.name, "event": event},
            max_attempts=3,
        )
    )
    world.clock.advance(world.settings.lease_s + 1)
    return run.run_id, job_id


async def test_a_forgotten_job_is_delivered_again() -> None:
    world = make_world()
    run_id, job_id = await _forgotten_job(world, "the model timed out")
    assert await Sweeper(world.runtime("sweeper"), world.leases).sweep() == 1
    assert [p.event.run_id for p in world.publisher.published] == [run_id]
    assert world.db.jobs[job_id].status == "pending"
    assert world.db.runs[run_id].status == "pending"


async def test_a_job_whose_kept_event_is_invalid_is_given_up_once() -> None:
    world = make_world()
    run_id, job_id = await _forgotten_job(world, "kept before the text rules \x1b[2J")
    sweeper = Sweeper(world.runtime("sweeper"), world.leases)
    assert await sweeper.sweep() == 1
    assert world.publisher.published == []
    job, run = world.db.jobs[job_id], world.db.runs[run_id]
    assert job.status == "failed"
    assert "keeps an invalid event: failure.detail" in (job.last_error or "")
    assert run.status == "failed"
    assert "the supervisor job cannot be re-driven" in (run.last_error or "")
    world.clock.advance(world.settings.lease_s + 1)
    assert await sweeper.sweep() == 0  # not tried again
