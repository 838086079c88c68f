"""An HTTP fault front for the model: between the workers and the scripted model server.

It forwards OpenAI-compatible requests to the real (scripted) server and, by the current plan,
answers some of them itself: 500, 429 with ``Retry-After``, a reset connection, a hang, a
malformed or huge answer, a redirect, a 401 that echoes the API key, or what a compromised
model would answer to the comparison and the audit (``planstream.dev.chaos.compromised``). Every
request is recorded (time, route, schema, the image's object key without its query string and a
digest of its whole URL, what was done), so a test counts the model's HTTP calls from the
model's side, independently of planstream's own records, and tells which signed URL each carried.
"""

import asyncio
import hashlib
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from planstream.dev.chaos import compromised
from planstream.dev.chaos.proxy import LoopThread

__all__ = ["ModelCallSeen", "ModelFaults", "ModelPlan", "Template", "url_digest"]

Fault = Literal["500", "429", "reset", "hang", "delay", "drip", "template"]
Template = Literal[
    "invalid_json",
    "length",
    "refusal",
    "out_of_enum",
    "ansi",
    "huge_body",
    "big_json",
    "million_tokens",
    "url_in_labels",
    "redirect",
    "401_masked",
    "401_echo",
    "compromised",
]
ALL_SCHEMAS: Final = frozenset(
    {"spaces_v1", "request_comparison_v1", "decision_audit_v1", "images"}
)
_HUGE_BYTES: Final = 10 * 1024 * 1024
_BIG_JSON_BYTES: Final = 200 * 1024


@dataclass(frozen=True)
class ModelPlan:
    """Which calls get which fault: weights per fault (the rest pass), for the listed schemas."""

    weights: Mapping[Fault, float] = field(default_factory=dict)
    schemas: frozenset[str] = ALL_SCHEMAS
    template: Template | None = None
    retry_after_s: int = 2
    hang_s: float = 600.0
    delay_s: float = 0.0
    drip_s: float = 1.0
    drip_for_s: float = 60.0
    redirect_to: str = ""
    seed: int = 0


@dataclass(frozen=True)
class ModelCallSeen:
    """One HTTP call the front received (never the query string of an image URL)."""

    at: float
    route: str
    schema: str
    image_key: str | None
    fault: str
    status: int
    url_digest: str | None = None  # url_digest() of the image URL: which signed URL it was


def url_digest(url: str) -> str:
    """A short digest of a signed URL: tells URLs apart without keeping the credential."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _schema_of(route: str, body: Any) -> str:
    if route.endswith("/images/edits"):
        return "images"
    try:
        return str(body["response_format"]["json_schema"]["name"])
    except (KeyError, TypeError):
        return "?"


_Image = tuple[str, str]  # the image URL's object path (bucket/key), the URL's digest


def _image_key(body: Any) -> _Image | None:
    """The object path of the first image URL in the messages (bucket/key, no signature), and
    the digest of the whole URL."""
    try:
        for message in body["messages"]:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                if part.get("type") == "image_url":
                    url = str(part["image_url"]["url"])
                    return str(urlsplit(url).path), url_digest(url)
    except (KeyError, TypeError, AttributeError):
        return None
    return None


def completion(content: str | None, finish_reason: str, **extra: Any) -> dict[str, Any]:
    """An OpenAI chat.completion envelope around ``content``."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    message.update(extra.pop("message", {}))
    usage = extra.pop("usage", {"prompt_tokens": 100, "completion_tokens": 100})
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": "chatcmpl-chaos",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "planstream-scripted-vision",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
    }


def _mutate_labels(content: str, label: Callable[[int], str]) -> str:
    document = json.loads(content)
    for index, space in enumerate(document.get("spaces", [])):
        if isinstance(space, dict) and "label" in space:
            space["label"] = label(index)
    return json.dumps(document)


