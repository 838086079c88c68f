"""What `planstream replay show` and `replay start` print: the decision diff as a table or JSON,
the summary, and progress (a bar on a terminal, plain lines otherwise). Pure formatting."""

from collections.abc import Mapping, Sequence
from typing import Any

from planstream.domain.replay import FailureKey, ReplaySummary, Side, StepDiff
from planstream.domain.rule_trace import RuleTrace

__all__ = ["diff_json", "diff_text", "progress_bar", "progress_line", "trace_text"]

_BAR_WIDTH = 30


def _key(key: FailureKey) -> str:
    rule, space = key
    return f"{rule}@{space}" if space else rule


def _side_json(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "decision": side.decision,
        "block_reason": side.block_reason,
        "failures": [f.model_dump(mode="json") for f in side.failures],
        "consistency_score": side.consistency_score,
        "cost_usd": side.cost_usd,
    }


def _summary_json(summary: ReplaySummary) -> dict[str, Any]:
    return {
        "attempts": summary.attempts,
        "replayed": summary.replayed,
        "unchanged": summary.unchanged,
        "flips": summary.flips,
        "flip_count": summary.flip_count,
        "reasons_changed": summary.reasons_changed,
        "failures_added": summary.failures_added,
        "failures_removed": summary.failures_removed,
        "severity_changes": summary.severity_changes,
        "errors": summary.errors,
        "replay_cost_usd": summary.replay_cost_usd,
    }


def diff_json(
    replay: Mapping[str, Any], diffs: Sequence[StepDiff], summary: ReplaySummary
) -> dict[str, Any]:
    """The whole replay as one JSON object: its record, every attempt's diff, the summary."""
    return {
        "replay": dict(replay),
        "attempts": [
            {
                "run_id": d.run_id,
                "step_id": d.step_id,
                "attempt": d.attempt,
                "original": _side_json(d.original),
                "replayed": _side_json(d.replayed),
                "flip": d.flip,
                "reason_changed": d.reason_changed,
                "failures_added": [_key(k) for k in d.failures_added],
                "failures_removed": [_key(k) for k in d.failures_removed],
                "severity_changes": [
                    {"failure": _key(c.key), "before": c.before, "after": c.after}
                    for c in d.severity_changes
                ],
                "score_delta": d.score_delta,
                "error": d.error,
            }
            for d in diffs
        ],
        "summary": _summary_json(summary),
    }


def _outcome(side: Side | None) -> str:
    if side is None:
        return "-"
    return f"{side.decision} ({side.block_reason})" if side.block_reason else side.decision


def _changes(d: StepDiff) -> str:
    if d.error is not None:
        return f"error: {d.error}"
    if d.replayed is None:
        return "not replayed yet"
    parts = [f"+{_key(k)}" for k in d.failures_added]
    parts += [f"-{_key(k)}" for k in d.failures_removed]
    parts += [f"{_key(c.key)} {c.before}→{c.after}" for c in d.severity_changes]
    if d.score_delta:
        parts.append(f"score {d.score_delta:+.2f}")
    return ", ".join(parts) or "unchanged"


def diff_text(
    replay: Mapping[str, Any], diffs: Sequence[StepDiff], summary: ReplaySummary, *, all_: bool
) -> str:
    """The replay as a terminal reads it: the changed attempts (every one with ``all_``), then
    the summary."""
    lines = [
        f"replay {replay['replay_id']} · {replay['mode']} · {replay['status']} · started by "
        f"{replay['started_by']} at {replay['started_at']}",
        f"rules {replay['versions_before']} → {replay['versions_after']}",
        "",
    ]
    shown = [d for d in diffs if all_ or d.changed or d.error or d.replayed is None]
    header = ("run", "step", "att", "original", "replayed", "changes")
    rows = [
        (d.run_id, str(d.step_id), str(d.attempt), _outcome(d.original), _outcome(d.replayed),
         _changes(d))
        for d in shown
    ]  # fmt: skip
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(5)]
    for row in (header, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    if not rows:
        lines.append("(no attempt changed)")
    flips = ", ".join(f"{kind} {n}" for kind, n in summary.flips.items()) or "none"
    lines += [
        "",
        f"{summary.replayed}/{summary.attempts} attempts replayed, {summary.unchanged} unchanged; "
        f"flips: {flips}",
        f"block reasons changed {summary.reasons_changed}, failures +{summary.failures_added} "
        f"-{summary.failures_removed}, severities changed {summary.severity_changes}, errors "
        f"{summary.errors}; replay cost ${summary.replay_cost_usd:.4f}",
    ]
    return "\n".join(lines)


def progress_bar(done: int, failed: int, total: int, status: str) -> str:
    """One terminal line, rewritten in place: ``[#####.....] 12/40 (1 failed) running``."""
    filled = _BAR_WIDTH * (done + failed) // total if total else _BAR_WIDTH
    bar = "#" * filled + "." * (_BAR_WIDTH - filled)
    failures = f" ({failed} failed)" if failed else ""
    return f"[{bar}] {done + failed}/{total}{failures} {status}"


def progress_line(done: int, failed: int, total: int, status: str, spent_usd: float) -> str:
    """One log-friendly line per change of progress."""
    return f"replayed {done + failed}/{total} (failed {failed}), {status}, ${spent_usd:.4f} spent"


def trace_text(step_id: int, attempt: int, traces: Sequence[RuleTrace], outcome: str) -> str:
    """What each rule read and concluded for one replayed attempt, and what was decided."""
    lines = [f"step {step_id} attempt {attempt}: {outcome}"]
    for trace in traces:
        read = ", ".join(f"{k}={v}" for k, v in trace.read.items())
        lines.append(f"  {trace.verdict:<15} {trace.rule:<30} {read}")
        lines += [f"  {'':<15} → {f.severity}: {f.detail}" for f in trace.failures]
    return "\n".join(lines)
