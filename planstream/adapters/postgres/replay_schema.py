"""A replay's own PostgreSQL schema, ``replay_<hex>``: a copy of every table the step path
writes, the selected runs' rows, and the list of attempts to re-decide (docs/replay.md).

Each table is ``LIKE public.T INCLUDING ALL``: columns, defaults, checks, indexes. LIKE copies no
foreign key and keeps a serial column on public's sequence, so both are made again inside the
schema: its keys refer to its own tables (an event about a run the replay does not hold is
refused as in production) and its ids come from its own sequences (a replay advances nothing of
public's). The name of the schema goes into DDL, so it is only ever made from a replay id that
matched ``rpl_`` and 32 lowercase hex digits, and quoted anyway.
"""

from collections.abc import Sequence
from typing import Final

import asyncpg

from planstream.domain.errors import ConfigurationError, PermanentError
from planstream.domain.ids import is_id

__all__ = [
    "ATTEMPTS_TABLE",
    "ERROR_CHARS",
    "REPLAY_TABLES",
    "SNAPSHOT_TABLES",
    "NotAReplayId",
    "build_schema",
    "literal",
    "lock_keys",
    "quoted",
    "schema_name",
]

REPLAY_TABLES: Final = (
    "uploads",
    "pipeline_runs",
    "pipeline_artifacts",
    "pipeline_jobs",
    "pipeline_stale_writes",
    "pipeline_model_calls",
    "pipeline_decisions",
    "pipeline_step_routes",
    "run_reviews",
)
"""Every table the step path (Info Worker, Comparison Worker, Supervisor, decisions sink) reads
or writes through the shared statements; a replay has its own copy of each. Not copied, so read
(and written) in public: ``model_rate_buckets`` (the provider's limits, shared on purpose) and
``routing_flags`` (read only)."""

SNAPSHOT_TABLES: Final = ("uploads", "pipeline_runs", "pipeline_artifacts")
"""The tables whose rows of the selected runs are copied at the start; the others start empty."""

ATTEMPTS_TABLE: Final = "replay_attempts"

ERROR_CHARS: Final = 2_000
"""The longest error text an attempt keeps (a column check, like the other text caps of the
schema); a longer one is cut."""

_LOCK_SPACE: Final = 0x72706C  # "rpl": the first key of a replay's advisory lock

_ACTIONS: Final = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}

_FOREIGN_KEYS: Final = """
SELECT c.conname, t.relname AS table_name, f.relname AS refers_to,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
             ORDER BY k.pos) AS columns,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
             ORDER BY k.pos) AS refers_columns,
       c.confupdtype::text AS on_update, c.confdeltype::text AS on_delete,
       c.confmatchtype::text AS match, c.condeferrable, c.condeferred
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class f ON f.oid = c.confrelid
WHERE c.contype = 'f' AND n.nspname = 'public' AND t.relname = ANY($1::text[])
ORDER BY t.relname, c.conname
"""

# Columns whose default draws from a sequence (a serial): LIKE keeps public's sequence.
_SERIALS: Final = """
SELECT t.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, NULL) AS type
FROM pg_attrdef d
JOIN pg_class t ON t.oid = d.adrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE n.nspname = $1 AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
ORDER BY t.relname, a.attname
"""

_ATTEMPTS_DDL: Final = """
CREATE TABLE {schema}.replay_attempts (
    run_id              text NOT NULL REFERENCES {schema}.pipeline_runs (run_id),
    step_id             smallint NOT NULL CHECK (step_id BETWEEN 0 AND 6),
    attempt             smallint NOT NULL CHECK (attempt >= 1),
    decision_id         text NOT NULL,
    decision            text NOT NULL CHECK (decision IN ('proceed', 'retry', 'block')),
    block_reason        text,
    failures            jsonb NOT NULL DEFAULT '[]'::jsonb,
    failure_count       integer NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    consistency_score   double precision,
    versions            jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    decided_at          timestamptz NOT NULL,
    decided_on          text,
    image_artifact_id   text,
    spaces_artifact_id  text,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'decided', 'failed', 'cancelled')),
    error               text CHECK (length(error) <= {error_chars}),
    reconstructed       boolean NOT NULL DEFAULT false,
    replayed_at         timestamptz,
    PRIMARY KEY (run_id, step_id, attempt)
)
"""

