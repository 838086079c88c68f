"""The offline checkers of RELIABILITY.md §4 over PostgreSQL: I1-I6, on a set of runs.

Each checker reads the whole history after the load quiesced and returns a figure and its
evidence (the offending rows, a few of them), never a bare boolean: the report shows the figure,
the test asserts on it, and the checker's own test shows it is not zero on a broken history.

A run the pipeline gave up (status ``failed``: the sweeper ends one when the Supervisor's job
expired on every delivery, keeping why in ``last_error``) is lost work, not an ending, unless
the test declared that reason as the expected outcome of its fault (``expected_failures``).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

__all__ = ["TERMINAL", "Check", "DbFigures", "FailedRuns", "check_database", "failed_runs"]

TERMINAL = ("completed", "blocked", "failed", "rejected")
_EVIDENCE = 10


@dataclass(frozen=True)
class Check:
    """One invariant's figure on one history, with up to ten offending rows."""

    invariant: str
    name: str
    value: int
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class DbFigures:
    """Every database figure of one test's runs."""

    runs_started: int
    runs_terminal: int
    checks: tuple[Check, ...] = field(default_factory=tuple)
    info: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> int:
        for check in self.checks:
            if check.name == name:
                return check.value
        raise KeyError(name)


def _rows(records: Sequence[asyncpg.Record]) -> tuple[str, ...]:
    return tuple(", ".join(f"{k}={v}" for k, v in dict(r).items()) for r in records[:_EVIDENCE])


_NO_REASON = "(no reason recorded)"
_REASON_CHARS = 200


@dataclass(frozen=True)
class FailedRuns:
    """A test's failed runs: the unexplained ones as a check (lost), the explained ones' ids,
    and every failed run counted by its recorded reason."""

    lost: Check
    explained: tuple[str, ...]
    by_reason: dict[str, int]


def failed_runs(
    failed: Sequence[tuple[str, str | None]], expected: Sequence[str] = ()
) -> FailedRuns:
    """Split failed runs (run id, recorded reason) by the reasons the test expects: regular
    expressions, each to match a whole reason. A run with no reason is never explained."""
    patterns = [re.compile(pattern) for pattern in expected]
    lost: list[str] = []
    explained: list[str] = []
    by_reason: dict[str, int] = {}
    for run_id, reason in failed:
        text = (reason or "").strip()[:_REASON_CHARS]
        by_reason[text or _NO_REASON] = by_reason.get(text or _NO_REASON, 0) + 1
        if text and any(pattern.fullmatch(text) for pattern in patterns):
            explained.append(run_id)
        else:
            lost.append(f"run_id={run_id}, reason={text or _NO_REASON}")
    check = Check("I1", "failed_runs_unexplained", len(lost), tuple(lost[:_EVIDENCE]))
    return FailedRuns(check, tuple(explained), by_reason)


# I1: every step attempt that was asked for has a decision. Asked for: step 0 attempt 1 of every
# acked run; the attempt after a retry; step+1 after a proceed (below step 6); any job's step
# attempt. A run rejected as a whole, or failed for a reason its test expects ($2), ends its
# steps; any other failed run keeps them asked for.
_LOST_STEPS = """
WITH asked AS (
    SELECT run_id, 0::smallint AS step_id, 1::smallint AS attempt FROM unnest($1::text[]) AS run_id
    UNION SELECT run_id, step_id, (attempt + 1)::smallint FROM pipeline_decisions
        WHERE run_id = ANY($1) AND decision = 'retry'
    UNION SELECT run_id, (step_id + 1)::smallint, 1::smallint FROM pipeline_decisions
        WHERE run_id = ANY($1) AND decision = 'proceed' AND step_id < 6
    UNION SELECT run_id, step_id, attempt FROM pipeline_jobs WHERE run_id = ANY($1)
)
SELECT a.run_id, a.step_id, a.attempt, r.status
FROM asked a
JOIN pipeline_runs r USING (run_id)
LEFT JOIN pipeline_decisions d USING (run_id, step_id, attempt)
WHERE d.run_id IS NULL AND r.status <> 'rejected'
  AND NOT (r.status = 'failed' AND a.run_id = ANY($2::text[]))
ORDER BY 1, 2, 3
"""

# I1, indeterminate sends: absent is fine, present means processed exactly once.
_INDETERMINATE_TWICE = """
SELECT run_id, step_id, attempt, count(*) AS decisions FROM pipeline_decisions
WHERE run_id = ANY($1) AND decided_by IN ('supervisor', 'legacy')
GROUP BY 1, 2, 3 HAVING count(*) > 1
"""

