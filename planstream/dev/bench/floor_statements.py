"""The I/O floor's tables and statements: the shapes of planstream's, on tables of its own.

Each statement is one round trip of the same kind as the planstream statement it stands for
(an upsert, a select by key, an update), with about as many parameters and the same JSON
payloads, so the client does the same encoding and decoding work. The server's side is
simpler (no fencing, no guards): PostgreSQL's CPU is not in either figure, the clients' is.
The tables live in the benchmark's database, which the run drops at its end.
"""

import json
from typing import Final

__all__ = [
    "ARTIFACT",
    "ARTIFACTS",
    "BUDGET",
    "CALL_ENDED",
    "CALL_STARTED",
    "CHECKED_COPY",
    "CREATE",
    "DECISIONS",
    "FINISH",
    "IMAGE_FACTS",
    "LEASE",
    "LEASE_WITH_RUN",
    "RECEIVE",
    "RESERVE",
    "ROUTE",
    "RUNS_ADVANCED",
    "SEED_ARTIFACT",
    "SEED_RUN",
    "SETTLE",
    "STORED",
    "STORE_ARTIFACT",
    "URL_CACHED",
]

CREATE: Final = """
CREATE TABLE IF NOT EXISTS io_floor_runs (
    run_id text PRIMARY KEY, quality text NOT NULL, request_text text, status text NOT NULL,
    current_step int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS io_floor_artifacts (
    artifact_id text PRIMARY KEY, run_id text NOT NULL, kind text NOT NULL, bucket text NOT NULL,
    path text NOT NULL, metadata jsonb NOT NULL DEFAULT '{}', url text, url_expires timestamptz);
CREATE TABLE IF NOT EXISTS io_floor_jobs (
    key text PRIMARY KEY, run_id text NOT NULL, service text NOT NULL, payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending', epoch int NOT NULL DEFAULT 0,
    lease_until timestamptz, result jsonb);
CREATE TABLE IF NOT EXISTS io_floor_calls (
    call_id text PRIMARY KEY, run_id text NOT NULL, purpose text NOT NULL, model text NOT NULL,
    outcome text NOT NULL, input_tokens int, output_tokens int, answer text, latency_ms int);
CREATE INDEX IF NOT EXISTS io_floor_calls_run ON io_floor_calls (run_id, purpose);
CREATE TABLE IF NOT EXISTS io_floor_buckets (model text PRIMARY KEY, reserved bigint NOT NULL);
CREATE TABLE IF NOT EXISTS io_floor_routes (
    run_id text, step_id int, attempt int, route text NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt));
CREATE TABLE IF NOT EXISTS io_floor_decisions (
    key text PRIMARY KEY, run_id text NOT NULL, decision text NOT NULL, body jsonb NOT NULL);
"""

SEED_RUN: Final = (
    "INSERT INTO io_floor_runs (run_id, quality, request_text, status)"
    " VALUES ($1, '2K', $2, 'pending')"
)
SEED_ARTIFACT: Final = (
    "INSERT INTO io_floor_artifacts (artifact_id, run_id, kind, bucket, path)"
    " VALUES ($1, $2, 'source_image', $3, $4)"
)

IMAGE_FACTS: Final = json.dumps(
    {
        "width_px": 3000,
        "height_px": 1875,
        "format": "PNG",
        "sha256": "0" * 64,
        "byte_size": 60_000,
        "quality": "2K",
        "band_px": [1600, 3200],
        "within_band": True,
    }
)
"""What Image I/O records on a checked image (the floor measures nothing: a fixed value)."""

