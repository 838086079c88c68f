"""PostgreSQL connections and migrations (asyncpg)."""

import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources

import asyncpg

__all__ = ["DATA_ERRORS", "OUTAGE_ERRORS", "connect", "create_pool", "migrate", "migrations"]

log = logging.getLogger(__name__)

_MIGRATION_LOCK = "planstream.migrate"

# Which database errors are the moment's and which the record's: the one place that says so.
# Every consumer waits out an outage (the same work is tried again until it goes through) and
# dead-letters a data error (repeating the record cannot help; the others go on). An error in
# neither is a bug or a broken deployment (a missing table, a privilege): it is not waited out.

# The database is unreachable, restarting, shutting down, out of connections or resources, or
# timed out, or this transaction lost a race (deadlock, serialization): the work is fine, the
# moment is not. A statement cancelled by ``statement_timeout`` is an OperatorInterventionError.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # connection lost or refused by the server
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now, cancel
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full, memory
    asyncpg.exceptions.TransactionRollbackError,  # deadlock detected, serialization failure
    # Refused, reset, aborted, broken pipe; a host name that does not resolve (yet); asyncio's
    # "Multiple exceptions" when every address of a name refused; asyncpg's connect, acquire and
    # command timeouts. From a database call, an OSError is the network's.
    OSError,
    # "connection is closed", a pool closing: what a connection the outage cut leaves behind
    # (a misuse such as "another operation is in progress" is one too, and is waited out loudly).
    asyncpg.InterfaceError,
)

# The database refused the record itself: invalid text (NUL: 'invalid byte sequence for encoding
# "UTF8": 0x00' is CharacterNotInRepertoireError; \u0000 in jsonb UntranslatableCharacterError),
# a value out of range or of the wrong type (asyncpg raises DataError for an argument it cannot
# encode too), a constraint (an unknown run's foreign key, a unique or check violation), or a
# value too large for the database (an index row over its limit).
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond what asyncpg always does first (drop the
    connection's listeners, roll back a transaction left open); see ``create_pool``."""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float | None = None,
    setup: Callable[[asyncpg.pool.PoolConnectionProxy], Awaitable[None]] | None = None,
    keep_session: bool = True,
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb to Python values; with ``command_timeout``
    (``settings.db_timeout_s``), every statement that runs longer is cancelled (TimeoutError).
    ``setup`` runs on every acquire (a replay's search_path: planstream.adapters.postgres.replays);
    when it raises, the acquire fails and asyncpg closes that connection.

    A released connection is not sent asyncpg's reset query (``pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL``: a round trip per release, about 50 us of this process's CPU),
    because no code that uses a production pool leaves what it undoes: advisory locks are only
    taken with ``pg_advisory_xact_lock`` (released with the transaction), nothing LISTENs or
    declares a cursor WITH HOLD, and no statement SETs a session variable (the one SET, in the
    local stack's provisioning, is on its own connection). A transaction left open is still
    rolled back and listeners dropped (asyncpg does that before any reset). Statements prepared
    by asyncpg's cache and the type codecs of ``init`` survive a release either way.
    ``tests/unit/test_pool_session_state.py`` fails if session state appears in the code. The
    replay pool is the exception, with ``keep_session=False``: its ``setup`` sets the session's
    search_path and holds the replay's lock shared, which asyncpg's reset takes off again.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session if keep_session else None,  # None: asyncpg's own reset
        command_timeout=command_timeout,
        setup=setup,
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