# I2 across the two paths (docs/migration.md): a step attempt decided by both the Supervisor and
# the legacy bridge, or worked on by a planstream step service and the old function. (The
# Supervisor deciding on a legacy job the sweeper gave up is one path's failure, not two paths.)
_DECIDED_ON_BOTH_PATHS = """
SELECT run_id, step_id, attempt, array_agg(decided_by ORDER BY decided_by) AS deciders
FROM pipeline_decisions WHERE run_id = ANY($1) AND decided_by IN ('supervisor', 'legacy')
GROUP BY 1, 2, 3 HAVING count(DISTINCT decided_by) > 1
"""

_DONE_ON_BOTH_PATHS = """
SELECT run_id, step_id, attempt, array_agg(service ORDER BY service) AS services
FROM pipeline_jobs WHERE run_id = ANY($1) AND service <> 'supervisor'
GROUP BY 1, 2, 3 HAVING bool_or(service = 'legacy') AND bool_or(service <> 'legacy')
"""

_DUP_PHYSICAL = """
SELECT idempotency_key, count(*) AS copies FROM pipeline_decisions
WHERE run_id = ANY($1) GROUP BY 1 HAVING count(*) > 1
"""

_DUP_LOGICAL = """
SELECT run_id, step_id, attempt, decided_by, count(*) AS copies FROM pipeline_decisions
WHERE run_id = ANY($1) GROUP BY 1, 2, 3, 4 HAVING count(*) > 1
"""

_NOT_TERMINAL = """
SELECT run_id, status, current_step, updated_at FROM pipeline_runs
WHERE run_id = ANY($1) AND status NOT IN ('completed', 'blocked', 'failed', 'rejected')
"""

# The run's status must follow from its decisions: completed <=> step 6 proceeded; blocked <=>
# its newest decision is a block.
_STATUS_CONTRADICTS = """
SELECT r.run_id, r.status,
       bool_or(d.step_id = 6 AND d.decision = 'proceed') AS six_proceeded,
       bool_or(d.decision = 'block') AS any_block
FROM pipeline_runs r LEFT JOIN pipeline_decisions d USING (run_id)
WHERE r.run_id = ANY($1)
GROUP BY r.run_id, r.status
HAVING (r.status = 'completed')
       <> coalesce(bool_or(d.step_id = 6 AND d.decision = 'proceed'), false)
    OR (r.status = 'blocked' AND NOT coalesce(bool_or(d.decision = 'block'), false))
"""

_ATTEMPTS = """
SELECT run_id, step_id, service, attempt, attempts AS deliveries, max_attempts FROM pipeline_jobs
WHERE run_id = ANY($1) AND (attempt > $2 OR attempts > $2)
"""

_MAX_ATTEMPTS = """
SELECT coalesce(max(greatest(attempt, attempts)), 0) AS worst,
       coalesce(max(attempt), 0) AS attempt, coalesce(max(attempts), 0) AS deliveries
FROM pipeline_jobs WHERE run_id = ANY($1)
"""

# The step's budget counts first tries; a transport retry (429, 5xx) is part of its call.
_CALLS_OVER_BUDGET = """
SELECT run_id, step_id, purpose, count(*) AS calls FROM pipeline_model_calls
WHERE run_id = ANY($1) AND transport_attempt = 1 GROUP BY 1, 2, 3 HAVING count(*) > $2
"""

_MAX_CALLS = """
SELECT coalesce(max(n), 0) FROM (
    SELECT count(*) AS n FROM pipeline_model_calls WHERE run_id = ANY($1) AND transport_attempt = 1
    GROUP BY run_id, step_id, purpose
) per_step
"""

# I5: a job's result must be written by the epoch that holds the lease (the fence); a completed
# job without a result epoch was written around the fence.
_STALE_ACCEPTED = """
SELECT job_id, run_id, step_id, attempt, service, status, lease_epoch, result_epoch
FROM pipeline_jobs
WHERE run_id = ANY($1)
  AND ((result_epoch IS NOT NULL AND result_epoch <> lease_epoch)
       OR (status = 'completed' AND result_epoch IS NULL))
"""

_STALE_REFUSED = """
SELECT count(*) FROM pipeline_stale_writes s JOIN pipeline_jobs j USING (job_id)
WHERE j.run_id = ANY($1)
"""

_TAKEOVERS = """
SELECT count(*) FILTER (WHERE lease_epoch > 1) AS taken_over, coalesce(sum(redrives), 0) AS redrives
FROM pipeline_jobs WHERE run_id = ANY($1)
"""

# I8: after the quiesce no lease may still be held (a job left running is hanging work).
_HELD = """
SELECT job_id, service, run_id, step_id, attempt, attempts, lease_epoch, redrives, lease_expires_at
FROM pipeline_jobs WHERE run_id = ANY($1) AND status = 'running'
"""

# I6: one render per (run, step): keys are content hashes, so two objects are two contents.
_RENDERS = """
SELECT run_id, step_id, count(*) AS renders FROM pipeline_artifacts
WHERE run_id = ANY($1) AND kind = 'render_image' GROUP BY 1, 2 HAVING count(*) > 1
"""

