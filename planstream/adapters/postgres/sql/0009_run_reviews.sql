-- planstream 0009: one review per block (issue 12). A review claims the step attempt its run is
-- blocked at before its RunReviewed is published: of two concurrent reviews of one block, the
-- second finds the claim taken and is answered 409, so a run never gets two reviewer decisions.
-- A claim whose publish failed is deleted again; the rows are also the record of who reviewed
-- what, when and why.
CREATE TABLE run_reviews (
    run_id      text NOT NULL REFERENCES pipeline_runs (run_id),
    step_id     smallint NOT NULL CHECK (step_id BETWEEN 0 AND 6),
    attempt     smallint NOT NULL CHECK (attempt >= 1),
    event_id    text NOT NULL UNIQUE CHECK (event_id ~ '^evt_[0-9a-f]{32}$'),
    action      text NOT NULL CHECK (action IN ('approve', 'retry', 'reject')),
    reviewer    text NOT NULL,
    reason      text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step_id, attempt)
);
