"""The fault suite's checkers that need no stack, each on a broken history that must fail it:
a failed run nobody explains is lost, and two different decisions for one step attempt on the
decisions topic are a duplicate even when the UNIQUE-keyed table kept only one of them.
"""

import uuid
from datetime import UTC, datetime

from planstream.dev.chaos.checkers import failed_runs
from planstream.dev.chaos.conflicts import conflicting_decisions, decision_events
from planstream.dev.chaos.measure import thresholds
from planstream.dev.chaos.report import Result, build_report
from planstream.dev.chaos.streams import Record
from planstream.domain.events import DecisionMade, step_key
from topics import DECISION_MADE, STEP_REQUESTED

NS = "chaos-t."
GAVE_UP = r"the Supervisor's job the lease expired on all \d+ deliveries"


def _run() -> str:
    return f"run_{uuid.uuid4().hex}"


def test_a_failed_run_without_a_reason_is_lost() -> None:
    silent, other, expected = _run(), _run(), _run()
    found = failed_runs(
        [
            (silent, None),
            (other, "  "),
            (expected, "the Supervisor's job the lease expired on all 3 deliveries"),
        ],
        expected=[GAVE_UP],
    )
    assert found.lost.value == 2 and found.lost.name == "failed_runs_unexplained"
    assert {silent, other} == {e.split(",")[0].removeprefix("run_id=") for e in found.lost.evidence}
    assert found.explained == (expected,)
    assert found.by_reason == {
        "(no reason recorded)": 2,
        "the Supervisor's job the lease expired on all 3 deliveries": 1,
    }


def test_a_reason_the_test_did_not_declare_explains_nothing() -> None:
    run = _run()
    reason = "the Supervisor's job no worker took it after 3 re-drives"
    assert failed_runs([(run, reason)]).lost.value == 1  # nothing declared
    assert failed_runs([(run, reason)], [GAVE_UP]).lost.value == 1  # another reason declared
    assert failed_runs([(run, reason + "!")], [reason]).lost.value == 1  # whole reason only
    assert failed_runs([(run, reason)], [reason]).lost.value == 0
    assert failed_runs([(run, None)], [".*"]).lost.value == 1  # no reason is never explained


def _decision(
    run: str, decision: str, *, by: str = "reviewer", reason: str | None = None
) -> DecisionMade:
    """A reviewer's decision on step 2 attempt 3 (the Supervisor's with ``by``)."""
    key = step_key(run, 2, 3)
    return DecisionMade(
        event_id=f"evt_{uuid.uuid4().hex}",
        run_id=run,
        occurred_at=datetime.now(UTC),
        step_id=2,
        attempt=3,
        idempotency_key=f"{key}:review" if by == "reviewer" else key,
        decided_by=by,
        decision=decision,
        block_reason=reason,
        failure_count=0,
        schema_valid=None,
        retry_budget_remaining=3,
    )


def _records(*events: DecisionMade, topic: str = DECISION_MADE.full_name(NS)) -> list[Record]:
    return [
        Record(topic, 0, offset, e.run_id.encode(), e.model_dump_json().encode(), (), 0)
        for offset, e in enumerate(events)
    ]


def test_two_conflicting_decisions_on_the_topic_are_a_duplicate() -> None:
    """An approve and a retry of one blocked step: the table keeps one (same key), the topic
    has both; the same decision delivered twice is only a redelivery."""
    forked, redelivered, clean = _run(), _run(), _run()
    approve = _decision(forked, "proceed")
    twice = _decision(redelivered, "retry")
    records = _records(
        approve,
        _decision(forked, "retry"),
        twice,
        twice.model_copy(update={"event_id": f"evt_{uuid.uuid4().hex}"}),
        _decision(clean, "block", by="supervisor", reason="NOT_A_FLOOR_PLAN"),
        _decision(clean, "proceed"),  # a reviewer after the Supervisor's block: two deciders
    )
    check = conflicting_decisions(records, NS, {forked, redelivered, clean})
    assert (check.invariant, check.name, check.value) == ("I2", "dup_decisions_topic", 1)
    assert forked in check.evidence[0] and "proceed" in check.evidence[0]
    assert "retry" in check.evidence[0]
    assert decision_events(records, NS, {forked, redelivered, clean}) == 6
    assert decision_events(records, NS, {forked}) == 2


def test_two_keys_for_one_step_attempt_are_a_duplicate() -> None:
    run = _run()
    first = _decision(run, "proceed", by="supervisor")
    again = first.model_copy(update={"idempotency_key": f"{first.idempotency_key}:again"})
    assert conflicting_decisions(_records(first, again), NS, {run}).value == 1


def test_only_the_tests_runs_on_the_decisions_topic_count() -> None:
    run = _run()
    fork = (_decision(run, "proceed"), _decision(run, "retry"))
    assert conflicting_decisions(_records(*fork), NS, {_run()}).value == 0
    elsewhere = _records(*fork, topic=STEP_REQUESTED.full_name(NS))
    assert conflicting_decisions(elsewhere, NS, {run}).value == 0
    hostile = [Record(DECISION_MADE.full_name(NS), 0, 0, None, b'{"run_id": ["x"]}', (), 0)]
    assert conflicting_decisions(hostile, NS, {run}).value == 0


def test_failed_runs_and_topic_duplicates_fail_the_thresholds_and_show_in_the_report() -> None:
    result = Result("T26", "S3", "down", "short", 1, runs_started=4, runs_terminal=3)
    result.runs_failed, result.runs_failed_unexplained, result.dup_decisions_topic = 2, 1, 1
    broken = thresholds(result)
    assert "runs terminal 3/4" in broken
    assert "runs_failed_unexplained=1" in broken and "dup_decisions_topic=1" in broken
    text, data = build_report([vars(result)], profile="short", commit="abc")
    row = data["tests"][0]
    assert (row["runs_failed"], row["runs_failed_unexplained"], row["dup_decisions"]) == (2, 1, 1)
    assert "| 2 (1) |" in text
