-- planstream 0006: the model rate limiter's buckets, shared by every process, and each model
-- call's wait for its turn and its transport try (docs/model-protocol.md).

-- One row per provider (base URL) and model: what its request and token buckets held at
-- refilled_at (negative: reserved ahead), and until when a 429 paused it for everyone.
CREATE TABLE model_rate_buckets (
    provider      text NOT NULL,
    model         text NOT NULL,
    requests      double precision NOT NULL,
    tokens        double precision NOT NULL,
    refilled_at   timestamptz NOT NULL,
    paused_until  timestamptz,
    PRIMARY KEY (provider, model)
);

-- transport_attempt 1 is a call of the step's budget; 2.. are its retries after a 429, a 5xx or
-- a lost connection. waited_ms is how long it queued for the rate limiter before it was made.
ALTER TABLE pipeline_model_calls
    ADD COLUMN transport_attempt smallint NOT NULL DEFAULT 1 CHECK (transport_attempt >= 1),
    ADD COLUMN waited_ms integer NOT NULL DEFAULT 0 CHECK (waited_ms >= 0);
