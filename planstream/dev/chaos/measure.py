"""Quiesce, then measure: wait for the history to settle, run every checker, fill a Result.

``Marks`` is taken when a test starts (log sizes, topic ends, database canary baseline), so a
test is charged only for what happened during it, although the environment is shared.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from planstream.dev.chaos.checkers import Check, DbFigures, check_database
from planstream.dev.chaos.conflicts import conflicting_decisions, decision_events
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.load import Ledger
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.secrets import Scan, log_offsets, scan_database, scan_logs, scan_records
from planstream.dev.chaos.streams import (
    OffsetSampler,
    consumer_lag,
    done_without_output,
    end_offsets,
    max_record_bytes,
    namespace_topics,
    outputs_by_key,
    read_topics,
    reexecutions,
    trace_unfinished,
)

__all__ = ["Marks", "mark", "measure", "quiesce", "thresholds"]


@dataclass
class Marks:
    """Where the shared history stood when a test began."""

    started: float
    wall: datetime
    logs: dict[Path, int]
    topics: dict[TopicPartition, int]
    db_scan: Scan
    model_calls_since: float = field(default=0.0)
    sampler: OffsetSampler | None = None


async def mark(harness: Harness) -> Marks:
    conn = await harness.connect()
    try:
        baseline = await scan_database(conn, harness.canaries.values())
    finally:
        await conn.close()
    topics = await end_offsets(harness.settings, namespace_topics(harness.settings))
    now = time.time()
    return Marks(
        time.monotonic(),
        datetime.now(UTC),
        log_offsets(harness.rig.log_files()),
        topics,
        baseline,
        now,
        OffsetSampler(harness.settings).start(),
    )


async def _open_runs(harness: Harness, runs: Sequence[str]) -> tuple[int, int]:
    conn = await harness.connect()
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status NOT IN"
            " ('completed', 'blocked', 'failed', 'rejected')) AS open,"
            " (SELECT count(*) FROM pipeline_jobs WHERE run_id = ANY($1) AND status = 'running')"
            " AS leased FROM pipeline_runs WHERE run_id = ANY($1)",
            list(runs),
        )
        return int(row["open"]), int(row["leased"])
    finally:
        await conn.close()


async def quiesce(harness: Harness, ledger: Ledger, timeout_s: float) -> float:
    """Wait until every run ended, no lease is held and the lag is 0; the seconds it took.

    A held lease resolves within its deliveries (each a lease plus a sweep), so that wait is
    bounded by them, not by ``timeout_s``: a lease still held after it is a finding, not a
    reason to wait longer. The lag may take as long as the runs: after a full replay every
    group re-reads the whole history.
    """
    began = time.monotonic()
    s = harness.settings
    runs = ledger.run_ids
    stages = (
        ("runs", timeout_s),
        ("leases", (s.lease_s + s.sweeper_interval_s) * s.max_attempts + 30.0),
        ("lag", timeout_s),
    )
    for stage, budget in stages:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            open_runs, leased = await _open_runs(harness, runs)
            if stage == "runs" and open_runs == 0:
                break
            if stage == "leases" and leased == 0:
                break
            if stage == "lag" and (await consumer_lag(s)).value == 0:
                break
            await asyncio.sleep(2.0)
    return time.monotonic() - began


async def first_progress_after(harness: Harness, moment: datetime) -> float | None:
    """Seconds from ``moment`` to the first job any service finished after it."""
    conn = await harness.connect()
    try:
        first = await conn.fetchval(
            "SELECT min(completed_at) FROM pipeline_jobs WHERE completed_at > $1", moment
        )
    finally:
        await conn.close()
    return None if first is None else (first - moment).total_seconds()


async def progress_between(harness: Harness, start: datetime, end: datetime) -> int:
    conn = await harness.connect()
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pipeline_jobs WHERE completed_at BETWEEN $1 AND $2",
                start,
                end,
            )
        )
    finally:
        await conn.close()


def thresholds(result: Result, max_attempts: int = 3, transport_attempts: int = 8) -> list[str]:
    """The acceptance figures of issue 4 that this result breaks. The model front sees every
    transport try (a 429's retry too), so its count per image and schema is held to
    ``max_attempts x transport_attempts``; planstream's records, to ``max_attempts`` calls."""
    broken = []
    if result.runs_terminal != result.runs_started:
        broken.append(f"runs terminal {result.runs_terminal}/{result.runs_started}")
    names = (
        "lost_steps",
        "runs_failed_unexplained",
        "dup_decisions_physical",
        "dup_decisions_logical",
        "dup_decisions_topic",
    )
    for name in names:
        if getattr(result, name):
            broken.append(f"{name}={getattr(result, name)}")
    if result.max_attempts > max_attempts:
        broken.append(f"max attempts per step {result.max_attempts} > {max_attempts}")
    if result.max_llm_calls_per_key > max_attempts:
        broken.append(f"model calls per step {result.max_llm_calls_per_key} > {max_attempts}")
    front = int(result.figures.get("stub_calls_per_key_max", 0))
    if front > max_attempts * transport_attempts:
        broken.append(f"model requests per step {front} > {max_attempts * transport_attempts}")
    if result.stale_epoch_writes_accepted:
        broken.append(f"stale-epoch writes accepted {result.stale_epoch_writes_accepted}")
    if result.canary_hits:
        broken.append(f"canary hits {result.canary_hits}")
    if result.consumer_lag:
        broken.append(f"consumer lag {result.consumer_lag}")
    return broken


async def measure(
    harness: Harness,
    marks: Marks,
    ledger: Ledger,
    result: Result,
    *,
    extra_checks: Sequence[Check] = (),
    figures: dict[str, Any] | None = None,
    expected_failures: Sequence[str] = (),
) -> Result:
    """Fill ``result`` from every checker on ``ledger``'s runs; verdict and violations too.

    ``expected_failures``: the reasons (regular expressions over a run's ``last_error``) the
    test's fault may end a run ``failed`` with; any other failed run counts as lost.
    """
    if marks.sampler is not None:
        await marks.sampler.stop()
    conn = await harness.connect()
    try:
        db: DbFigures = await check_database(
            conn,
            ledger.acked,
            ledger.indeterminate,
            max_attempts=harness.settings.max_attempts,
            expected_failures=expected_failures,
        )
        db_scan = await scan_database(conn, harness.canaries.values())
        open_runs = [
            r["run_id"]
            for r in await conn.fetch(
                "SELECT run_id FROM pipeline_runs WHERE run_id = ANY($1)"
                " AND status NOT IN ('completed', 'blocked', 'failed', 'rejected')",
                ledger.acked,
            )
        ]
        jobs = await conn.fetch(
            "SELECT service, idempotency_key, status FROM pipeline_jobs WHERE run_id = ANY($1)",
            ledger.run_ids,
        )
    finally:
        await conn.close()
    lag = await consumer_lag(harness.settings)
    records = await read_topics(harness.settings, namespace_topics(harness.settings), marks.topics)
    mine_ids = set(ledger.run_ids)
    mine = {run.encode() for run in mine_ids}
    counts = outputs_by_key([r for r in records if r.key in mine], harness.settings.topic_namespace)
    unfinished = done_without_output([(j[0], j[1], j[2]) for j in jobs], counts)
    conflicts = conflicting_decisions(records, harness.settings.topic_namespace, mine_ids)
    canaries = harness.canaries.values()
    scan = scan_logs(harness.rig.log_files(), canaries, marks.logs).add(
        scan_records(records, canaries)
    )
    db_hits = db_scan.canary_hits - marks.db_scan.canary_hits
    stub = _stub_calls(harness, marks)
    result.runs_started = db.runs_started
    result.runs_terminal = db.runs_terminal
    result.lost_steps = db.value("lost_steps")
    result.dup_decisions_physical = db.value("dup_decisions_physical")
    result.dup_decisions_logical = db.value("dup_decisions_logical")
    result.dup_decisions_topic = conflicts.value
    result.runs_failed = int(db.info["failed"])
    result.runs_failed_unexplained = db.value("failed_runs_unexplained")
    result.max_attempts = int(db.info["max_attempts"])
    result.max_llm_calls_per_key = int(db.info["max_llm_calls_per_key"])
    result.stale_epoch_writes_accepted = db.value("stale_epoch_writes_accepted")
    result.stale_writes_refused = int(db.info["stale_writes_refused"])
    result.canary_hits = scan.canary_hits + max(0, db_hits)
    result.presigned_in_logs = scan.signatures
    result.consumer_lag = lag.value
    result.duration_s = round(time.monotonic() - marks.started, 1)
    result.figures = {
        **db.info,
        "stub_calls_per_key_max": stub,
        "indeterminate": len(ledger.indeterminate),
        "raw_escapes_in_logs": scan.escapes,
        "reexecutions": reexecutions(counts),
        "decision_events_read": decision_events(
            records, harness.settings.topic_namespace, mine_ids
        ),
        "max_record_bytes": max_record_bytes(records),
        **(figures or {}),
    }
    if open_runs:
        result.figures["unfinished_traces"] = await trace_unfinished(
            harness.settings, open_runs[:5], marks.sampler
        )
    s = harness.settings
    violations = thresholds(result, s.max_attempts, s.model_transport_attempts)
    for check in (*db.checks, conflicts, lag, unfinished, *extra_checks):
        if check.value:
            violations.append(
                f"{check.invariant} {check.name}={check.value}: {'; '.join(check.evidence[:3])}"
            )
    if scan.places and scan.canary_hits:
        violations.append("canaries at " + "; ".join(scan.places[:5]))
    result.violations = list(dict.fromkeys(violations))
    result.verdict = "PASS" if not result.violations else "FAIL"
    return result


def _stub_calls(harness: Harness, marks: Marks) -> int:
    """The most chat calls the model front saw for one image and schema since the test began."""
    if harness.model is None:
        return 0
    counts: dict[tuple[str, str], int] = {}
    for call in harness.model.seen(marks.model_calls_since):
        if call.image_key is None or call.schema not in ("spaces_v1", "decision_audit_v1"):
            continue
        key = (call.image_key, call.schema)
        counts[key] = counts.get(key, 0) + 1
    return max(counts.values(), default=0)