# The selected runs' rows, in the order their keys need: uploads, runs, then artifacts (an
# upload's artifact from before its run has no run id).
_SNAPSHOT: Final = (
    "INSERT INTO {schema}.uploads SELECT * FROM public.uploads WHERE upload_id IN"
    " (SELECT upload_id FROM public.pipeline_runs WHERE run_id = ANY($1::text[]))",
    "INSERT INTO {schema}.pipeline_runs SELECT * FROM public.pipeline_runs"
    " WHERE run_id = ANY($1::text[])",
    "INSERT INTO {schema}.pipeline_artifacts SELECT * FROM public.pipeline_artifacts a"
    " WHERE a.run_id = ANY($1::text[]) OR a.run_id IS NULL AND a.upload_id IN"
    " (SELECT upload_id FROM public.pipeline_runs WHERE run_id = ANY($1::text[]))",
)


class NotAReplayId(PermanentError):
    """The value is not a replay id (``rpl_`` and 32 lowercase hex digits): refused before it
    can name a schema."""


def schema_name(replay_id: str) -> str:
    """The schema of ``replay_id``: ``replay_`` and its 32 hex digits (unquoted)."""
    if not isinstance(replay_id, str) or not replay_id.startswith("rpl_") or not is_id(replay_id):
        raise NotAReplayId(f"not a replay id: {replay_id!r:.80}")
    return "replay_" + replay_id.removeprefix("rpl_")


def quoted(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def lock_keys(replay_id: str) -> tuple[int, int]:
    """The two keys of the replay's advisory lock: a connection working inside the schema holds
    it shared, purge takes it alone, so a schema is never dropped under a connection using it."""
    digits = schema_name(replay_id).removeprefix("replay_")
    return _LOCK_SPACE, int(digits[:8], 16) & 0x7FFFFFFF


async def build_schema(conn: asyncpg.Connection, replay_id: str, run_ids: Sequence[str]) -> None:
    """Make the replay's schema, its tables and the snapshot of ``run_ids`` (inside the
    caller's transaction, so a failure leaves nothing behind)."""
    name = schema_name(replay_id)
    schema = quoted(name)
    tables = [
        f"CREATE TABLE {schema}.{quoted(t)} (LIKE public.{quoted(t)} INCLUDING ALL)"
        for t in REPLAY_TABLES
    ]
    await conn.execute(";\n".join([f"CREATE SCHEMA {schema}", *tables]))
    await _own_sequences(conn, name)
    await _foreign_keys(conn, schema)
    await conn.execute(_ATTEMPTS_DDL.format(schema=schema, error_chars=ERROR_CHARS))
    for statement in _SNAPSHOT:
        await conn.execute(statement.format(schema=schema), list(run_ids))


async def _own_sequences(conn: asyncpg.Connection, name: str) -> None:
    """Give every serial column of the schema a sequence of the schema's own."""
    schema = quoted(name)
    statements = []
    for row in await conn.fetch(_SERIALS, name):
        table, column = row["table_name"], row["column_name"]
        sequence = f"{schema}.{quoted(f'{table}_{column}_seq')}"
        statements += [
            f"CREATE SEQUENCE {sequence} AS {row['type']}"
            f" OWNED BY {schema}.{quoted(table)}.{quoted(column)}",
            f"ALTER TABLE {schema}.{quoted(table)} ALTER COLUMN {quoted(column)}"
            f" SET DEFAULT nextval({literal(sequence)}::regclass)",
        ]
    if statements:
        await conn.execute(";\n".join(statements))


async def _foreign_keys(conn: asyncpg.Connection, schema: str) -> None:
    """Public's foreign keys between the copied tables, made again between the copies."""
    statements = []
    for row in await conn.fetch(_FOREIGN_KEYS, list(REPLAY_TABLES)):
        if row["refers_to"] not in REPLAY_TABLES:
            raise ConfigurationError(
                f"public.{row['table_name']} refers to public.{row['refers_to']}, which a replay"
                " does not copy: add it to REPLAY_TABLES"
            )
        columns = ", ".join(quoted(c) for c in row["columns"])
        refers = ", ".join(quoted(c) for c in row["refers_columns"])
        clause = (
            f"ALTER TABLE {schema}.{quoted(row['table_name'])} ADD CONSTRAINT"
            f" {quoted(row['conname'])} FOREIGN KEY ({columns}) REFERENCES"
            f" {schema}.{quoted(row['refers_to'])} ({refers})"
            + (" MATCH FULL" if row["match"] == "f" else "")
            + f" ON UPDATE {_ACTIONS[row['on_update']]} ON DELETE {_ACTIONS[row['on_delete']]}"
            + (" DEFERRABLE" if row["condeferrable"] else "")
            + (" INITIALLY DEFERRED" if row["condeferred"] else "")
        )
        statements.append(clause)
    if statements:
        await conn.execute(";\n".join(statements))


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
