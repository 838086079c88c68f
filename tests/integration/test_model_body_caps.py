"""The model client against a real loopback HTTP server that answers with gzip bombs: every body
is capped while it streams, before and during decompression, so a 604 MB bomb costs memory in
the order of the cap, and the answer is refused by name."""

import gzip
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import pytest
from aiohttp import web

from planstream.adapters.model import ModelClient
from planstream.dev.chaos.bombs import gzip_bomb
from planstream.ports import ModelRefused
from planstream.settings import Settings

MIB = 1024 * 1024
BOMB_MIB = 604  # what one 298 KB body added on main (issue 12)
CHAT_CAP = 400_000
IMAGE_CAP = 4 * MIB
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


BOMB = gzip_bomb(BOMB_MIB)
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": '{"ok": true}', "refusal": None},
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}

Answer = Callable[[web.Request], Awaitable[web.Response]]
Serve = Callable[[Answer], Awaitable[Settings]]


@pytest.fixture
async def server() -> AsyncIterator[Serve]:
    """Serve one handler on a loopback port; the model settings that point at it."""
    runners: list[web.AppRunner] = []

    async def serve(answer: Answer) -> Settings:
        app = web.Application()
        app.router.add_route("POST", "/v1/{tail:.*}", answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return Settings(
            model_base_url=f"http://127.0.0.1:{port}/v1",
            model_api_key="sk-test-bodycaps",
            model_timeout_s=60,
            model_max_response_bytes=CHAT_CAP,
            model_max_image_response_bytes=IMAGE_CAP,
        )

    yield serve
    for runner in runners:
        await runner.cleanup()


def _gzipped(body: bytes, status: int = 200, encoding: str = "gzip") -> Answer:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
        return web.Response(body=body, status=status, headers=headers)

    return answer


async def _chat(settings: Settings) -> Any:
    client = ModelClient(settings)
    await client.start()
    try:
        return await client.chat(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            schema_name="ok",
            schema=SCHEMA,
        )
    finally:
        await client.stop()


async def _measured(call: Awaitable[Any]) -> tuple[Any, int]:
    """What ``call`` returns or raises, and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        try:
            outcome: Any = await call
        except Exception as exc:  # the refusal is the outcome under test
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_the_measure_sees_a_bomb_inflate_without_the_caps(server: Serve) -> None:
    """The control: a plain client inflates a 64 MiB bomb whole, and the measure shows it."""
    settings = await server(_gzipped(gzip_bomb(64)))
    async with httpx2.AsyncClient() as plain:
        response, peak = await _measured(plain.post(f"{settings.model_base_url}/x", json={}))
    assert len(response.content) == 64 * MIB
    assert peak > 64 * MIB


async def test_a_604_mib_gzip_bomb_chat_answer_is_oversize_within_the_cap(server: Serve) -> None:
    settings = await server(_gzipped(BOMB))
    assert len(BOMB) < 1 * MIB

    answer, peak = await _measured(_chat(settings))

    assert (answer.content, answer.finish_reason) == (None, "oversize")
    assert answer.raw == bytes(2_000)  # the first decoded bytes, for the record
    assert peak < 16 * MIB, f"{peak / MIB:.1f} MiB held for a {CHAT_CAP}-byte cap"


async def test_a_bomb_in_an_error_body_is_refused_too(server: Serve) -> None:
    settings = await server(_gzipped(BOMB, status=500))

    answer, peak = await _measured(_chat(settings))

    assert answer.finish_reason == "oversize"
    assert peak < 16 * MIB


async def test_an_image_answer_bomb_is_refused_by_name(server: Serve) -> None:
    settings = await server(_gzipped(BOMB))
    client = ModelClient(settings)
    await client.start()
    try:
        call = client.edit_image(model="m", image_png=b"\x89PNG", prompt="p", width=8, height=8)
        refused, peak = await _measured(call)
    finally:
        await client.stop()

    assert isinstance(refused, ModelRefused)
    assert f"over the {IMAGE_CAP}-byte cap (once decompressed)" in str(refused)
    assert peak < IMAGE_CAP + 16 * MIB


async def test_a_plain_body_over_the_cap_is_refused_on_the_wire(server: Serve) -> None:
    settings = await server(_gzipped(b" " * (CHAT_CAP + 1), encoding="identity"))

    answer = await _chat(settings)

    assert answer.finish_reason == "oversize"


async def test_an_encoding_not_asked_for_is_refused(server: Serve) -> None:
    settings = await server(_gzipped(b"\x1b\x00\x00", encoding="br"))

    with pytest.raises(ModelRefused, match="came as 'br', not gzip"):
        await _chat(settings)


async def test_a_gzipped_answer_within_the_cap_reads_as_usual(server: Serve) -> None:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Accept-Encoding", ""))
        await request.read()
        body = gzip.compress(json.dumps(COMPLETION).encode())
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=body, headers=headers)

    settings = await server(answer)

    answered = await _chat(settings)

    assert (answered.content, answered.finish_reason) == ('{"ok": true}', "stop")
    assert (answered.input_tokens, answered.output_tokens) == (3, 2)
    assert json.loads(answered.raw) == COMPLETION
    assert seen == ["gzip"]
