"""Input hygiene at the real ingress's edge: hostile text, identifiers with a tail, JSON that is
ambiguous or not JSON, foreign Host and Origin headers, slow clients and a handler deadline.

The ingress runs alone (no workers) with a short read timeout, so that slow clients are closed
in seconds; a second one has a short handler deadline. Closing is asserted to happen well before
three read timeouts, never at a precise time.
"""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from planstream.dev.chaos.abuse import UNSAFE_TEXTS
from planstream.dev.chaos.attacks import exchange
from planstream.dev.isolation import free_port
from planstream.dev.launcher import ingress, running
from planstream.domain.ids import new_id
from planstream.settings import Settings

READ_TIMEOUT_S = 3.0
APP_ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def edge(settings: Settings, logs: Path) -> Iterator[tuple[str, Settings]]:
    """An ingress that waits 3 s for a request and allows one browser origin besides its own."""
    edge = settings.with_overrides(
        ingress_port=free_port(),
        ingress_read_timeout_s=READ_TIMEOUT_S,
        ingress_allowed_origins=(APP_ORIGIN,),
    )
    with running(edge, [ingress()], logs / "edge"):
        yield f"http://127.0.0.1:{edge.ingress_port}", edge


@pytest.fixture
async def http(user_token: str) -> Any:
    auth = {"Authorization": f"Bearer {user_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=auth) as s:
        yield s


async def _post(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, dict]:
    async with http.post(url, **kwargs) as answer:
        return answer.status, await answer.json(content_type=None)


def _raw(body: str) -> dict[str, Any]:
    """A JSON body sent as these exact bytes (escapes such as \\ud800 left to the server)."""
    return {"data": body.encode(), "headers": {"Content-Type": "application/json"}}


UPLOAD = new_id("upl")


@pytest.mark.parametrize(("text", "named"), UNSAFE_TEXTS)
async def test_request_text_with_an_unsafe_character_is_422_naming_it(
    edge, http, text: str, named: str
) -> None:
    base, _ = edge
    body = f'{{"upload_id": "{UPLOAD}", "request_text": "{text}"}}'
    status, answer = await _post(http, f"{base}/v1/runs", **_raw(body))
    assert (status, answer["field"]) == (422, "request_text"), answer
    assert named in answer["error"]


@pytest.mark.parametrize(("text", "named"), UNSAFE_TEXTS)
async def test_a_review_reason_with_an_unsafe_character_is_422_naming_it(
    edge, operator_token: str, text: str, named: str
) -> None:
    base, _ = edge
    auth = {"Authorization": f"Bearer {operator_token}"}
    body = _raw(f'{{"action": "retry", "reason": "{text}"}}')
    async with aiohttp.ClientSession(headers=auth) as operator:
        status, answer = await _post(operator, f"{base}/v1/runs/{new_id('run')}/review", **body)
    assert (status, answer["field"]) == (422, "reason"), answer
    assert named in answer["error"]


async def test_tab_newline_and_return_are_text(edge, http) -> None:
    base, _ = edge
    body = {"upload_id": UPLOAD, "request_text": "two rooms\tand\r\na bath"}
    status, answer = await _post(http, f"{base}/v1/runs", json=body)
    assert (status, answer["field"]) == (404, "upload_id")  # past the text rules


async def test_ids_with_a_trailing_newline_are_refused(edge, http) -> None:
    base, _ = edge
    async with http.get(f"{base}/v1/runs/{new_id('run')}%0A") as answer:
        assert (answer.status, (await answer.json())["field"]) == (422, "run_id")
    status, answer = await _post(http, f"{base}/v1/runs", json={"upload_id": UPLOAD + "\n"})
    assert (status, answer["field"]) == (422, "upload_id")
    url = f"{base}/v1/runs/{new_id('run')}%0A/steps/0"
    status, answer = await _post(http, url, headers={"Idempotency-Key": "k-1"})
    assert (status, answer["field"]) == (422, "run_id")


async def test_an_idempotency_key_with_a_trailing_newline_never_reaches_the_handler(
    edge, user_token: str
) -> None:
    """HTTP cannot carry a newline in a header value: aiohttp's client refuses to send one, and
    a raw one ends the header line (refused by the server's parser). The key check matches
    whole anyway (tests/unit/test_whole_ids.py)."""
    base, settings = edge
    url = f"{base}/v1/runs/{new_id('run')}/steps/0"
    with pytest.raises(ValueError, match="control character"):
        async with aiohttp.ClientSession() as http:
            await http.post(url, headers={"Idempotency-Key": "k\n"})
    request = (
        f"POST /v1/runs/{new_id('run')}/steps/0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {user_token}\r\nContent-Length: 0\r\n"
        "Idempotency-Key: k-1\n\r\n\r\n"
    )
    head = await _exchange(settings.ingress_port, request.encode())
    assert not head.startswith((b"HTTP/1.1 2", b"HTTP/1.1 5")), head[:200]


@pytest.mark.parametrize(
    ("body", "phrase", "field"),
    [
        ('{"content_type": "image/png", "content_type": "image/png"}', "twice", "content_type"),
        ('{"content_type": "image/png", "size": NaN}', "NaN", None),
        ('{"content_type": "image/png", "size": Infinity}', "Infinity", None),
        ('{"content_type": "image/png", "size": -Infinity}', "-Infinity", None),
        ('{"content_type": "image/png", "size": 1e999}', "out of range", None),
        ('{"content_type": "image/png",}', "not JSON", None),
    ],
)
async def test_ambiguous_or_invalid_json_is_422(edge, http, body, phrase, field) -> None:
    base, _ = edge
    status, answer = await _post(http, f"{base}/v1/uploads", **_raw(body))
    assert status == 422, answer
    assert phrase in answer["error"]
    assert answer["field"] == field


async def test_a_body_that_is_not_utf8_is_422(edge, http) -> None:
    base, _ = edge
    raw = b'{"content_type": "image/png", "note": "\xff\xfe"}'
    headers = {"Content-Type": "application/json"}
    status, answer = await _post(http, f"{base}/v1/uploads", data=raw, headers=headers)
    assert status == 422
    assert "not valid UTF-8 (byte 0xff" in answer["error"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
    ],
)
async def test_a_body_that_is_not_application_json_is_415(edge, http, content_type) -> None:
    base, _ = edge
    body = json.dumps({"content_type": "image/png"}).encode()
    headers = {"Content-Type": content_type}
    status, answer = await _post(http, f"{base}/v1/uploads", data=body, headers=headers)
    assert status == 415, answer
    assert "application/json" in answer["error"]


