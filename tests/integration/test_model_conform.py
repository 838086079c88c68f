"""The OpenAI-client adapter passes the model-client suite its fake passes, against the stack's
scripted model server: sample plans whose scenario makes the first extraction call a 429, a
500 or a hang; an unknown schema for a refusal; a closed port for an unreachable server."""

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from planstream.adapters.model import ModelClient
from planstream.adapters.storage import Storage
from planstream.dev.isolation import free_port
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest
from planstream.dev.samples.scenarios import Scenario as SampleScenario
from planstream.domain.contracts import spaces_schema_for_model
from planstream.domain.prompts import (
    COMPARISON,
    EXTRACTION,
    comparison_messages,
    extraction_messages,
)
from planstream.settings import Settings
from tests.conformance.model import Call, ModelClientContract, Scenario

_SCENARIOS: dict[str, SampleScenario] = {
    "throttled": "rate_limited",
    "server_error": "server_error",
    "timeout": "hang",
}


class _ScriptedServer:
    """Clients on the stack's model server, and sample images served from the session's S3."""

    def __init__(
        self, settings: Settings, storage: Storage, folder: Path, manifest: Manifest
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._folder = folder
        self._manifest = manifest
        self._clients: list[ModelClient] = []

    async def client(self, **overrides: object) -> ModelClient:
        client = ModelClient(self._settings.with_overrides(**overrides))
        await client.start()
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.stop()

    def sample(self, scenario: str) -> bytes:
        entry = next(e for e in self._manifest.samples if e.scenario == scenario)
        return (self._folder / entry.file).read_bytes()

    async def scenario(self, name: Scenario) -> Call:
        model = self._settings.model_vision
        if name == "unreachable":
            closed = f"http://127.0.0.1:{free_port()}/v1"
            client = await self.client(model_base_url=closed)
            return Call(client, model, comparison_messages("Two bedrooms.", None), *_COMPARE)
        if name in ("answer", "refused"):
            client = await self.client()
            schema_name = COMPARISON.schema_name if name == "answer" else "not_a_known_schema"
            messages = comparison_messages("Two bedrooms.", None)
            return Call(client, model, messages, schema_name, COMPARISON.schema)
        key = f"conformance/{name}.png"
        await self._storage.write(key, self.sample(_SCENARIOS[name]), "image/png")
        url = await self._storage.presign_get(self._storage.bucket, key, 600)
        client = (
            await self.client(model_timeout_s=1.0) if name == "timeout" else await self.client()
        )
        spaces = spaces_schema_for_model()
        return Call(client, model, extraction_messages(url), EXTRACTION.schema_name, spaces)

    async def image(self) -> tuple[ModelClient, str, bytes]:
        return await self.client(), self._settings.model_image, self.sample("correct")


_COMPARE = (COMPARISON.schema_name, COMPARISON.schema)


@pytest.fixture(scope="module")
async def scripted(settings: Settings) -> AsyncIterator[_ScriptedServer]:
    """Fresh samples (a new seed: the server counts calls per image, from its start)."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"conformance-{seed}"
    manifest = generate(folder, seed=seed, count=4, scenarios=("correct", *_SCENARIOS.values()))
    storage = Storage(settings)
    await storage.start()
    server = _ScriptedServer(settings, storage, folder, manifest)
    try:
        yield server
    finally:
        await server.close()
        await storage.stop()


class TestScriptedModelClient(ModelClientContract):
    @pytest.fixture
    def harness(self, scripted: _ScriptedServer) -> _ScriptedServer:
        return scripted
