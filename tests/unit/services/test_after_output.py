"""Once a step's output is published, a PostgreSQL outage is waited out in place: the step is
not done again, so its output is published once and its model calls are made once.

Found by the step-throughput benchmark: with more processes than PostgreSQL had connection
slots, a Supervisor's finish failed after its DecisionMade was sent, the agent's outage retry
ran the whole step again, and the decision reached the topic twice (with a second audit)."""

import asyncio
from collections.abc import Callable
from typing import Any

from planstream.domain.events import DecisionMade, RenderRequested
from planstream.domain.records import Lease
from planstream.domain.rules import Policy
from planstream.services import info_worker
from planstream.services.jobs import StepWork
from planstream.services.supervisor import SERVICE, Supervisor
from tests.fakes import FakeWorld, make_world
from tests.fakes.leases import FakeJobLeases
from tests.fakes.routes import FakeRoutes
from tests.unit.services.steps import (
    audit_answer,
    clean_plan,
    make_comparison_completed,
    make_image_ready,
    plan_answer,
)
from topics import DECISION_MADE, INFO_EXTRACTED, RENDER_REQUESTED


class Outage(ConnectionError):
    """PostgreSQL is unreachable (the world takes this class for an outage)."""


def _failing(times: int, call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, failing with an Outage the first ``times`` times."""
    left = [times]

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise Outage("connection refused")
        return await call(*args, **kwargs)

    return failing


class _FlakyLeases(FakeJobLeases):
    """Leases whose finish and renewals meet an outage first."""

    def __init__(self, world: FakeWorld, finishes: int, renewals: int = 0) -> None:
        super().__init__(world.db)
        self.finish = _failing(finishes, super().finish)  # type: ignore[method-assign]
        self.renew = _failing(renewals, super().renew)  # type: ignore[method-assign]


class _FlakyRoutes(FakeRoutes):
    """Routes whose claim meets an outage first."""

    def __init__(self, world: FakeWorld, claims: int) -> None:
        super().__init__(world.db)
        self.claim = _failing(claims, super().claim)  # type: ignore[method-assign]


def _world() -> FakeWorld:
    world = make_world()
    world.outage_errors = (Outage,)
    return world


async def _supervise(world: FakeWorld) -> DecisionMade:
    run, source = await world.new_run()
    completed = make_comparison_completed(run.run_id, source, [])
    await Supervisor(world.runtime(SERVICE), Policy()).on_comparison(completed)
    return world.publisher.only(DECISION_MADE, DecisionMade)


async def test_an_outage_at_the_finish_is_waited_out_without_deciding_again() -> None:
    world = _world()
    world.leases = _FlakyLeases(world, finishes=3)
    world.model.script_chat(audit_answer(0.95))

    decision = await _supervise(world)  # only one DecisionMade, or ``only`` fails

    assert len(world.model.chat_requests) == 1  # one audit
    assert world.job(SERVICE, decision.idempotency_key)["status"] == "completed"
    world.publisher.only(RENDER_REQUESTED, RenderRequested)


async def test_an_outage_while_the_next_step_is_requested_does_not_decide_again() -> None:
    world = _world()
    world.routes = _FlakyRoutes(world, claims=2)
    world.model.script_chat(audit_answer(0.95))

    decision = await _supervise(world)

    assert len(world.model.chat_requests) == 1
    assert world.publisher.only(RENDER_REQUESTED, RenderRequested).step_id == 1
    assert world.job(SERVICE, decision.idempotency_key)["status"] == "completed"


async def test_an_extraction_is_published_once_through_an_outage_at_its_finish() -> None:
    world = _world()
    world.leases = _FlakyLeases(world, finishes=2)
    world.model.script_chat(plan_answer(clean_plan()))
    run, source = await world.new_run()

    ready = make_image_ready(run.run_id, source)
    await info_worker.InfoWorker(world.runtime(info_worker.SERVICE)).handle(ready)

    assert len(world.publisher.events(INFO_EXTRACTED)) == 1
    assert len(world.model.chat_requests) == 1
    assert world.job(info_worker.SERVICE, ready.idempotency_key)["status"] == "completed"


async def test_without_the_wait_the_outage_reaches_the_agent() -> None:
    """The self-test: a world that takes nothing for an outage hands the error up, so the tests
    above can fail."""
    world = make_world()
    world.leases = _FlakyLeases(world, finishes=1)
    world.model.script_chat(audit_answer(0.95))
    run, source = await world.new_run()
    completed = make_comparison_completed(run.run_id, source, [])

    try:
        await Supervisor(world.runtime(SERVICE), Policy()).on_comparison(completed)
    except Outage:
        pass
    else:
        raise AssertionError("the finish's outage was swallowed")


async def test_a_renewal_that_meets_an_outage_keeps_the_work_and_the_lease() -> None:
    world = _world()
    leases = _FlakyLeases(world, finishes=0, renewals=1)
    run, source = await world.new_run()
    job = world.runtime(SERVICE).jobs.new_job(
        make_comparison_completed(run.run_id, source, []), DECISION_MADE
    )
    taken = await leases.acquire(job, worker_id="w", lease_s=0.03)
    assert isinstance(taken, Lease)
    world.clock.advance(1.0)  # the lease as first taken has run out

    async with StepWork(taken, leases, 0.03, (Outage,)):  # beats every 10 ms
        await asyncio.sleep(0.06)  # the first renewal fails, the later ones extend the lease

    expires = world.db.jobs[taken.job_id].lease_expires_at
    assert expires is not None and expires > world.db.now()
