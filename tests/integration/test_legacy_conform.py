"""The old function's HTTP client passes the suite its fake passes, against the local stack's
scripted run-pipeline-step on the session's database and bucket (its statuses scripted through
``/_scripted``); and what it sends is ids only, with the settings' credentials."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from planstream.adapters.legacy import LegacyClient
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.storage import Storage
from planstream.domain.events import LegacyStepRequested, step_key
from planstream.domain.ids import new_id
from planstream.ports import LegacyRefused, LegacyUnavailable
from planstream.settings import Settings
from tests.conformance.legacy import LegacyFunctionContract
from tests.conformance.repository import make_run
from tests.images import floor_plan_png


class _Http:
    def __init__(
        self, client: LegacyClient, repo: Repository, storage: Storage, settings: Settings
    ) -> None:
        self.function = client
        self._repo = repo
        self._storage = storage
        self._settings = settings

    async def request(self, *, foreign: bool = False) -> LegacyStepRequested:
        run, source = await make_run(self._repo, self._storage.bucket)
        if foreign:
            _, source = await make_run(self._repo, self._storage.bucket)
        artifact = await self._repo.artifact(source)
        assert artifact is not None
        await self._storage.write(artifact.storage_path, floor_plan_png(640, 480), "image/png")
        return LegacyStepRequested(
            event_id=new_id("evt"),
            run_id=run.run_id,
            occurred_at=datetime.now(UTC),
            step_id=0,
            attempt=1,
            idempotency_key=step_key(run.run_id, 0, 1),
            input_artifact_ids=[source],
            quality="2K",
            requested_by="client",
        )

    async def script(self, status: int) -> None:
        base = self._settings.legacy_url.split("/projects/", 1)[0]
        project = self._settings.dsn.rsplit("/", 1)[1]
        async with (
            aiohttp.ClientSession() as session,
            session.put(
                f"{base}/_scripted/projects/{project}/script", json={"errors": [status]}
            ) as response,
        ):
            assert response.status == 200, await response.text()


@pytest.fixture(scope="module")
async def http(settings: Settings, repo: Repository) -> AsyncIterator[_Http]:
    client, storage = LegacyClient(settings), Storage(settings)
    await client.start()
    await storage.start()
    try:
        yield _Http(client, repo, storage, settings)
    finally:
        await storage.stop()
        await client.stop()


class TestLegacyClient(LegacyFunctionContract):
    @pytest.fixture
    def harness(self, http: _Http) -> _Http:
        return http


async def test_a_wrong_token_is_refused(settings: Settings, http: _Http) -> None:
    client = LegacyClient(settings.with_overrides(legacy_auth_token="not-the-token"))
    await client.start()
    try:
        with pytest.raises(LegacyRefused) as refused:
            await client.run_step(await http.request())
    finally:
        await client.stop()
    assert (refused.value.call.code, refused.value.call.status) == ("UNAUTHORIZED", 401)
    assert "not-the-token" not in str(refused.value)


async def test_nobody_listening_is_worth_calling_again(settings: Settings, http: _Http) -> None:
    client = LegacyClient(settings.with_overrides(legacy_url="http://127.0.0.1:9/functions/v1/x"))
    await client.start()
    try:
        with pytest.raises(LegacyUnavailable) as unavailable:
            await client.run_step(await http.request())
    finally:
        await client.stop()
    assert (unavailable.value.call.code, unavailable.value.call.status) == ("UNREACHABLE", None)


async def test_no_answer_within_the_timeout_is_worth_calling_again(
    settings: Settings, http: _Http
) -> None:
    base = settings.legacy_url.split("/projects/", 1)[0]
    script = f"{base}/_scripted/projects/{settings.dsn.rsplit('/', 1)[1]}/script"
    client = LegacyClient(settings.with_overrides(legacy_timeout_s=0.3))
    await client.start()
    async with aiohttp.ClientSession() as session:
        async with session.put(script, json={"delay_s": 2}) as response:
            assert response.status == 200
        try:
            with pytest.raises(LegacyUnavailable) as unavailable:
                await client.run_step(await http.request())
        finally:
            await client.stop()
            async with session.put(script, json={"delay_s": 0}) as response:
                assert response.status == 200
    assert (unavailable.value.call.code, unavailable.value.call.status) == ("TIMEOUT", None)
