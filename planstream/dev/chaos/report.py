"""The reliability report: one JSON record per test repeat in, ``reports/reliability.md`` out.

Tests append records (RELIABILITY.md's reporting template plus a few figures of their own) to a
JSON-lines file; ``python -m planstream.dev.chaos.report`` folds them per test into one table row —
sums of runs, worst of the maxima — with the commit the suite ran on.
"""

import argparse
import fcntl
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planstream.dev.chaos.profiles import PROFILES
from planstream.dev.reporting import (
    commit_description,
    markdown_cell,
    markdown_table,
    write_report,
)

__all__ = ["Result", "append", "build_report", "main"]


@dataclass
class Result:
    """One repeat of one test: the figures of RELIABILITY.md's reporting template."""

    test_id: str
    title: str
    fault: str
    profile: str
    seed: int
    repeat: int = 1
    runs_started: int = 0
    runs_terminal: int = 0
    lost_steps: int = 0
    runs_failed: int = 0
    runs_failed_unexplained: int = 0
    dup_decisions_physical: int = 0
    dup_decisions_logical: int = 0
    dup_decisions_topic: int = 0
    max_attempts: int = 0
    max_llm_calls_per_key: int = 0
    stale_epoch_writes_accepted: int = 0
    stale_writes_refused: int = 0
    canary_hits: int = 0
    presigned_in_logs: int = 0
    consumer_lag: int = 0
    recovery_s: float | None = None
    progress_during_fault: str = "n/a"
    verdict: str = "PASS"
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    finished_at: str = ""


def append(path: Path, result: Result) -> None:
    """Add one record to the JSON-lines file (locked: tests may share it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result.finished_at = result.finished_at or datetime.now(UTC).isoformat(timespec="seconds")
    line = json.dumps(asdict(result), default=str) + "\n"
    with path.open("a", encoding="utf-8") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(line)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _fold(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row per test: totals of runs, worst figures, the slowest recovery, any failure."""
    first = records[0]
    recoveries = [r["recovery_s"] for r in records if r.get("recovery_s") is not None]
    return {
        "test_id": first["test_id"],
        "title": first["title"],
        "fault": first["fault"],
        "repeats": len(records),
        "runs_started": sum(r["runs_started"] for r in records),
        "runs_terminal": sum(r["runs_terminal"] for r in records),
        "lost_steps": sum(r["lost_steps"] for r in records),
        "runs_failed": sum(r.get("runs_failed", 0) for r in records),
        "runs_failed_unexplained": sum(r.get("runs_failed_unexplained", 0) for r in records),
        "dup_decisions": sum(
            r["dup_decisions_physical"]
            + r["dup_decisions_logical"]
            + r.get("dup_decisions_topic", 0)
            for r in records
        ),
        "max_attempts": max(r["max_attempts"] for r in records),
        "max_llm_calls_per_key": max(r["max_llm_calls_per_key"] for r in records),
        "stale_epoch_writes_accepted": sum(r["stale_epoch_writes_accepted"] for r in records),
        "stale_writes_refused": sum(r["stale_writes_refused"] for r in records),
        "canary_hits": sum(r["canary_hits"] for r in records),
        "presigned_in_logs": sum(r["presigned_in_logs"] for r in records),
        "recovery_s": max(recoveries) if recoveries else None,
        "verdict": "PASS" if all(r["verdict"] == "PASS" for r in records) else "FAIL",
        "notes": "; ".join(dict.fromkeys(v for r in records for v in r.get("violations", [])))[
            :600
        ],
        "figures": [r.get("figures", {}) for r in records],
    }


