-- planstream 0002: every model call with its cost, and the run's decision watermark.

CREATE TABLE pipeline_model_calls (
    call_id         text PRIMARY KEY,
    run_id          text NOT NULL REFERENCES pipeline_runs (run_id),
    step_id         smallint NOT NULL CHECK (step_id BETWEEN 0 AND 6),
    attempt         smallint NOT NULL CHECK (attempt >= 1),
    job_id          text REFERENCES pipeline_jobs (job_id),
    service         text NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('extract', 'compare', 'audit', 'render')),
    model           text NOT NULL,
    prompt_version  text NOT NULL,
    outcome         text NOT NULL,
    input_tokens    integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens   integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_usd        numeric(12, 6) NOT NULL DEFAULT 0,
    latency_ms      integer NOT NULL CHECK (latency_ms >= 0),
    finish_reason   text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipeline_model_calls_step_idx
    ON pipeline_model_calls (run_id, step_id, purpose, attempt);

-- The newest decision applied to the run, so a replayed older decision never moves it back.
ALTER TABLE pipeline_runs
    ADD COLUMN decided_step smallint NOT NULL DEFAULT -1,
    ADD COLUMN decided_attempt smallint NOT NULL DEFAULT 0;
