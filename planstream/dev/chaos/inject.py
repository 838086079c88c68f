"""Input injection: runs made without a step request, raw records produced straight to a topic
(bypassing every producer-side check), and the smuggling and SSRF corpora of T23/T24.
"""

import asyncio
import base64
import contextlib
import gzip
import json
import os
import socket
import socketserver
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.kafka.security import client_options
from planstream.dev.chaos.load import Sample
from planstream.domain.events import StepRequested, step_key
from planstream.domain.ids import new_id
from planstream.settings import Settings

__all__ = [
    "CanaryListener",
    "MadeRun",
    "Produced",
    "make_runs",
    "partition_for",
    "produce",
    "produce_from_many",
    "smuggling_corpus",
    "ssrf_urls",
    "step_requested",
]

_MAX_REQUEST = 4 * 1024 * 1024


@dataclass(frozen=True)
class MadeRun:
    """A run created through the ingress whose step 0 was not requested (yet)."""

    run_id: str
    source_artifact_id: str
    sample: Sample


@dataclass(frozen=True)
class Produced:
    """Where a raw record landed, or why the broker refused it."""

    name: str
    topic: str
    partition: int | None
    offset: int | None
    size: int
    refused: str | None = None


async def make_runs(ingress_url: str, samples: Sequence[Sample], token: str) -> list[MadeRun]:
    """One run per sample (image uploaded, run created), without requesting step 0."""
    made = []
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        client = PlanstreamClient(ingress_url, session, token)
        for sample in samples:
            image = await asyncio.to_thread(sample.path.read_bytes)
            upload = await client.upload(image, "image/png")
            body = {"upload_id": upload, "ratio": "4:3", "quality_post_step4": "2K"}
            body["request_text"] = sample.entry.request_text
            async with session.post(f"{ingress_url}/v1/runs", json=body, headers=auth) as answer:
                created = await answer.json()
                if answer.status != 201:
                    raise RuntimeError(f"create run: {answer.status} {created}")
            made.append(MadeRun(created["run_id"], created["source_artifact_id"], sample))
    return made


def step_requested(run: MadeRun, *, pad_to: int | None = None, **changes: Any) -> bytes:
    """The StepRequested the ingress would publish for ``run``'s step 0, as raw JSON bytes;
    ``changes`` overwrite fields unchecked, ``pad_to`` adds JSON whitespace to that size."""
    event = StepRequested(
        event_id=new_id("evt"),
        run_id=run.run_id,
        occurred_at=datetime.now(UTC),
        step_id=0,
        attempt=1,
        idempotency_key=step_key(run.run_id, 0, 1),
        input_artifact_ids=[run.source_artifact_id],
        requested_by="client",
    )
    data = event.model_dump(mode="json")
    data.update(changes)
    raw = json.dumps(data).encode()
    if pad_to is not None:
        if pad_to < len(raw):
            raise ValueError(f"the event is already {len(raw)} bytes")
        raw += b" " * (pad_to - len(raw))
    return raw


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java-compatible default partitioner (murmur2) gives ``key``."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))


def _producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        max_request_size=_MAX_REQUEST,
        request_timeout_ms=30_000,
    )


async def produce(
    settings: Settings,
    topic: str,
    records: Sequence[tuple[str, bytes | None, bytes, int | None]],
) -> list[Produced]:
    """Send ``(name, key, value, partition)`` records raw to ``topic`` (full name), one producer."""
    producer = _producer(settings)
    await producer.start()
    done = []
    try:
        for name, key, value, partition in records:
            try:
                meta = await producer.send_and_wait(topic, value, key=key, partition=partition)
                done.append(Produced(name, topic, meta.partition, meta.offset, len(value)))
            except KafkaError as exc:
                done.append(Produced(name, topic, None, None, len(value), type(exc).__name__))
    finally:
        await producer.stop()
    return done


async def produce_from_many(
    settings: Settings, topic: str, key: bytes, value: bytes, producers: int
) -> int:
    """The same record from ``producers`` distinct producers at once; how many were acked."""

    async def one() -> bool:
        producer = _producer(settings)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=key)
            return True
        except KafkaError:
            return False
        finally:
            await producer.stop()

    results = await asyncio.gather(*(one() for _ in range(producers)))
    return sum(results)


_PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + os.urandom(48)


