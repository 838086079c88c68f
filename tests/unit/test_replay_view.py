"""What `planstream replay show` prints: the changed attempts, the summary, JSON, progress."""

import json

from planstream.cli.replay_view import diff_json, diff_text, progress_bar, trace_text
from planstream.domain.events import Failure
from planstream.domain.replay import Side, StepDiff, summarise
from planstream.domain.rule_trace import RuleTrace

REPLAY = {
    "replay_id": "rpl_" + "0" * 32,
    "mode": "frozen",
    "status": "completed",
    "started_by": "ops",
    "started_at": "2026-12-06T16:00:00+00:00",
    "versions_before": "rules-v1",
    "versions_after": "rules-v1+abc",
}
LOW = Failure(rule="LOW_CONFIDENCE_RATIO", severity="high", detail="3/4 below 0.5")
DIFFS = [
    StepDiff("run_a", 0, 1, Side("proceed", None, (), 0.9), Side("retry", None, (LOW,), 0.9)),
    StepDiff("run_b", 0, 1, Side("proceed", None, (), 0.8), Side("proceed", None, (), 0.8)),
    StepDiff("run_c", 0, 2, Side("retry", None, (LOW,), None), None, "no recorded answer"),
]


def test_the_table_lists_what_changed_and_the_summary() -> None:
    text = diff_text(REPLAY, DIFFS, summarise(DIFFS), all_=False)
    assert "run_a" in text and "+LOW_CONFIDENCE_RATIO" in text and "retry" in text
    assert "run_b" not in text  # unchanged: only with --all
    assert "error: no recorded answer" in text
    assert "2/3 attempts replayed, 1 unchanged; flips: proceed→retry 1" in text
    assert "run_b" in diff_text(REPLAY, DIFFS, summarise(DIFFS), all_=True)


def test_the_json_carries_both_sides_and_the_summary() -> None:
    out = diff_json(REPLAY, DIFFS, summarise(DIFFS))
    json.dumps(out)  # serialisable as is
    first = out["attempts"][0]
    assert first["flip"] == "proceed→retry"
    assert first["replayed"]["failures"][0]["rule"] == "LOW_CONFIDENCE_RATIO"
    assert out["attempts"][2]["replayed"] is None and out["attempts"][2]["error"]
    assert out["summary"]["flip_count"] == 1


def test_progress_fills_the_bar() -> None:
    assert progress_bar(0, 0, 4, "running").startswith("[" + "." * 30 + "] 0/4")
    assert progress_bar(3, 1, 4, "completed") == "[" + "#" * 30 + "] 4/4 (1 failed) completed"


def test_the_trace_shows_what_each_rule_read() -> None:
    text = trace_text(
        0, 1, [RuleTrace("LOW_CONFIDENCE_RATIO", "fired", {"share": 0.75}, (LOW,))], "retry"
    )
    assert "fired" in text and "share=0.75" in text and "high: 3/4 below 0.5" in text
