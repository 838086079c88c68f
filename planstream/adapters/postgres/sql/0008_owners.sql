-- planstream 0008: who owns each upload and run (docs/security.md). The owner is the subject
-- (`sub`) of the token that made it; rows from before authentication have none and only
-- operators see them.
ALTER TABLE uploads ADD COLUMN owner text;
ALTER TABLE pipeline_runs ADD COLUMN owner text;

-- The quotas read a subject's recent and active runs; the sweeper's gauge counts blocked runs.
CREATE INDEX pipeline_runs_owner_created ON pipeline_runs (owner, created_at);
CREATE INDEX pipeline_runs_owner_active ON pipeline_runs (owner)
    WHERE status IN ('pending', 'running');
CREATE INDEX pipeline_runs_blocked ON pipeline_runs (block_reason) WHERE status = 'blocked';
