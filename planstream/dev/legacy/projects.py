"""Where the scripted old function finds a project's records and images.

The old function shared planstream's database and bucket; here a *project* is one of the local
stack's databases (``planstream`` by default, ``planstream_<tag>`` for a test session's slice),
named in the endpoint's path, so one server serves every slice. Pools hold no idle connection
(a slice's database is dropped at its end); one storage client per bucket.
"""

import re
from typing import Final

import asyncpg

from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.storage import Storage
from planstream.dev.legacy.contract import LegacyError
from planstream.settings import Settings

__all__ = ["PROJECT_PATTERN", "Projects"]

PROJECT_PATTERN: Final = r"planstream(?:_[a-z0-9]{1,40})?"
_PROJECT: Final = re.compile(rf"^{PROJECT_PATTERN}$")
_POOL_SIZE: Final = 4


class Projects:
    """Repositories per project database, storage clients per bucket; closed by ``close``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pools: dict[str, asyncpg.Pool] = {}
        self._storages: dict[str, Storage] = {}

    def _dsn(self, project: str) -> str:
        return self._settings.dsn.rsplit("/", 1)[0] + f"/{project}"

    async def repository(self, project: str | None) -> Repository:
        """The records of ``project`` (None: the settings' own database)."""
        name = project or self._settings.dsn.rsplit("/", 1)[1]
        if project is not None and not _PROJECT.fullmatch(project):
            raise LegacyError(404, "NOT_FOUND", "no such project")
        pool = self._pools.get(name)
        if pool is None:
            try:
                pool = await create_pool(self._dsn(name), min_size=0, max_size=_POOL_SIZE)
            except (OSError, asyncpg.PostgresError) as exc:
                raise LegacyError(
                    404, "NOT_FOUND", f"project {name}: {type(exc).__name__}"
                ) from None
            self._pools[name] = pool
        return Repository(pool)

    async def forget(self, project: str | None) -> None:
        """Close the pool of a project whose database went away."""
        name = project or self._settings.dsn.rsplit("/", 1)[1]
        pool = self._pools.pop(name, None)
        if pool is not None:
            pool.terminate()

    async def storage(self, bucket: str) -> Storage:
        """A client that reads any bucket and writes ``bucket``."""
        found = self._storages.get(bucket)
        if found is None:
            found = Storage(self._settings.with_overrides(s3_bucket=bucket))
            await found.start()
            self._storages[bucket] = found
        return found

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        for storage in self._storages.values():
            await storage.stop()
        self._pools.clear()
        self._storages.clear()