_BLOCK_REASONS = """
SELECT coalesce(block_reason, status) AS reason, count(*) AS runs FROM pipeline_runs
WHERE run_id = ANY($1) AND status <> 'completed' GROUP BY 1 ORDER BY 2 DESC
"""

_FAILED = """
SELECT run_id, last_error FROM pipeline_runs WHERE run_id = ANY($1) AND status = 'failed'
ORDER BY run_id
"""

_TERMINAL = """
SELECT count(*) FILTER (WHERE status IN ('completed', 'blocked', 'failed', 'rejected')) AS terminal,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'blocked') AS blocked,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM pipeline_runs WHERE run_id = ANY($1)
"""


async def check_database(
    conn: asyncpg.Connection,
    acked: Sequence[str],
    indeterminate: Sequence[str] = (),
    *,
    max_attempts: int = 3,
    expected_failures: Sequence[str] = (),
) -> DbFigures:
    """I1-I6 on the runs of one test (acked step-0 requests, and the indeterminate ones);
    ``expected_failures``: the reasons (regular expressions) a failed run may end with."""
    runs = list(acked)
    every = runs + [r for r in indeterminate if r not in runs]
    failed = failed_runs(
        [(r["run_id"], r["last_error"]) for r in await conn.fetch(_FAILED, runs)],
        expected_failures,
    )
    lost = await conn.fetch(_LOST_STEPS, runs, list(failed.explained))
    twice = await conn.fetch(_INDETERMINATE_TWICE, list(indeterminate))
    physical = await conn.fetch(_DUP_PHYSICAL, every)
    logical = await conn.fetch(_DUP_LOGICAL, every)
    decided_twice = await conn.fetch(_DECIDED_ON_BOTH_PATHS, every)
    done_twice = await conn.fetch(_DONE_ON_BOTH_PATHS, every)
    not_terminal = await conn.fetch(_NOT_TERMINAL, runs)
    contradicts = await conn.fetch(_STATUS_CONTRADICTS, runs)
    over = await conn.fetch(_ATTEMPTS, every, max_attempts)
    worst = await conn.fetchrow(_MAX_ATTEMPTS, every)
    calls_over = await conn.fetch(_CALLS_OVER_BUDGET, every, max_attempts)
    max_calls = await conn.fetchval(_MAX_CALLS, every)
    stale = await conn.fetch(_STALE_ACCEPTED, every)
    refused = await conn.fetchval(_STALE_REFUSED, every)
    takeovers = await conn.fetchrow(_TAKEOVERS, every)
    renders = await conn.fetch(_RENDERS, every)
    held = await conn.fetch(_HELD, every)
    terminal = await conn.fetchrow(_TERMINAL, runs)
    reasons = await conn.fetch(_BLOCK_REASONS, runs)
    checks = (
        Check("I1", "lost_steps", len(lost), _rows(lost)),
        Check("I1", "indeterminate_processed_twice", len(twice), _rows(twice)),
        Check("I2", "dup_decisions_physical", len(physical), _rows(physical)),
        Check("I2", "dup_decisions_logical", len(logical), _rows(logical)),
        Check("I2", "decided_on_both_paths", len(decided_twice), _rows(decided_twice)),
        Check("I2", "done_on_both_paths", len(done_twice), _rows(done_twice)),
        Check("I3", "runs_not_terminal", len(not_terminal), _rows(not_terminal)),
        Check("I3", "status_contradicts_decisions", len(contradicts), _rows(contradicts)),
        Check("I4", "steps_over_attempt_budget", len(over), _rows(over)),
        Check("I4", "steps_over_model_call_budget", len(calls_over), _rows(calls_over)),
        Check("I5", "stale_epoch_writes_accepted", len(stale), _rows(stale)),
        Check("I6", "double_renders", len(renders), _rows(renders)),
        Check("I8", "leases_held_after_quiesce", len(held), _rows(held)),
        failed.lost,
    )
    info = {
        "max_attempts": int(worst["worst"]),
        "max_step_attempt": int(worst["attempt"]),
        "max_deliveries": int(worst["deliveries"]),
        "max_llm_calls_per_key": int(max_calls),
        "stale_writes_refused": int(refused),
        "jobs_taken_over": int(takeovers["taken_over"]),
        "redrives": int(takeovers["redrives"]),
        "completed": int(terminal["completed"]),
        "blocked": int(terminal["blocked"]),
        "failed": int(terminal["failed"]),
        "failed_unexplained": failed.lost.value,
        "failed_by_reason": failed.by_reason,
        "not_completed_by_reason": {r["reason"]: int(r["runs"]) for r in reasons},
    }
    # A failed run no expected reason explains was lost, not ended.
    return DbFigures(len(runs), int(terminal["terminal"]) - failed.lost.value, checks, info)