def _pct(terminal: int, started: int) -> str:
    return "n/a" if started == 0 else f"{100 * terminal / started:.0f}%"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _profile_note(name: str) -> str:
    chosen = PROFILES.get(name)
    if chosen is None:
        return f"Unknown profile {name!r}."
    shown = ", ".join(f"{k}={v}" for k, v in chosen.as_dict().items() if k != "name")
    lease = (
        " The full profile's lease is 60 s, not the 300 s default: with 300 s, T03 and T18 take"
        " over ten minutes per repeat."
        if name == "full"
        else ""
    )
    return (
        f"`{name}`: {shown}.{lease} Every check is offline, over the whole history, after the"
        " quiesce; times are from a shared, noisy 2-core machine and are indicative only."
        " A run counts as terminal when it is completed, blocked (waiting for a person),"
        " rejected, or failed for a reason its test expects; any other failed run is lost"
        " (the failed column: all failed runs, the unexplained ones in brackets; each repeat"
        " lists them by reason). What one machine cannot show: docs/reliability.md."
    )


_HEAD = [
    "test",
    "fault",
    "repeats",
    "runs started",
    "runs terminal",
    "lost steps",
    "failed runs (unexplained)",
    "duplicate decisions",
    "max attempts per step",
    "max model calls per step",
    "stale writes accepted (refused)",
    "secrets found",
    "recovery time (s)",
    "verdict",
]


def _table_row(row: dict[str, Any]) -> tuple[object, ...]:
    """One folded test as the cells of the summary table (see ``_HEAD``)."""
    terminal = f"{row['runs_terminal']} ({_pct(row['runs_terminal'], row['runs_started'])})"
    return (
        f"{row['test_id']} {row['title']}",
        row["fault"],
        row["repeats"],
        row["runs_started"],
        terminal,
        row["lost_steps"],
        f"{row['runs_failed']} ({row['runs_failed_unexplained']})",
        row["dup_decisions"],
        row["max_attempts"],
        row["max_llm_calls_per_key"],
        f"{row['stale_epoch_writes_accepted']} ({row['stale_writes_refused']})",
        row["canary_hits"],
        row["recovery_s"],
        row["verdict"],
    )


def build_report(
    records: Iterable[dict[str, Any]], *, profile: str, commit: str, notes: str = ""
) -> tuple[str, dict[str, Any]]:
    """The markdown report and its JSON twin."""
    by_test: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_test.setdefault(record["test_id"], []).append(record)
    rows = [_fold(group) for _, group in sorted(by_test.items())]
    lines = [
        "# Reliability report",
        "",
        f"Profile **{profile}**, commit `{commit}`, written "
        f"{datetime.now(UTC).isoformat(timespec='seconds')} by `make chaos` "
        "(`python -m planstream.dev.chaos.report`). How to read and rerun it: docs/reliability.md.",
        "",
        *markdown_table(_HEAD, [[_cell(v) for v in _table_row(row)] for row in rows]),
    ]
    lines += ["", "## Per test figures", ""]
    for row in rows:
        lines.append(f"### {row['test_id']} {row['title']}")
        lines.append("")
        if row["notes"]:
            lines.append(f"Violations: {row['notes']}")
            lines.append("")
        for index, figures in enumerate(row["figures"], start=1):
            shown = ", ".join(f"{k}={markdown_cell(_cell(v))}" for k, v in figures.items())
            lines.append(f"- repeat {index}: {shown}")
        lines.append("")
    lines += ["## Profile", "", _profile_note(profile), ""]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    data = {"profile": profile, "commit": commit, "tests": rows}
    return "\n".join(lines), data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the reliability report")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--notes", type=Path, default=None, help="markdown appended as Notes")
    args = parser.parse_args(argv)
    records = read(args.results)
    # Any tracked change counts here, the reports included (the benchmarks ignore those).
    commit = commit_description(Path.cwd(), dirty="+dirty", ignore=())
    notes = args.notes.read_text(encoding="utf-8") if args.notes and args.notes.exists() else ""
    text, data = build_report(records, profile=args.profile, commit=commit, notes=notes)
    write_report(args.out, text, data)
    print(f"wrote {args.out} ({len(data['tests'])} tests, {len(records)} records)")
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())
