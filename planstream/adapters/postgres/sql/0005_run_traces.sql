-- planstream 0005: the run's trace. The W3C traceparent of the request that created the run:
-- every event of the run (re-drives and reviews included) joins this trace, and the run view
-- shows its trace id. NULL for a run made before, or by a process that keeps no traces.
ALTER TABLE pipeline_runs ADD COLUMN traceparent text
    CHECK (traceparent IS NULL OR traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