async def test_application_json_with_charset_utf8_is_read(edge, http) -> None:
    base, _ = edge
    body = json.dumps({"content_type": "image/png"}).encode()
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    status, answer = await _post(http, f"{base}/v1/uploads", data=body, headers=headers)
    assert status == 201, answer


async def test_a_host_not_allowed_is_421_and_healthz_answers_any_host(edge, http) -> None:
    base, settings = edge
    for host in ("evil.example", f"evil.example:{settings.ingress_port}", "127.0.0.2"):
        status, answer = await _post(
            http, f"{base}/v1/uploads", json={"content_type": "image/png"}, headers={"Host": host}
        )
        assert status == 421, (host, answer)
        assert "Host" in answer["error"]
    async with http.get(f"{base}/healthz", headers={"Host": "evil.example"}) as answer:
        assert answer.status == 200
    status, _ = await _post(
        http,
        f"{base}/v1/uploads",
        json={"content_type": "image/png"},
        headers={"Host": f"LOCALHOST:{settings.ingress_port}"},
    )
    assert status == 201


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:1"])
async def test_a_foreign_origin_is_403(edge, http, origin: str) -> None:
    base, _ = edge
    status, answer = await _post(
        http, f"{base}/v1/uploads", json={"content_type": "image/png"}, headers={"Origin": origin}
    )
    assert status == 403, answer
    assert "Origin" in answer["error"]


async def test_the_same_origin_and_an_allowed_one_pass(edge, http) -> None:
    base, _ = edge
    for origin in (base, APP_ORIGIN):
        status, answer = await _post(
            http,
            f"{base}/v1/uploads",
            json={"content_type": "image/png"},
            headers={"Origin": origin},
        )
        assert status == 201, (origin, answer)


# --- slow clients ---------------------------------------------------------------------------


async def _exchange(port: int, request: bytes, trickle: bytes = b"", every_s: float = 2.0) -> bytes:
    """Send ``request``, then ``trickle`` a byte every ``every_s``; everything the server sends
    until it closes the connection. AssertionError if it is still open after three read
    timeouts (the trickle alone would take far longer)."""
    received = await exchange(
        port, request, trickle=trickle, every_s=every_s, give_up_s=3 * READ_TIMEOUT_S + 10
    )
    assert received is not None, "the connection is still open"
    return received


async def test_slow_headers_are_closed_without_an_answer(edge) -> None:
    _, settings = edge
    start = f"POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{settings.ingress_port}\r\n".encode()
    received = await _exchange(settings.ingress_port, start, trickle=b"X-Slow: " + b"a" * 40)
    assert received == b""


async def test_an_idle_connection_is_closed(edge) -> None:
    _, settings = edge
    assert await _exchange(settings.ingress_port, b"") == b""


async def test_a_slow_body_is_answered_408_and_closed(edge, user_token: str) -> None:
    _, settings = edge
    body = json.dumps({"content_type": "image/png"}).encode()
    head = (
        f"POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{settings.ingress_port}\r\n"
        f"Authorization: Bearer {user_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    received = await _exchange(settings.ingress_port, head, trickle=body)
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"did not arrive within 3 s" in received
    assert b"Connection: close" in received


@pytest.fixture(scope="module")
def hurried(settings: Settings, logs: Path) -> Iterator[Settings]:
    """An ingress whose handlers have 1 s (and clients the default 10 s to send a request)."""
    hurried = settings.with_overrides(ingress_port=free_port(), ingress_handler_timeout_s=1.0)
    with running(hurried, [ingress()], logs / "hurried"):
        yield hurried


async def test_a_handler_past_its_deadline_is_503(hurried: Settings, user_token: str) -> None:
    # The body never comes: the handler waits for it, inside the deadline (1 s) and well inside
    # the read timeout (10 s), so the deadline answers.
    request = (
        f"POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {user_token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 30\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", hurried.ingress_port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(30):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answer = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 503"), head
    assert "1 s deadline" in answer["error"]
