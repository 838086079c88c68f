"""The harness's own parts, without the stack: the TCP fault proxy, the model fault front, the
rig's process control and the report's folding. Fast; they run first in ``make chaos``."""

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from planstream.dev.chaos.modelfaults import ModelFaults, ModelPlan
from planstream.dev.chaos.profiles import FULL, SHORT, current
from planstream.dev.chaos.proxy import FaultProxy
from planstream.dev.chaos.report import Result, append, build_report, read
from planstream.dev.chaos.rig import Rig, cleanup, log_says


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _roundtrip(port: int, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), 5)
    finally:
        writer.close()


async def test_proxy_passes_refuses_and_heals() -> None:
    server, port = await _echo_server()
    proxy = FaultProxy("127.0.0.1", port, "echo")
    try:
        front = await asyncio.to_thread(proxy.start)
        assert await _roundtrip(front) == b"ping"
        await asyncio.to_thread(proxy.set, "down")
        with pytest.raises(OSError):
            await _roundtrip(front)
        await asyncio.to_thread(proxy.heal)
        assert await _roundtrip(front) == b"ping"
        await asyncio.to_thread(proxy.set, "reset", reset_fraction=1.0)
        with pytest.raises((OSError, asyncio.IncompleteReadError)):
            answer = await _roundtrip(front)
            if not answer:
                raise ConnectionResetError("closed")
        await asyncio.to_thread(proxy.set, "blackhole")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_roundtrip(front), 1.0)
        assert proxy.connections >= 4
    finally:
        await asyncio.to_thread(proxy.close)
        server.close()
        await server.wait_closed()


async def test_model_front_forwards_throttles_and_rewrites() -> None:
    async def chat(request: web.Request) -> web.Response:
        content = json.dumps({"document_type": "single_floor_plan", "spaces": [{"label": "BED"}]})
        return web.json_response({"choices": [{"message": {"content": content}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream = runner.addresses[0][1]
    front = ModelFaults(f"http://127.0.0.1:{upstream}/v1", "unit")
    body = {
        "response_format": {"json_schema": {"name": "spaces_v1"}},
        "messages": [
            {
                "content": [
                    {"type": "image_url", "image_url": {"url": "http://x/b/k?X-Amz-Signature=s"}}
                ]
            }
        ],
    }
    try:
        port = await asyncio.to_thread(front.start)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=body) as answer:
                assert answer.status == 200
            front.plan(ModelPlan(weights={"429": 1.0}, retry_after_s=2))
            async with session.post(url, json=body) as answer:
                assert answer.status == 429 and answer.headers["Retry-After"] == "2"
            front.plan(ModelPlan(weights={"template": 1.0}, template="ansi"))
            async with session.post(url, json=body) as answer:
                label = json.loads((await answer.json())["choices"][0]["message"]["content"])
                assert "\x1b[31m" in label["spaces"][0]["label"]
        seen = front.seen()
        assert [c.fault for c in seen] == ["pass", "429", "template:ansi"]
        assert all(c.image_key == "/b/k" and c.schema == "spaces_v1" for c in seen)  # no query
    finally:
        await asyncio.to_thread(front.close)
        await runner.cleanup()


def test_rig_starts_kills_pauses_and_cleans_up(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    code = "import time, sys; print('up', flush=True); time.sleep(60)"
    proc = rig.start(
        "sleeper", [sys.executable, "-c", code], {}, ready=log_says("up"), timeout_s=30
    )
    assert (tmp_path / "run" / "sleeper.pid").exists()
    rig.pause("sleeper")
    rig.resume("sleeper")
    assert rig.kill("sleeper") == -signal.SIGKILL
    assert not (tmp_path / "run" / "sleeper.pid").exists()
    rig.restart("sleeper", ready=log_says("up"), timeout_s=30)
    assert proc.starts == 1 and rig.procs["sleeper"].starts == 2
    assert cleanup(tmp_path) == [rig.procs["sleeper"].pid]
    assert rig.wait_exit("sleeper", 10) == -signal.SIGKILL


def test_report_folds_repeats_and_keeps_failures(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    for repeat, verdict in ((1, "PASS"), (2, "FAIL")):
        result = Result("T01", "kill", "crash", "short", 7, repeat, runs_started=5, runs_terminal=5)
        result.verdict = verdict
        result.max_attempts = repeat + 1
        result.violations = [] if verdict == "PASS" else ["lost_steps=1"]
        append(results, result)
    text, data = build_report(read(results), profile="short", commit="abc+dirty")
    row = data["tests"][0]
    assert (row["repeats"], row["runs_started"], row["max_attempts"], row["verdict"]) == (
        2,
        10,
        3,
        "FAIL",
    )
    assert "| T01 kill | crash | 2 | 10 | 10 (100%) |" in text and "abc+dirty" in text


def test_profiles_keep_every_timeout_inside_the_lease() -> None:
    for profile in (SHORT, FULL):
        assert 3 * (profile.model_timeout_s + profile.model_retry_after_cap_s) < profile.lease_s
    assert current({}) is SHORT and current({"PLANSTREAM_CHAOS_PROFILE": "full"}) is FULL
    with pytest.raises(ValueError):
        current({"PLANSTREAM_CHAOS_PROFILE": "nightly"})
