"""The local PostgreSQL: the system's server binaries on a data folder inside the work dir."""

import logging
import os
import pwd
import signal
import stat
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from planstream.dev.stack.processes import Launch, run_logged
from planstream.dev.stack.service import Service, ServiceDown, StackError, reason
from planstream.dev.stack.tools import DEBIAN_PG_ROOT, find_pg_bindir

__all__ = ["Postgres", "display_dsn"]

logger = logging.getLogger(__name__)

SUPERUSER: Final = "postgres"  # initdb's superuser: trusted on the socket folder only, no password
MAX_CONNECTIONS: Final = 300
"""The local server's connection slots. Every planstream process holds a pool of up to
``db_pool_max`` (10) connections, and PostgreSQL's default of 100 (3 kept for superusers) ran out
under the step-throughput benchmark: two processes of every service, the sink and the sweeper
(100 at their peak) beside the I/O floor's five processes. docs/deploy.md sizes a real server."""
SERVER_ACCOUNT: Final = "postgres"  # the system user that runs initdb and postgres when we are root
_MAX_SOCKET_PATH: Final = 107  # sun_path holds 108 bytes with the trailing NUL
_PROBE_TIMEOUT_S: Final = 5.0
_ROLE_EXISTS: Final = "SELECT 1 FROM pg_roles WHERE rolname = $1"
_DATABASE_EXISTS: Final = "SELECT 1 FROM pg_database WHERE datname = $1"
_CREATE_ROLE: Final = (
    "SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', $1::text, $2::text)"
)
_ALTER_ROLE: Final = "SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', $1::text, $2::text)"
_CREATE_DATABASE: Final = "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)"
_PROBE_ERRORS: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def display_dsn(dsn: str) -> str:
    """The DSN without its password, safe to print and log."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}@{host}"))


@asynccontextmanager
async def _connected(**params: Any) -> AsyncIterator[asyncpg.Connection]:
    """A connection that gives up after the probe timeout and is always closed."""
    connection = await asyncpg.connect(timeout=_PROBE_TIMEOUT_S, **params)
    try:
        yield connection
    finally:
        await connection.close()


def _grant_search(folder: Path) -> None:
    """Let the server account reach its folder: add the search bit for others on every ancestor."""
    for path in (folder, *folder.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.info("postgres: adding o+x to %s so %s can reach its data", path, SERVER_ACCOUNT)
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


class Postgres(Service):
    """``initdb`` once, then ``postgres`` on 127.0.0.1 with its socket inside the work dir."""

    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown: the signal `pg_ctl stop -m fast` sends

    @property
    def _data(self) -> Path:
        return self.files.folder / "data"

    @property
    def _socket_dir(self) -> Path:
        return self.files.folder / "run"

    @property
    def _account(self) -> str | None:
        """The system user to run the server as: initdb and postgres refuse to run as root."""
        return SERVER_ACCOUNT if os.geteuid() == 0 else None

    def _binary(self, name: str) -> str:
        bindir = find_pg_bindir()
        if bindir is None:
            raise StackError(f"the PostgreSQL program {name} was not found")
        return str(bindir / name)

    def address(self) -> str:
        """The DSN clients use, without its password."""
        return display_dsn(self.settings.dsn)

    def ports(self) -> tuple[tuple[str, int], ...]:
        """The server's TCP port on loopback."""
        return (("127.0.0.1", self.settings.postgres_port),)

    def missing_prerequisite(self) -> str | None:
        """The server binaries, the postgres account when root, a short enough socket path."""
        if find_pg_bindir() is None:
            return (
                "The local PostgreSQL needs the server binaries (initdb, postgres) and none were "
                f"found on PATH, through pg_config or in {DEBIAN_PG_ROOT}/*/bin: "
                "apt-get install -y postgresql."
            )
        if self._account is not None:
            try:
                pwd.getpwnam(self._account)
            except KeyError:
                return (
                    f"As root, the local PostgreSQL runs as the system user {self._account!r}, "
                    "which does not exist: apt-get install -y postgresql creates it."
                )
        socket = self._socket_dir / f".s.PGSQL.{self.settings.postgres_port}"
        if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
            return (
                f"The PostgreSQL socket path {socket} is longer than a Unix socket allows: "
                "set PLANSTREAM_WORK_DIR to a shorter folder."
            )
        return None

    async def prepare(self) -> None:
        """Create the data and socket folders (owned by the server account) and run initdb once."""
        for folder in (self._data, self._socket_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
        if self._account is not None:
            account = pwd.getpwnam(self._account)
            for folder in (self._data, self._socket_dir):
                os.chown(folder, account.pw_uid, account.pw_gid)
            _grant_search(self.files.folder)
        if (self._data / "PG_VERSION").is_file():
            return
        argv = [
            self._binary("initdb"),
            f"--pgdata={self._data}",
            f"--username={SUPERUSER}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
        ]
        code = await run_logged(argv, self.files, user=self._account)
        if code != 0:
            raise StackError(f"initdb failed in {self._data} (exit code {code})")

    def launch(self) -> Launch:
        """``postgres`` listening on 127.0.0.1 only, its socket in the work dir."""
        argv = [
            self._binary("postgres"),
            "-D",
            str(self._data),
            "-p",
            str(self.settings.postgres_port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"max_connections={MAX_CONNECTIONS}",
            "-c",
            f"unix_socket_directories={self._socket_dir}",
        ]
        return Launch(argv, cwd=self.files.folder, user=self._account)

    def _admin(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A superuser connection through the socket folder (trusted there, refused over TCP)."""
        return _connected(
            host=str(self._socket_dir),
            port=self.settings.postgres_port,
            user=SUPERUSER,
            database="postgres",
        )

    async def ready(self) -> None:
        """The server we started answers ``SELECT 1`` on its socket."""
        try:
            async with self._admin() as connection:
                await connection.fetchval("SELECT 1")
        except _PROBE_ERRORS as exc:
            raise ServiceDown(f"no answer on {self._socket_dir}: {reason(exc)}") from exc

    async def provision(self) -> None:
        """Create or update the settings' role (login, password, createdb), create its database."""
        user, database = self.settings.postgres_user, self.settings.postgres_db
        try:
            async with self._admin() as connection:
                # The role statement holds the password: keep it out of the server log on error.
                await connection.execute("SET log_min_error_statement = panic")
                exists = await connection.fetchval(_ROLE_EXISTS, user)
                role_sql = _ALTER_ROLE if exists else _CREATE_ROLE
                password = self.settings.postgres_password
                await connection.execute(await connection.fetchval(role_sql, user, password))
                if not await connection.fetchval(_DATABASE_EXISTS, database):
                    logger.info("postgres: creating database %s owned by %s", database, user)
                    await connection.execute(
                        await connection.fetchval(_CREATE_DATABASE, database, user)
                    )
        except _PROBE_ERRORS as exc:
            raise StackError(
                f"could not create role and database {database}: {reason(exc)}"
            ) from exc

    async def healthy(self) -> None:
        """``SELECT 1`` with the settings' DSN (user, password and database)."""
        try:
            async with _connected(dsn=self.settings.dsn) as connection:
                await connection.fetchval("SELECT 1")
        except _PROBE_ERRORS as exc:
            raise ServiceDown(f"no answer at {self.address()}: {reason(exc)}") from exc
