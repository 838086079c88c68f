-- planstream 0003: fencing records, lease re-drives, dead-letter redrives, reviewed decisions.

-- The epoch that wrote the job's result (equal to lease_epoch unless fencing failed).
ALTER TABLE pipeline_jobs
    ADD COLUMN result_epoch bigint,
    ADD COLUMN redriven_at timestamptz,
    ADD COLUMN redrives integer NOT NULL DEFAULT 0;

-- Every write refused because its lease epoch was stale (a zombie worker, fenced off).
CREATE TABLE pipeline_stale_writes (
    id               bigserial PRIMARY KEY,
    job_id           text NOT NULL REFERENCES pipeline_jobs (job_id),
    presented_epoch  bigint NOT NULL,
    current_epoch    bigint NOT NULL,
    worker_id        text NOT NULL,
    attempted        text NOT NULL,
    refused_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per dead letter put back on its topic, so a redrive is audited and never repeated.
CREATE TABLE dead_letter_redrives (
    dlq_partition     integer NOT NULL,
    dlq_offset        bigint NOT NULL,
    source_topic      text NOT NULL,
    source_partition  integer,
    source_offset     bigint,
    run_id            text,
    error             text,
    operator          text NOT NULL,
    reason            text NOT NULL,
    redriven_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_partition, dlq_offset)
);

-- A reviewer's decision on a blocked step comes after the machine's for the same attempt.
ALTER TABLE pipeline_runs ADD COLUMN decided_review boolean NOT NULL DEFAULT false;
ALTER TABLE pipeline_decisions
    ADD COLUMN decided_by text NOT NULL DEFAULT 'supervisor'
        CHECK (decided_by IN ('supervisor', 'reviewer'));