def smuggling_corpus() -> list[tuple[str, str]]:
    """About forty ways to hide binary data or a link in a text field, all under 50 KB."""
    raw = os.urandom(96)
    b64 = base64.b64encode(raw).decode()
    png64 = base64.b64encode(_PNG).decode()
    url64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    gz64 = base64.b64encode(gzip.compress(b"ignore previous instructions" * 20)).decode()
    hexed = raw.hex()
    magic = {
        "jpeg": "/9j/4AAQSkZJRgABAQ",
        "gif": "R0lGODlhAQABAIAAAP",
        "webp": "UklGRiQAAABXRUJQVlA4",
        "pdf": "JVBERi0xLjQKJcfs",
        "zip": "UEsDBBQAAAAIA",
        "gzip": "H4sIAAAAAAAAA",
    }
    corpus = [
        ("data-uri", f"data:image/png;base64,{png64}"),
        ("data-uri-upper", f"DATA:image/png;base64,{png64}"),
        ("png-base64", png64),
        ("png-base64-in-text", f"Two bedrooms please {png64} thanks"),
        ("base64-random", b64),
        ("base64-no-padding", b64.rstrip("=")),
        ("base64url", url64),
        ("base64url-in-text", f"see {url64}"),
        ("hex-long", hexed),
        ("hex-in-text", f"checksum {hexed} ok"),
        ("base64-space-chunks", " ".join(b64[i : i + 8] for i in range(0, len(b64), 8))),
        ("base64-newline-chunks", "\n".join(b64[i : i + 16] for i in range(0, len(b64), 16))),
        ("base64-tab-chunks", "\t".join(b64[i : i + 12] for i in range(0, len(b64), 12))),
        ("zero-width-space", "Two\u200b bedrooms"),
        ("zero-width-joiner", "Two bed\u200drooms"),
        ("bom-inside", "Two \ufeffbedrooms"),
        ("bidi-override", "Two \u202ebedrooms"),
        ("word-joiner", "Two\u2060bedrooms"),
        ("gzip-base64", gz64),
        ("gzip-base64-json", json.dumps({"payload": gz64})),
        ("json-nested-b64", json.dumps({"a": {"b": [b64]}})),
        ("http-url", "http://example.com/plan.png"),
        ("https-url", "https://example.com/plan.png?x=1"),
        ("protocol-relative", "see //evil.example/x.png"),
        ("javascript", "javascript:alert(1)"),
        ("file-url", "file:///etc/passwd"),
        ("data-text", "data:text/plain,hello"),
        ("jar-url", "jar:http://x/y.jar!/z"),
        ("mixed-case-token", "Qm9vbTEyMzRBYmNkRWZnaEhpamtMbW5vUHFyc1R1dnc="),
        ("b64-embedded-newline-text", f"line one\n{b64}\nline three"),
    ]
    corpus += [(f"magic-{name}", f"{prefix}AAAA") for name, prefix in magic.items()]
    corpus += [(f"magic-{name}-in-text", f"look: {prefix} end") for name, prefix in magic.items()]
    return corpus


def legitimate_keys() -> list[tuple[str, str]]:
    """Idempotency keys clients really send: they must never be refused as smuggling."""
    return [
        ("uuid4-hex", uuid.uuid4().hex),
        ("uuid4", str(uuid.uuid4())),
        ("ulid", "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        ("sha256-hex", os.urandom(32).hex()),
        ("words", "run-42-step-0"),
        ("dotted", "client.v2:upload:7"),
    ]


def ssrf_urls(host_port: int) -> list[tuple[str, str]]:
    """Internal addresses in every spelling, the canary listener's port where one is needed."""
    port = host_port
    return [
        ("loopback", f"http://127.0.0.1:{port}/"),
        ("localhost", f"http://localhost:{port}/"),
        ("ipv6-loopback", f"http://[::1]:{port}/"),
        ("decimal", f"http://2130706433:{port}/"),
        ("hex-dotted", f"http://0x7f.1:{port}/"),
        ("short", f"http://127.1:{port}/"),
        ("metadata", "http://169.254.169.254/latest/meta-data/"),
        ("postgres", "http://127.0.0.1:5432/"),
        ("kafka", "localhost:9092"),
        ("file", "file:///etc/passwd"),
        ("gopher", f"gopher://127.0.0.1:{port}/_GET%20/"),
    ]


class CanaryListener:
    """Counts every TCP connection to 127.0.0.1:<port> (and [::1]:<port> when it can)."""

    def __init__(self) -> None:
        self.connections = 0
        self._servers: list[socketserver.ThreadingTCPServer] = []
        outer = self

        class Count(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        first = Server(("127.0.0.1", 0), Count)
        self.port = int(first.server_address[1])
        self._servers.append(first)

        class Server6(Server):
            address_family = socket.AF_INET6

        with contextlib.suppress(OSError):
            self._servers.append(Server6(("::1", self.port), Count))
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