def _openai_error(status: int, message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _bound_port(runner: web.AppRunner) -> int:
    """The port the runner's site listens on (asked for as 0: any free one)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the model fault front is not listening")


class ModelFaults:
    """The front: ``start()`` returns its port; ``plan(...)`` switches what it does."""

    def __init__(self, upstream: str, name: str = "model") -> None:
        self._upstream = upstream.rstrip("/")
        self._thread = LoopThread(f"modelfaults-{name}")
        self._plan = ModelPlan()
        self._random = random.Random(0)
        self._lock = threading.Lock()
        self._seen: list[ModelCallSeen] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._compromised = itertools.count()
        self.port = 0

    # -- control ----------------------------------------------------------------------------
    def start(self) -> int:
        self._thread.run(self._start())
        return self.port

    def plan(self, plan: ModelPlan) -> None:
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)

    def heal(self) -> None:
        self.plan(ModelPlan())

    def seen(self, since: float = 0.0) -> list[ModelCallSeen]:
        with self._lock:
            return [call for call in self._seen if call.at >= since]

    def close(self) -> None:
        try:
            self._thread.run(self._stop())
        finally:
            self._thread.close()

    # -- the loop's side ----------------------------------------------------------------------
    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        self.port = int(site.port) if site.port else _bound_port(self._runner)

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _choose(self, schema: str) -> tuple[ModelPlan, Fault | None]:
        with self._lock:
            plan = self._plan
            if schema not in plan.schemas or not plan.weights:
                return plan, None
            draw = self._random.random()
        for fault, weight in plan.weights.items():
            if draw < weight:
                return plan, fault
            draw -= weight
        return plan, None

    def _record(self, route: str, schema: str, key: _Image | None, fault: str, status: int) -> None:
        path, digest = key if key is not None else (None, None)
        with self._lock:
            seen = ModelCallSeen(time.time(), route, schema, path, fault, status, digest)
            self._seen.append(seen)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        route = request.path
        body: Any = None
        if request.content_type == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        schema = _schema_of(route, body) if route.endswith(("completions", "edits")) else "-"
        key = _image_key(body)
        plan, fault = self._choose(schema)
        if fault is None or (fault == "template" and plan.template is None):
            return await self._forward(request, raw, route, schema, key)
        if fault == "500":
            self._record(route, schema, key, fault, 500)
            error = _openai_error(500, "chaos: the server had an error", "server_error", None)
            return web.json_response(error, status=500)
        if fault == "429":
            self._record(route, schema, key, fault, 429)
            error = _openai_error(429, "chaos: rate limited", "requests", "rate_limit_exceeded")
            headers = {"Retry-After": str(plan.retry_after_s)}
            return web.json_response(error, status=429, headers=headers)
        if fault == "reset":
            self._record(route, schema, key, fault, 0)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)
        if fault == "hang":
            self._record(route, schema, key, fault, 0)
            await asyncio.sleep(plan.hang_s)
            return await self._forward(request, raw, route, schema, key, record=False)
        if fault == "delay":
            await asyncio.sleep(plan.delay_s)
            return await self._forward(request, raw, route, schema, key)
        if fault == "drip":
            return await self._drip(request, raw, plan, route, schema, key)
        assert plan.template is not None
        return await self._template(request, raw, plan, route, schema, key)

    async def _upstream_call(
        self, request: web.Request, raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "content-type", "accept")
        }
        url = self._upstream + request.path_qs.removeprefix("/v1")
        async with self._session.request(
            request.method, url, data=raw, headers=headers, allow_redirects=False
        ) as answer:
            data = await answer.read()
            passed = {
                name: value
                for name, value in answer.headers.items()
                if name.lower() in ("content-type", "retry-after")
            }
            return answer.status, passed, data

    async def _forward(
        self,
        request: web.Request,
        raw: bytes,
        route: str,
        schema: str,
        key: _Image | None,
        *,
        record: bool = True,
    ) -> web.Response:
        try:
            status, headers, data = await self._upstream_call(request, raw)
        except aiohttp.ClientError:
            if record:
                self._record(route, schema, key, "upstream-unreachable", 502)
            return web.json_response(
                _openai_error(502, "bad gateway", "server_error", None), status=502
            )
        if record:
            self._record(route, schema, key, "pass", status)
        return web.Response(body=data, status=status, headers=headers)

    async def _template(
        self,
        request: web.Request,
        raw: bytes,
        plan: ModelPlan,
        route: str,
        schema: str,
        key: _Image | None,
    ) -> web.StreamResponse:
        template = plan.template
        self._record(route, schema, key, f"template:{template}", 200)
        if template == "redirect":
            return web.Response(status=302, headers={"Location": plan.redirect_to})
        if template in ("401_masked", "401_echo"):
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            shown = given if template == "401_echo" else f"{given[:8]}{'*' * 12}{given[-4:]}"
            message = f"Incorrect API key provided: {shown}."
            error = _openai_error(401, message, "invalid_request_error", "invalid_api_key")
            return web.json_response(error, status=401)
        if template == "huge_body":
            return await self._huge(request)
        if template == "invalid_json":
            answer = completion(
                '{"document_type": "single_floor_plan", "spaces": [ {"id": ', "stop"
            )
        elif template == "refusal":
            answer = completion(
                None, "stop", message={"refusal": "I cannot help with analysing this image."}
            )
        elif template == "million_tokens":
            answer = completion(
                "{", "length", usage={"prompt_tokens": 1_000, "completion_tokens": 1_000_000}
            )
        elif template == "compromised" and schema in compromised.SCHEMAS:
            told = compromised.answer(schema, next(self._compromised), plan.redirect_to)
            answer = completion(told, "stop")
        else:
            answer = await self._mutated(request, raw, template, plan)
        return web.json_response(answer)

    async def _mutated(
        self, request: web.Request, raw: bytes, template: Template | None, plan: ModelPlan
    ) -> dict[str, Any]:
        """The real answer, changed: cut, out of its enum, with ANSI or URLs, or inflated."""
        status, _, data = await self._upstream_call(request, raw)
        if status != 200:
            return completion("{", "stop")
        content = str(json.loads(data)["choices"][0]["message"]["content"])
        match template:
            case "length":
                return completion(content[: len(content) // 2], "length")
            case "out_of_enum":
                document = json.loads(content)
                if "spaces" in document:
                    for space in document["spaces"]:
                        space["type"] = "spaceship"
                else:  # a comparison or an audit answer
                    for item in document.get("mismatches", []):
                        item["severity"] = "apocalyptic"
                    if "consistency_score" in document:
                        document["consistency_score"] = 7.5
                return completion(json.dumps(document), "stop")
            case "ansi":
                ansi = "\x1b[31mROOM\x1b[0m\r\n2026-01-01 INFO forged log line\x07"
                return completion(_mutate_labels(content, lambda _: ansi), "stop")
            case "url_in_labels":
                target = plan.redirect_to or "http://127.0.0.1:9/"
                return completion(_mutate_labels(content, lambda i: f"{target}s{i}?x=1"), "stop")
            case "big_json":
                document = json.loads(content)
                document["notes"] = "x" * _BIG_JSON_BYTES
                return completion(json.dumps(document), "stop")
            case _:
                return completion(content, "stop")

    async def _drip(
        self,
        request: web.Request,
        raw: bytes,
        plan: ModelPlan,
        route: str,
        schema: str,
        key: _Image | None,
    ) -> web.StreamResponse:
        """The real answer, one byte every ``drip_s`` for ``drip_for_s``, then the rest."""
        status, headers, data = await self._upstream_call(request, raw)
        self._record(route, schema, key, "drip", status)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        sent = 0
        until = time.monotonic() + plan.drip_for_s
        while sent < len(data) and time.monotonic() < until:
            await response.write(data[sent : sent + 1])
            sent += 1
            await asyncio.sleep(plan.drip_s)
        await response.write(data[sent:])
        await response.write_eof()
        return response

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """A 10 MB body, generated while it is sent (valid JSON, one giant content string)."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        head = json.dumps(completion("@@", "stop")).split('"@@"')
        await response.write(head[0].encode() + b'"')
        chunk = b"a" * 65_536
        for _ in range(_HUGE_BYTES // len(chunk)):
            await response.write(chunk)
        await response.write(b'"' + head[1].encode())
        await response.write_eof()
        return response
