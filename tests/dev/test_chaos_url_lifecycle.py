"""T25's checkers on broken histories that must fail them, and the S3 gate against an in-process
stand-in for moto (which, like moto, serves every presigned URL): the gate refuses an expired,
an altered and a re-pointed URL as S3 does, and passes everything else on unchanged."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from botocore.config import Config

from planstream.dev.chaos.modelfaults import ModelCallSeen
from planstream.dev.chaos.s3gate import S3Gate
from planstream.dev.chaos.url_lifecycle import (
    Planted,
    UrlRun,
    control_void,
    stale_urls_given,
    url_steps_failed,
    window_missed,
)

SECRET = "aws-canary-gate-test"
KEY = "/b/runs/r1/step-0.png"


def _call(at: float, digest: str, fault: str, key: str = KEY) -> ModelCallSeen:
    return ModelCallSeen(at, "/v1/chat/completions", "spaces_v1", key, fault, 200, digest)


def test_the_control_is_void_unless_s3_refuses_as_s3_does() -> None:
    s3 = {"fresh": 200, "expired": 403, "tampered": 403, "other_key": 403}
    assert control_void(s3).value == 0
    moto = {"fresh": 200, "expired": 200, "tampered": 200, "other_key": 200}
    assert control_void(moto).value == 3
    assert control_void({**s3, "fresh": 403}).value == 1  # a gate that refuses everything


def test_a_planted_url_sent_to_the_model_is_counted() -> None:
    planted = [
        Planted("expired", "r1", KEY, "d-expired", 0),
        Planted("tampered", "r2", KEY, "d-tampered", 0),
        Planted("window", "r3", KEY, "d-window", 100.0),
    ]
    clean = [_call(50, "d-window", "pass"), _call(101, "d-fresh", "pass")]
    assert stale_urls_given(clean, planted).value == 0
    broken = [*clean, _call(10, "d-tampered", "429"), _call(101, "d-window", "pass")]
    found = stale_urls_given(broken, planted)
    assert found.value == 2 and found.evidence[0].startswith("tampered URL of r2")


def test_a_window_is_missed_unless_held_then_followed_by_a_fresh_url() -> None:
    window = Planted("window", "r3", KEY, "d-window", 100.0)
    staged = [
        _call(90, "d-window", "429"),
        _call(96, "d-fresh", "429"),
        _call(101, "d-fresh", "pass"),
    ]
    assert window_missed(staged, window).value == 0
    never_held = [_call(90, "d-fresh", "429"), _call(101, "d-fresh", "pass")]
    assert window_missed(never_held, window).value == 1
    stale_after = [_call(90, "d-window", "429"), _call(101, "d-window", "pass")]
    assert window_missed(stale_after, window).value == 1
    other_image = [_call(90, "d-window", "429"), _call(101, "d-x", "pass", key="/b/other.png")]
    assert window_missed(other_image, window).value == 1


def test_a_step_that_failed_or_needed_another_attempt_is_counted() -> None:
    runs = [
        UrlRun("r1", "proceed", 1, 0),
        UrlRun("r2", "retry", 2, 1),  # the model could not download: refused, then retried
        UrlRun("r3", None, 1, 0),  # step 0 never decided
        UrlRun("r4", "proceed", 1, 1),  # a later step's audit could not download its render
        UrlRun("r5", "proceed", 2, 0),
    ]
    assert url_steps_failed(runs).value == 4


@pytest.fixture
async def gate() -> AsyncIterator[tuple[S3Gate, list[str]]]:
    """The gate in front of a server that, like moto, answers 200 to everything."""
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.rel_url.path}")
        return web.Response(body=b"object bytes", content_type="image/png")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream = f"http://127.0.0.1:{runner.addresses[0][1]}"
    proxy = S3Gate(upstream, SECRET, name="test")
    await asyncio.to_thread(proxy.start)
    try:
        yield proxy, seen
    finally:
        await asyncio.to_thread(proxy.close)
        await runner.cleanup()


def _client(port: int, secret: str = SECRET) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="chaos-test",
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


async def test_the_gate_refuses_what_s3_refuses(gate: tuple[S3Gate, list[str]]) -> None:
    proxy, seen = gate
    client = _client(proxy.port)

    def get(key: str, expires_s: int = 60, **kw: Any) -> str:
        url: str = (kw.get("client") or client).generate_presigned_url(
            "get_object", Params={"Bucket": "b", "Key": key}, ExpiresIn=expires_s
        )
        return url

    fresh, short = get("runs/r1/step-0.png"), get("runs/r1/step-0.png", 1)
    put = client.generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "up/1", "ContentType": "image/png"}
    )
    began = time.time()
    async with aiohttp.ClientSession() as session:

        async def status(method: str, url: str, **kw: Any) -> int:
            async with session.request(method, url, **kw) as answer:
                await answer.read()
                return answer.status

        assert await status("GET", fresh) == 200
        assert await status("GET", fresh[:-1] + ("0" if fresh[-1] != "0" else "1")) == 403
        assert await status("GET", fresh.replace("step-0", "step-1")) == 403
        assert await status("GET", get("k", client=_client(proxy.port, "rotated"))) == 403
        assert await status("PUT", put, data=b"x", headers={"Content-Type": "image/png"}) == 200
        assert await status("PUT", put, data=b"x", headers={"Content-Type": "text/html"}) == 403
        assert await status("GET", f"http://127.0.0.1:{proxy.port}/b/plain") == 200  # no query
        await asyncio.sleep(max(0.0, began + 2.1 - time.time()))
        assert await status("GET", short) == 403
    codes = [r.code for r in proxy.refusals()]
    assert codes == ["SignatureDoesNotMatch"] * 4 + ["AccessDenied"]
    assert proxy.presigned_served == 2
    assert seen == ["GET /b/runs/r1/step-0.png", "PUT /b/up/1", "GET /b/plain"]
