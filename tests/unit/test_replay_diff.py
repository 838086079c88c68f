"""The decision diff: flips by kind, failures added and removed, severities, scores, the gate."""

from datetime import UTC, datetime

from planstream.domain.events import Failure, Severity
from planstream.domain.replay import Selection, Side, StepDiff, flip_gate, summarise


def failure(rule: str, severity: Severity = "high", space: str | None = None) -> Failure:
    return Failure(rule=rule, severity=severity, space_id=space, detail="d")


def side(
    decision: str,
    *failures: Failure,
    reason: str | None = None,
    score: float | None = None,
    cost: float = 0.0,
) -> Side:
    return Side(decision, reason, failures, score, cost)  # type: ignore[arg-type]


def diff(original: Side, replayed: Side | None, error: str | None = None) -> StepDiff:
    return StepDiff("run_x", 0, 1, original, replayed, error)


def test_the_same_decision_on_the_same_failures_is_unchanged() -> None:
    same = side("retry", failure("TOO_FEW_SPACES"), score=0.8)
    d = diff(same, same)
    assert d.flip is None and not d.changed
    assert d.score_delta == 0.0


def test_a_flip_is_named_by_both_decisions() -> None:
    d = diff(side("proceed"), side("retry", failure("LOW_CONFIDENCE_RATIO")))
    assert d.flip == "proceed→retry"
    assert d.failures_added == (("LOW_CONFIDENCE_RATIO", None),)
    assert d.failures_removed == ()
    assert d.changed


def test_failures_are_matched_by_rule_and_space() -> None:
    before = side("retry", failure("MISSING_FURNISHING", space="s1"), failure("X_RULE"))
    after = side("retry", failure("MISSING_FURNISHING", space="s2"), failure("X_RULE"))
    d = diff(before, after)
    assert d.flip is None
    assert d.failures_added == (("MISSING_FURNISHING", "s2"),)
    assert d.failures_removed == (("MISSING_FURNISHING", "s1"),)


def test_a_severity_change_is_reported_without_a_flip() -> None:
    d = diff(side("proceed", failure("R_ONE", "low")), side("proceed", failure("R_ONE", "medium")))
    [change] = d.severity_changes
    assert (change.key, change.before, change.after) == (("R_ONE", None), "low", "medium")
    assert d.changed and d.flip is None


def test_a_new_block_reason_is_a_change_but_not_a_flip() -> None:
    d = diff(side("block", reason="TOO_FEW_SPACES"), side("block", reason="too_many_failures"))
    assert d.flip is None and d.reason_changed and d.changed


def test_the_score_delta_needs_both_scores() -> None:
    assert diff(side("proceed", score=0.9), side("proceed", score=0.4)).score_delta == -0.5
    assert diff(side("proceed"), side("proceed", score=0.4)).score_delta is None


def test_the_summary_counts_flips_by_kind_and_the_unchanged() -> None:
    diffs = [
        diff(side("proceed"), side("proceed")),
        diff(side("proceed"), side("retry", failure("A_RULE"))),
        diff(side("retry", failure("A_RULE")), side("block", failure("A_RULE"), reason="B")),
        diff(side("proceed"), side("retry", failure("A_RULE"), cost=0.25)),
        diff(side("proceed"), None),  # not replayed yet
    ]
    summary = summarise(diffs)
    assert summary.attempts == 5 and summary.replayed == 4 and summary.unchanged == 1
    assert summary.flips == {"proceed→retry": 2, "retry→block": 1}
    assert summary.flip_count == 3
    assert summary.failures_added == 2
    assert summary.replay_cost_usd == 0.25


def test_the_gate_passes_within_the_limit_and_fails_over_it() -> None:
    flipped = summarise([diff(side("proceed"), side("retry", failure("A_RULE")))])
    assert flip_gate(flipped, 1) is None
    reason = flip_gate(flipped, 0)
    assert reason is not None and "1 decisions flipped (proceed→retry 1)" in reason


def test_the_gate_fails_on_what_it_could_not_see() -> None:
    errored = summarise([diff(side("proceed"), None, error="the recorded answer is gone")])
    assert flip_gate(errored, 10) == "1 of 1 attempts could not be replayed"
    waiting = summarise([diff(side("proceed"), None)])
    assert flip_gate(waiting, 10) == "1 of 1 attempts are not replayed yet"


def test_a_selection_names_what_it_refuses() -> None:
    ok = Selection(run_ids=("run_" + "a" * 32,), limit=10)
    assert ok.problem(max_limit=500) is None
    assert "refused: run_x" in (Selection(run_ids=("run_x",)).problem(500) or "")
    naive = Selection(since=datetime(2026, 12, 1))  # noqa: DTZ001 - the case refused
    assert "time zone" in (naive.problem(500) or "")
    backwards = Selection(
        since=datetime(2026, 12, 2, tzinfo=UTC), until=datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert backwards.problem(500) == "--since must be before --until"
    assert "between 1 and 500" in (Selection(limit=501).problem(500) or "")
    assert "--block-reason" in (Selection(block_reason="x; drop table").problem(500) or "")
    assert Selection(block_reason="retry_budget_exhausted").problem(500) is None
    assert ok.as_json()["run_ids"] == ["run_" + "a" * 32]