# Jobs.receive: the job row with the event that asked for it, before the offset may move on.
RECEIVE: Final = (
    "INSERT INTO io_floor_jobs (key, run_id, service, payload) VALUES ($1, $2, $3, $4::jsonb)"
    " ON CONFLICT (key) DO NOTHING"
)
# Jobs.begin_with_run: the lease, and the run's fields, in one statement.
LEASE_WITH_RUN: Final = (
    "UPDATE io_floor_jobs j SET status = 'running', epoch = j.epoch + 1,"
    " lease_until = now() + make_interval(secs => $3) FROM io_floor_runs r"
    " WHERE j.key = $1 AND r.run_id = $2 RETURNING j.epoch, r.quality, r.request_text"
)
# Jobs.begin (the Info Worker reads no run).
LEASE: Final = (
    "UPDATE io_floor_jobs SET status = 'running', epoch = epoch + 1,"
    " lease_until = now() + make_interval(secs => $2) WHERE key = $1 RETURNING epoch"
)
ARTIFACTS: Final = (
    "SELECT artifact_id, kind, bucket, path, metadata, url FROM io_floor_artifacts"
    " WHERE artifact_id = ANY($1::text[])"
)
ARTIFACT: Final = (
    "SELECT artifact_id, kind, bucket, path, metadata, url FROM io_floor_artifacts"
    " WHERE artifact_id = $1"
)
# Image I/O: the artifact pointed at the checked copy, its facts merged; then the URL cached.
CHECKED_COPY: Final = (
    "UPDATE io_floor_artifacts SET path = $2, metadata = metadata || $3::jsonb"
    " WHERE artifact_id = $1"
)
URL_CACHED: Final = (
    "UPDATE io_floor_artifacts SET url = $2, url_expires = now() + make_interval(secs => $3)"
    " WHERE artifact_id = $1"
)
STORE_ARTIFACT: Final = (
    "INSERT INTO io_floor_artifacts (artifact_id, run_id, kind, bucket, path, metadata)"
    " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (artifact_id) DO NOTHING"
)
# A model call within its budget: the calls so far, the rate limiter's reservation, the call
# recorded as started, the reservation settled, the call recorded as ended with its answer
# (both records upserts of the same row, as ModelCallLog.record writes them).
BUDGET: Final = "SELECT count(*) FROM io_floor_calls WHERE run_id = $1 AND purpose = $2"
RESERVE: Final = (
    "INSERT INTO io_floor_buckets AS b (model, reserved) VALUES ($1, $2)"
    " ON CONFLICT (model) DO UPDATE SET reserved = b.reserved + EXCLUDED.reserved"
    " RETURNING reserved"
)
CALL_STARTED: Final = (
    "INSERT INTO io_floor_calls (call_id, run_id, purpose, model, outcome)"
    " VALUES ($1, $2, $3, $4, 'started')"
)
SETTLE: Final = "UPDATE io_floor_buckets SET reserved = reserved - $2 WHERE model = $1"
CALL_ENDED: Final = (
    "INSERT INTO io_floor_calls AS c (call_id, run_id, purpose, model, outcome, input_tokens,"
    " output_tokens, answer, latency_ms) VALUES ($1, $2, $3, $4, 'answered', $5, $6, $7, $8)"
    " ON CONFLICT (call_id) DO UPDATE SET outcome = EXCLUDED.outcome,"
    " input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,"
    " answer = EXCLUDED.answer, latency_ms = EXCLUDED.latency_ms"
)
# The Supervisor claims the route of the step it requests next.
ROUTE: Final = (
    "INSERT INTO io_floor_routes AS r (run_id, step_id, attempt, route) VALUES ($1, $2, 1, 'new')"
    " ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET route = r.route RETURNING route"
)
FINISH: Final = (
    "UPDATE io_floor_jobs SET status = 'completed', result = $3::jsonb, lease_until = NULL"
    " WHERE key = $1 AND epoch = $2"
)
# The decisions sink, per batch, in one transaction (with BEGIN and COMMIT: five round trips).
DECISIONS: Final = (
    "INSERT INTO io_floor_decisions (key, run_id, decision, body) VALUES ($1, $2, $3, $4::jsonb)"
    " ON CONFLICT (key) DO NOTHING"
)
RUNS_ADVANCED: Final = (
    "UPDATE io_floor_runs r SET status = 'running', current_step = 1"
    " FROM unnest($1::text[]) AS d(run_id) WHERE r.run_id = d.run_id"
)
STORED: Final = "SELECT key FROM io_floor_decisions WHERE key = ANY($1::text[])"
