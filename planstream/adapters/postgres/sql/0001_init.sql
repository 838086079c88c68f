-- planstream 0001: uploads, runs, jobs, artifacts and decisions.
-- Unique constraints carry the idempotency rules: one job per (service, step attempt), one
-- artifact per storage object, one decision per step attempt, one client key per run.

CREATE TABLE uploads (
    upload_id       text PRIMARY KEY CHECK (upload_id ~ '^upl_[0-9a-f]{32}$'),
    storage_bucket  text NOT NULL,
    storage_path    text NOT NULL,
    content_type    text NOT NULL,
    put_expires_at  timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (storage_bucket, storage_path)
);

CREATE TABLE pipeline_runs (
    run_id                 text PRIMARY KEY CHECK (run_id ~ '^run_[0-9a-f]{32}$'),
    upload_id              text NOT NULL REFERENCES uploads (upload_id),
    ratio                  text NOT NULL,
    ratio_locked           boolean NOT NULL DEFAULT false,
    quality_post_step4     text NOT NULL CHECK (quality_post_step4 IN ('1K', '2K', '4K')),
    request_text           text,
    payload_size_estimate  integer NOT NULL DEFAULT 0 CHECK (payload_size_estimate >= 0),
    status                 text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'running', 'completed', 'blocked',
                                             'failed', 'rejected')),
    current_step           smallint NOT NULL DEFAULT 0 CHECK (current_step BETWEEN 0 AND 6),
    block_reason           text,
    last_error             text,
    last_error_stack       text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pipeline_jobs (
    job_id              text PRIMARY KEY CHECK (job_id ~ '^job_[0-9a-f]{32}$'),
    run_id              text NOT NULL REFERENCES pipeline_runs (run_id),
    step_id             smallint NOT NULL CHECK (step_id BETWEEN 0 AND 6),
    attempt             smallint NOT NULL CHECK (attempt >= 1),
    service             text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'blocked')),
    -- deliveries of this job to a worker (a crash or a transport retry adds one)
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts        integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    payload_ref         jsonb NOT NULL DEFAULT '{}'::jsonb,
    result_ref          jsonb,
    -- "<service>:<run_id>:s<step>:a<attempt>": one job per service and step attempt
    idempotency_key     text NOT NULL UNIQUE,
    -- the caller's Idempotency-Key header, for jobs a client requested through the ingress
    request_key         text,
    locked_at           timestamptz,
    locked_by           text,
    lease_expires_at    timestamptz,
    lease_epoch         bigint NOT NULL DEFAULT 0,
    published_at        timestamptz,
    last_error          text,
    last_error_stack    text,
    processing_time_ms  integer CHECK (processing_time_ms >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    UNIQUE (run_id, request_key)
);
CREATE INDEX pipeline_jobs_run_idx ON pipeline_jobs (run_id, step_id, attempt);
CREATE INDEX pipeline_jobs_lease_idx ON pipeline_jobs (lease_expires_at) WHERE status = 'running';

CREATE TABLE pipeline_artifacts (
    artifact_id            text PRIMARY KEY CHECK (artifact_id ~ '^art_[0-9a-f]{32}$'),
    run_id                 text REFERENCES pipeline_runs (run_id),
    step_id                smallint CHECK (step_id BETWEEN 0 AND 6),
    kind                   text NOT NULL
                           CHECK (kind IN ('source_image', 'render_image', 'spaces_json',
                                           'model_response')),
    upload_id              text REFERENCES uploads (upload_id),
    storage_bucket         text NOT NULL,
    storage_path           text NOT NULL,
    signed_url_cached      text,
    signed_url_expires_at  timestamptz,
    metadata_json          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (storage_bucket, storage_path)
);
CREATE INDEX pipeline_artifacts_run_idx ON pipeline_artifacts (run_id);

CREATE TABLE pipeline_decisions (
    decision_id             text PRIMARY KEY,
    run_id                  text NOT NULL REFERENCES pipeline_runs (run_id),
    step_id                 smallint NOT NULL CHECK (step_id BETWEEN 0 AND 6),
    attempt                 smallint NOT NULL CHECK (attempt >= 1),
    -- one decision per step attempt, whatever the delivery count
    idempotency_key         text NOT NULL UNIQUE,
    decision                text NOT NULL CHECK (decision IN ('proceed', 'retry', 'block')),
    schema_validations      jsonb NOT NULL DEFAULT '[]'::jsonb,
    rule_checks             jsonb NOT NULL DEFAULT '[]'::jsonb,
    llm_audit               jsonb,
    retry_budget_remaining  integer NOT NULL CHECK (retry_budget_remaining >= 0),
    block_reason            text,
    versions                jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipeline_decisions_run_idx ON pipeline_decisions (run_id, step_id, attempt);
