"""The scripted model server in-process, through the real openai client, images on loopback HTTP.

A tiny aiohttp server stands in for S3's presigned GET URLs (tests/integration covers S3 itself).
"""

import asyncio
import base64
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion
from PIL import Image

from planstream.dev.isolation import free_port
from planstream.dev.modelserver import server
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest, SampleEntry
from planstream.dev.samples.scenarios import SCENARIOS
from planstream.dev.samples.truth import Document, scaled
from planstream.domain.contracts import spaces_schema_for_model
from planstream.domain.decisions import Audit, DecisionCase, decide_case
from planstream.domain.policy import render_size
from planstream.domain.prompts import (
    AUDIT,
    COMPARISON,
    Prompt,
    audit_messages,
    comparison_messages,
    extraction_messages,
)
from planstream.domain.rules import Mismatch, Policy
from planstream.domain.spaces import ImageSize, SchemaViolation, SpacesDocument, load_spaces
from planstream.domain.steps import DEFAULT_STEPS
from planstream.settings import Settings

SPACES_SCHEMA = spaces_schema_for_model()
TRANSPORT_FAILURES = (openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)


class Blobs:
    """A loopback HTTP server for images, the stand-in for presigned S3 GET URLs."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.port = free_port()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return self.url(name)

    async def handle(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/png")


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model-samples")
    generate(root / "set-a", seed=11)
    return root


@pytest.fixture(scope="module")
def manifest(samples_dir: Path) -> Manifest:
    return Manifest.read(samples_dir / "set-a" / "manifest.json")


@pytest.fixture(scope="module")
async def blobs(samples_dir: Path, manifest: Manifest) -> AsyncIterator[Blobs]:
    served = Blobs()
    for entry in manifest.samples:
        served.add(entry.file, (samples_dir / "set-a" / entry.file).read_bytes())
    app = web.Application()
    app.router.add_get("/{name}", served.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", served.port).start()
    yield served
    await runner.cleanup()


@pytest.fixture(scope="module")
def settings(samples_dir: Path) -> Settings:
    return Settings(model_samples_dir=samples_dir, model_hang_s=600.0)


@pytest.fixture(scope="module")
async def base_url(settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    runner = await server.start(settings, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


@pytest.fixture
async def client(base_url: str, settings: Settings) -> AsyncIterator[openai.AsyncOpenAI]:
    """A fresh client after ``POST /v1/scripted/reset``: every scenario starts at call 1."""
    headers = {"Authorization": f"Bearer {settings.model_api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/scripted/reset", headers=headers) as response,
    ):
        assert response.status == 200
    api = openai.AsyncOpenAI(base_url=base_url, api_key=settings.model_api_key, max_retries=0)
    yield api
    await api.close()


def sample(manifest: Manifest, scenario: str) -> SampleEntry:
    return next(entry for entry in manifest.samples if entry.scenario == scenario)


def truth(samples_dir: Path, entry: SampleEntry) -> Document:
    document: Document = json.loads((samples_dir / "set-a" / entry.truth).read_text())
    return document


def response_format(prompt: Prompt | None) -> Any:
    name, schema = (
        ("spaces_v1", SPACES_SCHEMA) if prompt is None else (prompt.schema_name, prompt.schema)
    )
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


async def extract(api: openai.AsyncOpenAI, url: str, timeout: float = 10.0) -> ChatCompletion:
    return await api.with_options(timeout=timeout).chat.completions.create(
        model="planstream-scripted-vision",
        messages=extraction_messages(url),
        response_format=response_format(None),
        max_completion_tokens=8000,
    )


async def compare(api: openai.AsyncOpenAI, request_text: str, spaces: object) -> list[Mismatch]:
    completion = await api.chat.completions.create(
        model="planstream-scripted-vision",
        messages=comparison_messages(request_text, spaces),
        response_format=response_format(COMPARISON),
    )
    data = json.loads(completion.choices[0].message.content or "")
    return [Mismatch(m["description"], m["severity"]) for m in data["mismatches"]]


async def audit(api: openai.AsyncOpenAI, url: str, spaces: object) -> Audit:
    completion = await api.chat.completions.create(
        model="planstream-scripted-vision",
        messages=audit_messages(url, spaces, [], None),
        response_format=response_format(AUDIT),
    )
    data = json.loads(completion.choices[0].message.content or "")
    return Audit(data["consistency_score"], tuple(data["contradictions"]))


async def edit(
    api: openai.AsyncOpenAI, png: bytes, size: str, prompt: str = "Furnish it."
) -> bytes:
    answer = await api.images.edit(
        model="planstream-scripted-image",
        image=("source.png", png, "image/png"),
        prompt=prompt,
        size=size,  # type: ignore[arg-type]  # any WIDTHxHEIGHT, as planstream asks
        n=1,
    )
    assert answer.data and answer.data[0].b64_json
    return base64.b64decode(answer.data[0].b64_json)


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


async def call_kind(api: openai.AsyncOpenAI, url: str, expected: Document) -> str:
    """What one extraction call gave, in the words of the scenario table."""
    try:
        completion = await extract(api, url, timeout=1.0)
    except openai.APITimeoutError:
        return "timeout"
    except openai.APIStatusError as exc:
        return f"http {exc.status_code}"
    choice = completion.choices[0]
    content = choice.message.content or ""
    if choice.finish_reason == "length":
        return "cut"
    loaded = load_spaces(content)
    if isinstance(loaded, SchemaViolation):
        return "not json"
    return "truth" if json.loads(content) == expected else "flawed"


@pytest.mark.parametrize(
    ("scenario", "calls"),
    [
        ("correct", ["truth", "truth", "truth"]),
        ("flawed_then_correct", ["flawed", "truth", "truth"]),
        ("hallucinated_room", ["flawed", "truth", "truth"]),
        ("missing_room", ["flawed", "flawed", "flawed"]),
        ("low_confidence", ["flawed", "flawed", "flawed"]),
        ("not_a_floor_plan", ["truth", "truth", "truth"]),
        ("invalid_json", ["not json", "not json", "not json"]),
        ("length", ["cut", "truth", "truth"]),
        ("rate_limited", ["http 429", "truth", "truth"]),
        ("server_error", ["http 500", "truth", "truth"]),
        ("hang", ["timeout", "truth", "truth"]),
    ],
)
async def test_each_scenario_call_by_call(
    client: openai.AsyncOpenAI,
    blobs: Blobs,
    manifest: Manifest,
    samples_dir: Path,
    scenario: str,
    calls: list[str],
) -> None:
    entry = sample(manifest, scenario)
    expected = truth(samples_dir, entry)
    got = [await call_kind(client, blobs.url(entry.file), expected) for _ in calls]
    assert got == calls


async def step(
    api: openai.AsyncOpenAI, url: str, size: ImageSize, request_text: str, budget: int = 3
) -> tuple[str, str | None, int]:
    """One step as the workers run it: budgeted extraction calls, comparison, audit, decision."""
    calls, attempt = 0, 1
    while True:
        content = ""
        while calls < budget:
            calls += 1
            try:
                completion = await extract(api, url, timeout=1.0)
            except TRANSPORT_FAILURES:
                continue
            choice = completion.choices[0]
            content = (choice.message.content or "") if choice.finish_reason == "stop" else ""
            break
        document = load_spaces(content)
        mismatches: list[Mismatch] = []
        checked: Audit | None = None
        if isinstance(document, SpacesDocument):
            spaces = json.loads(content)
            mismatches = await compare(api, request_text, spaces)
            checked = await audit(api, url, spaces)
        case = DecisionCase(
            document,
            image=size,
            mismatches=tuple(mismatches),
            audit=checked,
            attempt=attempt,
            max_attempts=budget,
        )
        result = decide_case(case, Policy())
        if result.decision != "retry":
            return result.decision, result.block_reason, calls
        attempt += 1


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_each_scenario_ends_as_the_manifest_expects(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest, samples_dir: Path, scenario: str
) -> None:
    """Step 0 from the source image, then steps 1-6 from renders, decided by RULES.md."""
    entry = sample(manifest, scenario)
    png = (samples_dir / "set-a" / entry.file).read_bytes()
    size = ImageSize(entry.width_px, entry.height_px)
    decision, block_reason, calls = await step(
        client, blobs.url(entry.file), size, entry.request_text
    )
    assert (block_reason, calls) == (entry.expected.block_reason, entry.expected.step0_attempts)
    if entry.expected.outcome == "blocked":
        assert decision == "block"
        return
    assert decision == "proceed"
    for spec in DEFAULT_STEPS[1:]:
        width, height = render_size(size.width_px, size.height_px, "1K")
        png = await edit(client, png, f"{width}x{height}", spec.prompt)
        assert png_size(png) == (width, height)
        url = blobs.add(f"{entry.id}-step-{spec.step_id}.png", png)
        size = ImageSize(width, height)
        assert await step(client, url, size, entry.request_text) == ("proceed", None, 1)


async def test_a_429_carries_retry_after(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest
) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        await extract(client, blobs.url(sample(manifest, "rate_limited").file))
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.code == "rate_limit_exceeded"


async def test_a_500_is_an_internal_server_error(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest
) -> None:
    with pytest.raises(openai.InternalServerError) as failed:
        await extract(client, blobs.url(sample(manifest, "server_error").file))
    assert failed.value.status_code == 500
    assert failed.value.type == "server_error"


async def test_a_hang_is_abandoned_and_the_server_keeps_answering(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="planstream.dev.modelserver.chat")
    url = blobs.url(sample(manifest, "hang").file)
    started = time.monotonic()
    hanging = asyncio.create_task(extract(client, url, timeout=1.0))
    await asyncio.sleep(0.2)
    listed = await client.models.list()
    assert {model.id for model in listed.data} == set(server.MODELS)
    assert time.monotonic() - started < 0.9, "the server answered while the call hangs"
    with pytest.raises(openai.APITimeoutError):
        await hanging
    assert time.monotonic() - started < 3
    for _ in range(40):
        if "abandoned by its client" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert "abandoned by its client" in caplog.text
    assert (await extract(client, url)).choices[0].finish_reason == "stop"


async def test_an_unknown_image_is_a_bad_request(client: openai.AsyncOpenAI, blobs: Blobs) -> None:
    stray = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(stray, "PNG")
    with pytest.raises(openai.BadRequestError, match="unknown image: not one of the scripted"):
        await extract(client, blobs.add("stray.png", stray.getvalue()))
    with pytest.raises(openai.BadRequestError, match="could not download the image: HTTP 404"):
        await extract(client, blobs.url("missing.png"))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/plan.png",
        "http://10.0.0.1:15000/plan.png",
        "file:///etc/passwd",
        "ftp://127.0.0.1/plan.png",
        "data:image/png;base64,iVBORw0KGgo=",
    ],
)
async def test_only_loopback_urls_are_fetched(client: openai.AsyncOpenAI, url: str) -> None:
    with pytest.raises(openai.BadRequestError, match="only loopback image URLs") as refused:
        await extract(client, url)
    assert refused.value.code == "invalid_image_url"


async def test_an_unknown_schema_name_is_named(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "floor_v9", "schema": {}}}
    with pytest.raises(openai.BadRequestError, match="must be one of spaces_v1") as refused:
        await client.chat.completions.create(
            model="m",
            messages=extraction_messages(blobs.url(sample(manifest, "correct").file)),
            response_format=fmt,  # type: ignore[arg-type]
        )
    assert "floor_v9" in refused.value.message


async def test_a_wrong_key_and_an_unknown_route(base_url: str) -> None:
    api = openai.AsyncOpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await api.models.list()
    await api.close()
    headers = {"Authorization": "Bearer sk-local-scripted"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/embeddings", headers=headers) as response,
    ):
        body = await response.json()
    assert response.status == 404
    assert body["error"]["code"] == "not_found"
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_renders_have_the_size_asked_and_answer_with_scaled_truth(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest, samples_dir: Path
) -> None:
    entry = sample(manifest, "missing_room")  # scenarios never apply to renders
    source = (samples_dir / "set-a" / entry.file).read_bytes()
    first = await edit(client, source, "1600x1200")
    assert png_size(first) == (1600, 1200)
    assert first == await edit(client, source, "1600x1200")
    completion = await extract(client, blobs.add("render-1.png", first))
    answered = json.loads(completion.choices[0].message.content or "")
    assert answered == scaled(truth(samples_dir, entry), 1600, 1200)
    second = await edit(client, first, "3000x2250", "Apply a coherent interior style.")
    completion = await extract(client, blobs.add("render-2.png", second))
    answered = json.loads(completion.choices[0].message.content or "")
    assert answered["image"] == {"width_px": 3000, "height_px": 2250}
    verdict = decide_case(DecisionCase(load_spaces(answered), ImageSize(3000, 2250)), Policy())
    assert (verdict.decision, verdict.failures) == ("proceed", ())


@pytest.mark.parametrize(
    ("image", "size", "message"),
    [
        (b"GIF89a not a png", "1024x768", "image must be a PNG"),
        (None, "1024", "size must be WIDTHxHEIGHT"),
        (None, "99999x10", "each edge must be 64-8192 px"),
        ("stray", "1024x768", "unknown image"),
    ],
)
async def test_bad_edits_are_refused(
    client: openai.AsyncOpenAI,
    manifest: Manifest,
    samples_dir: Path,
    image: bytes | str | None,
    size: str,
    message: str,
) -> None:
    if image is None:
        data = (samples_dir / "set-a" / sample(manifest, "correct").file).read_bytes()
    elif image == "stray":
        stray = io.BytesIO()
        Image.new("RGB", (64, 64), "blue").save(stray, "PNG")
        data = stray.getvalue()
    else:
        assert isinstance(image, bytes)
        data = image
    with pytest.raises(openai.BadRequestError, match=message):
        await edit(client, data, size)


async def test_audit_scores_truth_and_hallucinations(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest, samples_dir: Path
) -> None:
    entry = sample(manifest, "hallucinated_room")
    url = blobs.url(entry.file)
    flawed = json.loads((await extract(client, url)).choices[0].message.content or "")
    right = json.loads((await extract(client, url)).choices[0].message.content or "")
    assert right == truth(samples_dir, entry)
    assert await audit(client, url, right) == Audit(1.0, ())
    low = await audit(client, url, flawed)
    assert low.consistency_score < 0.5
    assert low.contradictions[0].endswith("is not on the plan")
    assert (await audit(client, url, None)).contradictions[0].startswith("no valid Spaces")


async def test_comparison_reports_a_wrong_count(
    client: openai.AsyncOpenAI, manifest: Manifest, samples_dir: Path
) -> None:
    entry = next(e for e in manifest.samples if e.layout == "2-bedroom")
    document = truth(samples_dir, entry)
    assert await compare(client, entry.request_text, document) == []
    assert await compare(client, "Five bedrooms, please.", document) == [
        Mismatch("the request asks for 5 bedrooms, the plan has 2", "high")
    ]


async def test_reset_starts_every_scenario_over(
    client: openai.AsyncOpenAI, base_url: str, blobs: Blobs, manifest: Manifest, samples_dir: Path
) -> None:
    entry = sample(manifest, "flawed_then_correct")
    url, expected = blobs.url(entry.file), truth(samples_dir, entry)
    assert [await call_kind(client, url, expected) for _ in range(2)] == ["flawed", "truth"]
    await client.post("/scripted/reset", cast_to=object)
    assert await call_kind(client, url, expected) == "flawed"


async def test_samples_written_after_start_are_found(
    client: openai.AsyncOpenAI, blobs: Blobs, samples_dir: Path
) -> None:
    later = generate(samples_dir / "later" / "nested", seed=99, count=1, scenarios=("correct",))
    entry = later.samples[0]
    data = (samples_dir / "later" / "nested" / entry.file).read_bytes()
    completion = await extract(client, blobs.add("later.png", data))
    assert completion.choices[0].finish_reason == "stop"


async def test_hundreds_of_calls_at_once(
    client: openai.AsyncOpenAI, blobs: Blobs, manifest: Manifest
) -> None:
    url = blobs.url(sample(manifest, "correct").file)
    answers = await asyncio.gather(*(extract(client, url, timeout=30.0) for _ in range(300)))
    assert {a.choices[0].message.content for a in answers} == {
        answers[0].choices[0].message.content
    }
