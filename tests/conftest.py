"""Fixtures over the real local stack: each session gets its own topics, database and bucket."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioboto3
import asyncpg
import pytest

from planstream.adapters.http.tokens import mint
from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.repository import Repository
from planstream.dev.isolation import create_database, database_name, drop_database
from planstream.dev.launcher import everything, prepare, running
from planstream.domain.principals import OPERATOR
from planstream.settings import Settings
from tests.stackkit import ROOT, isolated_settings

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f"tests/{kind}" in str(item.path) for kind in ("integration", "system")):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings.from_env(os.environ)


@pytest.fixture(scope="session")
async def settings(base_settings: Settings) -> AsyncIterator[Settings]:
    """Isolated settings whose database, bucket and topics exist and are empty."""
    isolated = isolated_settings(base_settings)
    database = database_name(isolated)
    try:
        await create_database(base_settings.dsn, database, timeout_s=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL of the local stack is unreachable ({exc}): run `make test`")
    await prepare(isolated)
    yield isolated
    await drop_database(base_settings.dsn, database)


@pytest.fixture(scope="session")
async def repo(settings: Settings) -> AsyncIterator[Repository]:
    pool = await create_pool(settings.dsn)
    yield Repository(pool)
    await pool.close()


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.dsn)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def s3(settings: Settings) -> AsyncIterator[object]:
    session = aioboto3.Session(
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        region_name=settings.s3_region,
    )
    async with session.client("s3", endpoint_url=settings.s3_endpoint) as client:
        yield client


@pytest.fixture(scope="module")
def user_token(settings: Settings, request: pytest.FixtureRequest) -> str:
    """A user's bearer token (signed with the local stack's key, as the ingress checks); each
    test module is its own user, so the per-subject quotas count one module's runs."""
    return mint(settings, "user-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-"))


@pytest.fixture(scope="module")
def operator_token(settings: Settings) -> str:
    """An operator's bearer token: reviews blocked runs, reads every run."""
    return mint(settings, "test-operator", roles=(OPERATOR,))


@pytest.fixture(scope="session")
def logs(settings: Settings) -> Path:
    """The services' logs of this session (its own folder: sessions may run side by side)."""
    folder = ROOT / ".planstream" / "test-logs" / settings.app_id_suffix.lstrip("-")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def ingress_url(settings: Settings, logs: Path) -> Iterator[str]:
    """The ingress and every Faust worker as subprocesses; yields the ingress's base URL."""
    with running(settings, everything(), logs):
        yield f"http://127.0.0.1:{settings.ingress_port}"
