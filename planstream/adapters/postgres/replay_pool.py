"""The connection pool of a replay process: every acquire works inside one replay's schema.

A replay worker runs the production statements unchanged (leases, repository, model-call log,
decision log); its pool points their table names at the replay's copies. On every acquire
(asyncpg's ``setup``, which ``pool.execute``/``fetch*`` go through too) the connection's
``search_path`` becomes ``"replay_<hex>", public`` for the replay in ``current_replay``, which
the app sets per event from its ``replay_id``. An acquire with no replay set is refused, so a
replay process cannot reach production's step tables; tables the schema lacks resolve to public
(``model_rate_buckets``, ``routing_flags``). The pool's reset on release (``RESET ALL``,
``pg_advisory_unlock_all``) takes both the path and the replay's lock off the connection.

The acquire also holds the replay's advisory lock shared until the release: purging a replay
takes it alone, so its schema cannot be dropped under a connection that would then resolve the
same names in public; an acquire after the purge finds no schema and is refused.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg

from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.replay_schema import (
    literal,
    lock_keys,
    quoted,
    schema_name,
)
from planstream.domain.errors import PermanentError, RecordMissing
from planstream.settings import Settings

__all__ = [
    "ReplayGone",
    "ReplayUnset",
    "create_replay_pool",
    "current_replay",
    "enter_replay",
    "replay_scope",
    "search_path",
]

current_replay: ContextVar[str | None] = ContextVar("planstream_current_replay", default=None)
"""The replay the current task works for (its event's ``replay_id``); None outside one."""


class ReplayUnset(PermanentError):
    """A replay process asked for a connection with no replay set (``current_replay``): refused,
    so nothing it runs can touch production's tables."""


class ReplayGone(RecordMissing):
    """The replay has no schema (never started, or purged): its work is refused."""


def search_path(replay_id: str) -> str:
    """The ``search_path`` of a connection working for ``replay_id``."""
    return f"{quoted(schema_name(replay_id))}, public"


@contextmanager
def replay_scope(replay_id: str) -> Iterator[None]:
    """Work for ``replay_id`` inside the block (``current_replay`` set, then restored)."""
    schema_name(replay_id)  # refuse a value that is not a replay id before anything runs
    token = current_replay.set(replay_id)
    try:
        yield
    finally:
        current_replay.reset(token)


def _setup_sql(replay_id: str) -> str:
    """Lock the replay shared, then set the path if its schema exists (a cast of a schema name
    that does not exist raises InvalidSchemaName). Two statements in one round trip; the second
    is parsed after the lock is held, so it sees a purge that committed meanwhile. Only a
    validated replay id reaches the text, quoted."""
    space, key = lock_keys(replay_id)
    schema = quoted(schema_name(replay_id))
    return (
        f"SELECT pg_advisory_lock_shared({space}, {key});\n"
        f"SELECT set_config('search_path', {literal(search_path(replay_id))}, false)"
        f" WHERE {literal(schema)}::regnamespace IS NOT NULL"
    )


async def enter_replay(conn: Any) -> None:
    """The pool's ``setup``: put the acquired connection inside ``current_replay``'s schema, or
    refuse it (:class:`ReplayUnset`, :class:`ReplayGone`; asyncpg then closes the connection)."""
    replay_id = current_replay.get()
    if replay_id is None:
        raise ReplayUnset(
            "a replay process asked for a database connection outside a replay: refused, so it"
            " cannot touch production's tables (set current_replay from the event's replay_id)"
        )
    sql = _setup_sql(replay_id)
    try:
        await conn.execute(sql)
    except asyncpg.InvalidSchemaNameError:
        raise ReplayGone(f"replay {replay_id} has no schema: never started, or purged") from None


async def create_replay_pool(
    settings: Settings,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    command_timeout: float | None = None,
) -> asyncpg.Pool:
    """A pool like the production one (``settings.db_pool_min``/``_max``, ``db_timeout_s``; a
    value given here replaces the setting) whose every acquire works inside ``current_replay``'s
    schema."""
    return await create_pool(
        settings.dsn,
        min_size=settings.db_pool_min if min_size is None else min_size,
        max_size=settings.db_pool_max if max_size is None else max_size,
        command_timeout=settings.db_timeout_s if command_timeout is None else command_timeout,
        setup=enter_replay,
        # The session's search_path and the replay's shared lock: asyncpg's reset takes both
        # off at the release (production's pools skip it: create_pool says why).
        keep_session=False,
    )
