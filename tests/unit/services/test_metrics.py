"""The metrics the services count, read back from the registry after their real code ran on the
fakes: audits and model calls, lease take-overs and stale writes, retries, the work pool; and the
bounded labels of decisions and the sweeper's gauges.

The registry is the process's own, so each test reads a value before and after (a delta)."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from planstream.domain.errors import RetryableError
from planstream.domain.events import DecisionMade, Failure
from planstream.domain.ids import new_id
from planstream.domain.rules import DUPLICATE_SPACE_IDS, Policy
from planstream.services import metrics
from planstream.services.retrying import RetryPolicy, call_with_retries
from planstream.services.supervisor import SERVICE, Supervisor
from planstream.services.workpool import WorkPool
from tests.fakes import FakeWorld, chat_answer, make_world
from tests.unit.services.steps import (
    WHEN,
    audit_answer,
    make_comparison_completed,
    make_image_ready,
)
from topics import DECISION_MADE, IMAGE_READY


def value(name: str, **labels: str) -> float:
    """A sample's value now (0 when the series does not exist yet)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def change(name: str, **labels: str) -> Iterator[list[float]]:
    """How much the sample moved during the block (in ``[0]`` afterwards)."""
    before = value(name, **labels)
    moved = [0.0]
    yield moved
    moved[0] = value(name, **labels) - before


async def _audit(world: FakeWorld, failures: list[Failure] | None = None) -> DecisionMade:
    run, source = await world.new_run()
    completed = make_comparison_completed(run.run_id, source, failures or [])
    await Supervisor(world.runtime(SERVICE), Policy()).on_comparison(completed)
    return world.publisher.only(DECISION_MADE, DecisionMade)


async def test_a_scored_audit_counts_the_audit_its_score_and_the_model_call() -> None:
    world = make_world()
    world.model.script_chat(audit_answer(0.95))
    model = world.settings.model_vision
    call = {"purpose": "audit", "model": model}
    with (
        change("planstream_audits_total", outcome="scored") as audits,
        change("planstream_audit_consistency_score_count") as scores,
        change("planstream_audit_consistency_score_sum") as score_sum,
        change("planstream_model_calls_total", **call, outcome="answered") as calls,
        change("planstream_model_tokens_total", **call, direction="input") as tokens_in,
        change("planstream_model_tokens_total", **call, direction="output") as tokens_out,
        change("planstream_model_cost_usd_total", **call) as cost,
        change("planstream_model_call_seconds_count", **call) as latencies,
    ):
        await _audit(world)

    assert (audits[0], scores[0], score_sum[0]) == (1, 1, pytest.approx(0.95))
    assert (calls[0], tokens_in[0], tokens_out[0], latencies[0]) == (1, 1_200, 300, 1)
    assert cost[0] == pytest.approx((1_200 * 2.50 + 300 * 10.00) / 1e6)
    assert value("planstream_model_calls_in_flight", service=SERVICE) == 0


async def test_an_audit_answer_that_breaks_its_schema_counts_as_invalid() -> None:
    world = make_world()
    world.model.script_chat(chat_answer("this is no audit"))
    with (
        change("planstream_audits_total", outcome="invalid") as invalid,
        change("planstream_audit_consistency_score_count") as scores,
    ):
        decision = await _audit(world)

    assert decision.consistency_score is None
    assert (invalid[0], scores[0]) == (1, 0)


async def test_a_take_over_and_the_stale_write_it_causes_are_counted_once() -> None:
    world = make_world()
    run, source = await world.new_run()
    event = make_image_ready(run.run_id, source)
    first = world.runtime("info_worker", "info_worker-a").jobs
    second = world.runtime("info_worker", "info_worker-b").jobs
    labels = {"service": "info_worker"}
    with (
        change("planstream_lease_takeovers_total", **labels) as takeovers,
        change("planstream_stale_writes_refused_total", **labels) as stale,
    ):
        old = await first.begin(event, IMAGE_READY)
        world.clock.advance(world.settings.lease_s + 1)
        new = await second.begin(event, IMAGE_READY)
        assert old is not None and new is not None
        assert await first.finish(old, "completed", {}) is False
        assert await second.finish(new, "completed", {}) is True

    assert (takeovers[0], stale[0]) == (1, 1)


async def test_the_holder_taking_its_own_job_again_is_no_take_over() -> None:
    world = make_world()
    run, source = await world.new_run()
    event = make_image_ready(run.run_id, source)
    jobs = world.runtime("info_worker", "info_worker-a").jobs
    with change("planstream_lease_takeovers_total", service="info_worker") as takeovers:
        assert await jobs.begin(event, IMAGE_READY) is not None
        assert await jobs.begin(event, IMAGE_READY) is not None  # a retry of the same worker

    assert takeovers[0] == 0


