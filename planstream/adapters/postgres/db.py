"""PostgreSQL connections and migrations (asyncpg)."""

import json
import logging
from importlib import resources

import asyncpg

__all__ = ["OUTAGE_ERRORS", "connect", "create_pool", "migrate", "migrations"]

log = logging.getLogger(__name__)

_MIGRATION_LOCK = "planstream.migrate"

# The database is unreachable, restarting or shutting down: the work is fine, the moment is not.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    ConnectionRefusedError,
    ConnectionResetError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb to Python values."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection, set up like the pool's."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def migrations() -> list[tuple[str, str]]:
    """The shipped migrations as (version, sql), in order."""
    folder = resources.files("planstream.adapters.postgres") / "sql"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(dsn: str) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; returns the new ones.

    A transaction-scoped advisory lock serialises concurrent callers, so two workers starting at
    once apply each migration exactly once.
    """
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        for version, sql in migrations():
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = await conn.fetchval(
                    "SELECT 1 FROM schema_migrations WHERE version = $1", version
                )
                if done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
                log.info("applied migration", extra={"version": version})
    finally:
        await conn.close()
    return applied
