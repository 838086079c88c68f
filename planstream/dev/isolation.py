"""A slice of the shared local stack for one run: its own topics, app ids, bucket and database.

The integration tests, the fault suite and the benchmarks share Kafka, PostgreSQL and S3 with
everyone else; a run's tag names what is its own (topics ``<tag>.*``, Faust app ids ending
``-<tag>``, the bucket ``planstream-<tag>``, the database ``planstream_<tag>``), so two runs never
meet and the clean-up finds everything the run made.
"""

import socket
import uuid
from typing import Any

import asyncpg

from planstream.settings import Settings

__all__ = [
    "create_database",
    "database_name",
    "drop_database",
    "free_port",
    "isolated",
    "new_tag",
]


def free_port() -> int:
    """A loopback port free now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_tag(prefix: str) -> str:
    """A fresh run tag: ``prefix`` (who runs: ``t`` tests, ``c`` chaos, ``b`` bench) and 10 hex."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def isolated(base: Settings, tag: str, **overrides: Any) -> Settings:
    """``base`` with the topic namespace, app id suffix, bucket and database of ``tag``, then
    ``overrides`` (which may replace any of those)."""
    own: dict[str, Any] = {
        "topic_namespace": f"{tag}.",
        "app_id_suffix": f"-{tag}",
        "s3_bucket": f"planstream-{tag}",
        "postgres_dsn": base.dsn.rsplit("/", 1)[0] + f"/planstream_{tag}",
        "legacy_url": _legacy_project(base.legacy_url, f"planstream_{tag}"),
    }
    return base.with_overrides(**(own | overrides))


def _legacy_project(url: str, database: str) -> str:
    """The scripted old function's endpoint for ``database`` (``/projects/<db>/functions/...``);
    any other endpoint as it is."""
    origin, functions, rest = url.partition("/functions/")
    if not functions or "/projects/" in origin:
        return url
    return f"{origin}/projects/{database}/functions/{rest}"


def database_name(settings: Settings) -> str:
    """The database ``settings`` connect to (the last part of the DSN)."""
    return settings.dsn.rsplit("/", 1)[1]


async def create_database(admin_dsn: str, name: str, timeout_s: float = 60) -> None:
    """``CREATE DATABASE name`` through a connection to ``admin_dsn``."""
    await _execute(admin_dsn, f'CREATE DATABASE "{name}"', timeout_s)


async def drop_database(admin_dsn: str, name: str, timeout_s: float = 60) -> None:
    """Drop ``name`` if it exists, closing its connections first."""
    await _execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout_s)


async def _execute(admin_dsn: str, statement: str, timeout_s: float) -> None:
    admin = await asyncpg.connect(admin_dsn, timeout=timeout_s)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
