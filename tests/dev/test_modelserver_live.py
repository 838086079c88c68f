"""The scripted model server reading sample images through presigned GET URLs of the stack's S3."""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from planstream.adapters.storage import Storage
from planstream.dev.isolation import free_port
from planstream.dev.modelserver import server
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest
from planstream.domain.contracts import spaces_schema_for_model
from planstream.domain.prompts import extraction_messages
from planstream.settings import Settings


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    folder = tmp_path_factory.mktemp("s3-samples")
    return folder, generate(folder, seed=5, count=2, scenarios=("flawed_then_correct", "correct"))


@pytest.fixture(scope="module")
async def storage(base_settings: Settings) -> AsyncIterator[Storage]:
    """A bucket of its own on the stack's S3; an unreachable S3 fails the test."""
    own = base_settings.with_overrides(s3_bucket=f"planstream-model-{uuid.uuid4().hex[:10]}")
    store = Storage(own)
    await store.start()
    await store.ensure_bucket()
    yield store
    await store.stop()


@pytest.fixture(scope="module")
async def api(
    base_settings: Settings, samples: tuple[Path, Manifest]
) -> AsyncIterator[openai.AsyncOpenAI]:
    settings = base_settings.with_overrides(model_samples_dir=samples[0])
    port = free_port()
    runner = await server.start(settings, "127.0.0.1", port)
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=settings.model_api_key, max_retries=0
    )
    yield client
    await client.close()
    await runner.cleanup()


async def test_a_presigned_s3_url_is_fetched_and_its_scenario_played(
    storage: Storage, api: openai.AsyncOpenAI, samples: tuple[Path, Manifest]
) -> None:
    folder, manifest = samples
    entry = manifest.samples[0]
    await storage.write(f"runs/r1/{entry.file}", (folder / entry.file).read_bytes(), "image/png")
    url = await storage.presign_get(storage.bucket, f"runs/r1/{entry.file}", 300)
    assert url.startswith("http://127.0.0.1:") and "Signature" in url
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "spaces_v1", "strict": True, "schema": spaces_schema_for_model()},
    }
    answers = [
        await api.chat.completions.create(
            model="planstream-scripted-vision",
            messages=extraction_messages(url),
            response_format=fmt,  # type: ignore[arg-type]
        )
        for _ in range(2)
    ]
    truth = json.loads((folder / entry.truth).read_text())
    documents = [json.loads(a.choices[0].message.content or "") for a in answers]
    assert documents[0] != truth  # flawed_then_correct: call 1 is flawed
    assert documents[1] == truth


async def test_a_render_of_an_s3_image_is_then_read_back_from_s3(
    storage: Storage, api: openai.AsyncOpenAI, samples: tuple[Path, Manifest]
) -> None:
    folder, manifest = samples
    entry = manifest.samples[1]
    edited = await api.images.edit(
        model="planstream-scripted-image",
        image=("source.png", (folder / entry.file).read_bytes(), "image/png"),
        prompt="Furnish every room of this floor plan to scale; keep walls, doors and labels.",
        size="2048x1366",  # type: ignore[arg-type]
        n=1,
    )
    assert edited.data and edited.data[0].b64_json
    png = base64.b64decode(edited.data[0].b64_json)
    await storage.write("runs/r2/step-1.png", png, "image/png")
    url = await storage.presign_get(storage.bucket, "runs/r2/step-1.png", 300)
    answer = await api.chat.completions.create(
        model="planstream-scripted-vision",
        messages=extraction_messages(url),
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "spaces_v1",
                "strict": True,
                "schema": spaces_schema_for_model(),
            },
        },
    )
    document = json.loads(answer.choices[0].message.content or "")
    assert document["image"] == {"width_px": 2048, "height_px": 1366}
