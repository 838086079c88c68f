-- planstream 0007: routing between planstream and the old run-pipeline-step function
-- (docs/migration.md): the flags with their history, the path each step attempt was requested
-- on, and decisions made on the legacy path.

-- One row per flag: use_new_pipeline (true | false) and route.step0..route.step6 (new | legacy).
CREATE TABLE routing_flags (
    name        text PRIMARY KEY
                CHECK (name = 'use_new_pipeline' OR name ~ '^route\.step[0-6]$'),
    value       text NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (CASE WHEN name = 'use_new_pipeline' THEN value IN ('true', 'false')
                ELSE value IN ('new', 'legacy') END)
);
INSERT INTO routing_flags (name, value, updated_by)
SELECT 'use_new_pipeline', 'true', 'migration 0007'
UNION ALL
SELECT 'route.step' || step, 'new', 'migration 0007' FROM generate_series(0, 6) AS step;

-- Every change: who, when, from -> to, why. Written in the transaction that changes the flag.
CREATE TABLE routing_flag_history (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL REFERENCES routing_flags (name),
    old_value   text NOT NULL,
    new_value   text NOT NULL,
    operator    text NOT NULL,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- The path a step attempt was first requested on: a repeated request goes the same way, so a
-- step attempt is never run on both paths across a flip.
CREATE TABLE pipeline_step_routes (
    run_id        text NOT NULL REFERENCES pipeline_runs (run_id),
    step_id       smallint NOT NULL CHECK (step_id BETWEEN 0 AND 6),
    attempt       smallint NOT NULL CHECK (attempt >= 1),
    route         text NOT NULL CHECK (route IN ('new', 'legacy')),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step_id, attempt)
);

-- The legacy bridge decides the steps the old function ran.
ALTER TABLE pipeline_decisions DROP CONSTRAINT IF EXISTS pipeline_decisions_decided_by_check;
ALTER TABLE pipeline_decisions ADD CONSTRAINT pipeline_decisions_decided_by_check
    CHECK (decided_by IN ('supervisor', 'reviewer', 'legacy'));