async def test_each_retry_of_a_transient_failure_is_counted_by_its_class() -> None:
    tries = 0

    async def flaky() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise RetryableError("the store blinked")
        return "done"

    def count(error: BaseException) -> None:
        metrics.count_retry("image_io", metrics.reason_of(error))

    with change("planstream_retries_total", service="image_io", reason="RetryableError") as moved:
        policy = RetryPolicy(attempts=3, base_delay_s=0.0)
        assert await call_with_retries(policy, flaky, what="t", on_retry=count) == "done"

    assert moved[0] == 2


async def test_the_work_pool_reports_its_capacity_and_busy_slots() -> None:
    pool = WorkPool(4, "metrics-pool")
    release = asyncio.Event()
    await pool.submit("a", release.wait)
    await pool.submit("b", release.wait)
    await asyncio.sleep(0)

    assert value("planstream_work_pool_capacity", service="metrics-pool") == 4
    assert value("planstream_work_pool_busy", service="metrics-pool") == 2
    release.set()
    await pool.drain(timeout_s=5)
    assert value("planstream_work_pool_busy", service="metrics-pool") == 0


def _decision(**overrides: object) -> DecisionMade:
    fields: dict[str, object] = {
        "event_id": new_id("evt"),
        "run_id": new_id("run"),
        "occurred_at": WHEN,
        "step_id": 3,
        "attempt": 1,
        "idempotency_key": "k",
        "decision": "block",
        "block_reason": "NOT_A_FLOOR_PLAN",
        "failure_count": 0,
        "schema_valid": True,
        "retry_budget_remaining": 2,
    }
    return DecisionMade.model_validate(fields | overrides)


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("NOT_A_FLOOR_PLAN", "NOT_A_FLOOR_PLAN"),
        ("retry_budget_exhausted", "retry_budget_exhausted"),
        ("MADE_UP_BY_A_FORGED_EVENT", "other"),
        (None, "none"),
    ],
)
def test_a_decision_is_counted_under_a_bounded_block_reason(reason: str | None, label: str) -> None:
    decision = "proceed" if reason is None else "block"
    with change("planstream_decisions_total", decision=decision, block_reason=label) as moved:
        metrics.count_decision(_decision(decision=decision, block_reason=reason), None)

    assert moved[0] == 1


def test_rule_failures_are_counted_by_catalogue_rule_and_severity() -> None:
    failures = [
        DUPLICATE_SPACE_IDS.failure("S2 twice", space_id="S2"),
        Failure(rule="NO_SUCH_RULE", severity="low", detail="forged"),
    ]
    severity = DUPLICATE_SPACE_IDS.severity
    with (
        change(
            "planstream_rule_failures_total", rule="DUPLICATE_SPACE_IDS", severity=severity
        ) as a,
        change("planstream_rule_failures_total", rule="other", severity="low") as forged,
    ):
        metrics.count_decision(_decision(failures=failures, failure_count=2), None)

    assert (a[0], forged[0]) == (1, 1)


def test_step_time_is_observed_for_the_supervisors_decisions_only() -> None:
    supervisor = _decision(step_id=2)
    reviewer = _decision(step_id=2, decided_by="reviewer", block_reason="rejected_by_reviewer")
    with (
        change("planstream_step_seconds_count", step="2") as count,
        change("planstream_step_seconds_sum", step="2") as total,
        change("planstream_step_seconds_bucket", step="2", le="60.0") as within,
    ):
        metrics.count_decision(supervisor, 42.5)
        metrics.count_decision(reviewer, 3_600.0)
        metrics.count_decision(supervisor, None)

    assert (count[0], total[0], within[0]) == (1, 42.5, 1)


def test_the_sweepers_gauges_are_bounded_and_zero_filled() -> None:
    metrics.set_runs_blocked({"NOT_A_FLOOR_PLAN": 2, "FORGED_REASON": 1, None: 1})
    assert value("planstream_runs_blocked", reason="NOT_A_FLOOR_PLAN") == 2
    assert value("planstream_runs_blocked", reason="other") == 2
    assert value("planstream_runs_blocked", reason="too_many_failures") == 0

    metrics.set_oldest_pending_jobs({"supervisor": 12.5, "somebody_else": 3.0})
    assert value("planstream_oldest_pending_job_seconds", service="supervisor") == 12.5
    assert value("planstream_oldest_pending_job_seconds", service="image_io") == 0
    assert value("planstream_oldest_pending_job_seconds", service="other") == 3.0

    metrics.set_consumer_lag({("planstream-supervisor", "planstream.step.failed.v1"): 7})
    metrics.set_consumer_lag({("planstream-image_io", "planstream.step.requested.v1"): 1})
    group = {"group": "planstream-supervisor", "topic": "planstream.step.failed.v1"}
    assert metrics.REGISTRY.get_sample_value("planstream_consumer_lag_messages", group) is None
    group = {"group": "planstream-image_io", "topic": "planstream.step.requested.v1"}
    assert value("planstream_consumer_lag_messages", **group) == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [(RetryableError("x"), "RetryableError"), (TimeoutError(), "TimeoutError")],
)
def test_a_reason_is_the_errors_class(error: BaseException, reason: str) -> None:
    assert metrics.reason_of(error) == reason
