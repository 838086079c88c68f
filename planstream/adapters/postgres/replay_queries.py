"""The SQL of ``planstream.adapters.postgres.replays``: the registry in public, the attempts in
a replay's schema (``{schema}``: the quoted schema name, formatted in; only a validated replay id
makes one)."""

from typing import Final

__all__ = [
    "ATTEMPT_COLUMNS",
    "CANCEL",
    "DECISION_COLUMNS",
    "MARK",
    "REGISTER",
    "REGISTRY_COLUMNS",
    "REPLAYED",
    "SELECT",
    "SKIPPED",
]

# The decisions matching a selection's filters ($1 runs, none: all; $2/$3 the window on the
# decision's time; $4 decision; $5 block reason), and of the Supervisor's the $6 of the newest
# runs first: the attempts a replay re-decides.
_CHOSEN: Final = """
WITH matched AS (
    SELECT d.decision_id, d.run_id, d.step_id, d.attempt, d.decision, d.block_reason,
           d.rule_checks, d.llm_audit, d.versions, d.created_at, d.decided_by,
           r.created_at AS run_created_at
    FROM public.pipeline_decisions d JOIN public.pipeline_runs r USING (run_id)
    WHERE (cardinality($1::text[]) = 0 OR d.run_id = ANY($1::text[]))
      AND ($2::timestamptz IS NULL OR d.created_at >= $2::timestamptz)
      AND ($3::timestamptz IS NULL OR d.created_at < $3::timestamptz)
      AND ($4::text IS NULL OR d.decision = $4::text)
      AND ($5::text IS NULL OR d.block_reason = $5::text)
), chosen AS (
    SELECT * FROM matched WHERE decided_by = 'supervisor'
    ORDER BY run_created_at DESC, run_id, step_id, attempt LIMIT $6
)
"""

# Each chosen attempt with the event its Supervisor job kept (what it was decided on: its kind,
# image and Spaces document), or, with no job kept, the step's image.
SELECT: Final = (
    _CHOSEN
    + """
SELECT c.decision_id, c.run_id, c.step_id, c.attempt, c.decision, c.block_reason,
       c.rule_checks, c.llm_audit, c.versions, c.created_at,
       j.event ->> 'kind' AS decided_on,
       coalesce(j.event ->> 'image_artifact_id', CASE WHEN j.event IS NULL THEN
           (SELECT a.artifact_id FROM public.pipeline_artifacts a
            WHERE a.run_id = c.run_id AND a.step_id = c.step_id
              AND a.kind IN ('source_image', 'render_image')
            ORDER BY a.created_at DESC LIMIT 1) END) AS image_artifact_id,
       j.event ->> 'spaces_artifact_id' AS spaces_artifact_id
FROM chosen c
LEFT JOIN LATERAL (
    SELECT jo.payload_ref -> 'event' AS event FROM public.pipeline_jobs jo
    WHERE jo.run_id = c.run_id AND jo.step_id = c.step_id AND jo.attempt = c.attempt
      AND jo.service = 'supervisor'
    ORDER BY jo.created_at LIMIT 1
) j ON true
ORDER BY c.run_created_at DESC, c.run_id, c.step_id, c.attempt
"""
)

# The other deciders' matching decisions in the chosen attempts' runs: left out, by decider.
SKIPPED: Final = (
    _CHOSEN
    + """
SELECT decided_by, count(*)::int AS decisions FROM matched
WHERE decided_by <> 'supervisor' AND run_id IN (SELECT run_id FROM chosen)
GROUP BY decided_by ORDER BY decided_by
"""
)

REGISTER: Final = """
INSERT INTO public.pipeline_replays
    (replay_id, started_by, mode, selection, versions, max_usd, attempts_total)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

ATTEMPT_COLUMNS: Final = (
    "run_id, step_id, attempt, decision_id, decision, block_reason, failures, failure_count,"
    " consistency_score, decided_at, versions, decided_on, image_artifact_id, spaces_artifact_id"
)

REGISTRY_COLUMNS: Final = (
    "replay_id, started_by, started_at, mode, selection, versions, max_usd, status,"
    " attempts_total, attempts_done, attempts_failed, cost_usd, finished_at, note"
)

# The attempt, if still pending, and the registry's counters with it (decided: done; failed:
# failed); the replay completes with its last attempt. Both this and CANCEL lock the attempt's
# row before the registry's, so they never wait on each other in a circle.
MARK: Final = """
WITH marked AS (
    UPDATE {schema}.replay_attempts SET status = $4, error = $5, reconstructed = $6,
        replayed_at = now()
    WHERE run_id = $1 AND step_id = $2 AND attempt = $3 AND status = 'pending'
    RETURNING status
), counted AS (
    SELECT count(*) FILTER (WHERE status = 'decided')::int AS done,
           count(*) FILTER (WHERE status = 'failed')::int AS failed,
           count(*)::int AS ended
    FROM marked
)
UPDATE public.pipeline_replays AS r SET
    attempts_done = r.attempts_done + c.done,
    attempts_failed = r.attempts_failed + c.failed,
    status = CASE WHEN r.status = 'running'
                   AND r.attempts_done + r.attempts_failed + c.done + c.failed >= r.attempts_total
                  THEN 'completed' ELSE r.status END,
    finished_at = CASE WHEN r.status = 'running'
                   AND r.attempts_done + r.attempts_failed + c.done + c.failed >= r.attempts_total
                  THEN now() ELSE r.finished_at END
FROM counted AS c
WHERE r.replay_id = $7 AND c.ended > 0
RETURNING r.status
"""

CANCEL: Final = """
WITH cancelled AS (
    UPDATE {schema}.replay_attempts SET status = 'cancelled', replayed_at = now()
    WHERE status = 'pending' AND EXISTS
        (SELECT 1 FROM public.pipeline_replays WHERE replay_id = $1 AND status = 'running')
    RETURNING 1
)
UPDATE public.pipeline_replays SET status = 'cancelled', finished_at = now()
-- reading "cancelled" here runs it before this row is locked (unread, it would run after)
WHERE replay_id = $1 AND status = 'running' AND (SELECT count(*) FROM cancelled) >= 0
RETURNING replay_id
"""

DECISION_COLUMNS: Final = (
    "d.decision_id, d.decision, d.block_reason, d.rule_checks, d.llm_audit, d.versions,"
    " d.created_at"
)

REPLAYED: Final = """
SELECT a.run_id, a.step_id, a.attempt, a.status, a.error, a.reconstructed, a.replayed_at,
       {columns}, coalesce(c.cost_usd, 0)::float8 AS cost_usd, coalesce(c.calls, 0)::int AS calls
FROM {schema}.replay_attempts a
JOIN {schema}.pipeline_runs r USING (run_id)
LEFT JOIN {schema}.pipeline_decisions d
    ON d.run_id = a.run_id AND d.step_id = a.step_id AND d.attempt = a.attempt
   AND d.decided_by = 'supervisor'
LEFT JOIN (SELECT run_id, step_id, attempt, sum(cost_usd) AS cost_usd, count(*) AS calls
           FROM {schema}.pipeline_model_calls GROUP BY run_id, step_id, attempt) c
    ON c.run_id = a.run_id AND c.step_id = a.step_id AND c.attempt = a.attempt
ORDER BY r.created_at DESC, a.run_id, a.step_id, a.attempt
"""
