-- planstream 0004: jobs are recorded as pending when their event arrives (before its offset is
-- committed); the sweeper finds the ones no worker leased.
CREATE INDEX pipeline_jobs_unleased_idx ON pipeline_jobs (updated_at)
    WHERE status = 'pending' AND locked_by IS NULL;
