-- planstream 0011: replays (issue 14, docs/replay.md). A replay re-decides recorded step
-- attempts with today's rules, prompts and models. Its rows live in a schema of their own,
-- replay_<32 hex>, made at its start (planstream.adapters.postgres.replays); this registry,
-- in public, says who started which replay, on what, and how far it got.

CREATE TABLE pipeline_replays (
    replay_id        text PRIMARY KEY CHECK (replay_id ~ '^rpl_[0-9a-f]{32}$'),
    started_by       text NOT NULL CHECK (length(started_by) BETWEEN 1 AND 200),
    started_at       timestamptz NOT NULL DEFAULT now(),
    mode             text NOT NULL CHECK (mode IN ('frozen', 'live')),
    -- the selection as asked (run ids, since/until, decision, block reason, limit)
    selection        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- the versions in force at the start: {"rules": ..., "prompts": {...}, "models": {...}}
    versions         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- live mode's cost cap; NULL: none (frozen replays make no model calls)
    max_usd          numeric(12, 6) CHECK (max_usd IS NULL OR max_usd >= 0),
    status           text NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'completed', 'cancelled', 'failed', 'purged')),
    -- attempts selected; of them, re-decided (done) and failed (a cancelled one is neither)
    attempts_total   integer NOT NULL CHECK (attempts_total >= 1),
    attempts_done    integer NOT NULL DEFAULT 0 CHECK (attempts_done >= 0),
    attempts_failed  integer NOT NULL DEFAULT 0 CHECK (attempts_failed >= 0),
    cost_usd         numeric(12, 6) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    finished_at      timestamptz,
    note             text CHECK (length(note) <= 2000),
    CHECK (attempts_done + attempts_failed <= attempts_total)
);
-- The retention sweep looks for old replays not yet purged.
CREATE INDEX pipeline_replays_age_idx ON pipeline_replays (coalesce(finished_at, started_at))
    WHERE status <> 'purged';

-- The model's answer (already capped by model_max_response_bytes), so a frozen replay can reuse
-- it; NULL for calls made before this column, and for calls that got no answer.
ALTER TABLE pipeline_model_calls ADD COLUMN answer text;
