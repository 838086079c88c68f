-- planstream 0010: one run per upload (issue 12). Image I/O points an upload's source artifact at
-- the immutable copy of the bytes it checked (runs/<run>/source-<sha256>.<ext>), so the artifact's
-- unique storage path no longer holds the upload's key: the rule that an upload starts one run
-- is kept by this index instead.
CREATE UNIQUE INDEX pipeline_runs_one_per_upload ON pipeline_runs (upload_id);
