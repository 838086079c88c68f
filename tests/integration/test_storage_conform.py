"""The S3 adapter passes the artifact-store suite its fake passes, on the session's bucket of
the stack's S3 (moto); and a read is one GET, whose body is never read when the object is over
the cap."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from planstream.adapters.storage import Storage
from planstream.domain.ids import new_id
from planstream.ports import ObjectMissing, ObjectTooLarge
from planstream.settings import Settings
from tests.conformance.storage import ArtifactStoreContract


class _S3:
    def __init__(self, storage: Storage, bucket: str, session: aiohttp.ClientSession) -> None:
        self.storage = storage
        self.expected_bucket = bucket
        self._session = session

    async def download(self, url: str) -> bytes:
        async with self._session.get(url) as response:
            if response.status == 404:
                raise ObjectMissing(f"GET answered {response.status}")
            response.raise_for_status()
            return await response.read()


@pytest.fixture(scope="module")
async def s3_store(settings: Settings) -> AsyncIterator[_S3]:
    storage = Storage(settings)
    await storage.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            yield _S3(storage, settings.s3_bucket, session)
    finally:
        await storage.stop()


class TestS3Storage(ArtifactStoreContract):
    @pytest.fixture
    def harness(self, s3_store: _S3) -> _S3:
        return s3_store


class _CountingRelay:
    """A loopback TCP relay to the S3 endpoint counting the bytes S3 sends back, with
    backpressure: what the client does not read stays in S3's socket."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.bytes_down = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        for task in (self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True)):
            self._tasks.add(asyncio.ensure_future(task))

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, down: bool
    ) -> None:
        try:
            while data := await source.read(65_536):
                self.bytes_down += len(data) if down else 0
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()


async def test_a_read_is_one_get_whose_body_over_the_cap_is_never_read(
    settings: Settings,
) -> None:
    """16 MiB over a 1 KiB cap: refused from the GET's Content-Length, no HEAD; the relay in
    front of S3 passes a fraction of the body (socket buffers), not the body."""
    endpoint = urlsplit(settings.s3_endpoint or "")
    relay = _CountingRelay(endpoint.hostname or "127.0.0.1", endpoint.port or 80)
    port = await relay.start()
    storage = Storage(settings.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{port}"}))
    await storage.start()
    operations: list[str] = []

    def _count(model: Any, **_: Any) -> None:
        operations.append(str(model.name))

    storage._client.meta.events.register("before-call.s3", _count)
    size, key = 16 * 1024 * 1024, f"conformance/{new_id('art')[4:]}.bin"
    try:
        await storage.write(key, b"\0" * size, "application/octet-stream")
        assert await storage.read(storage.bucket, key, size) == b"\0" * size
        assert operations == ["PutObject", "GetObject"]
        read_in_full = relay.bytes_down
        with pytest.raises(ObjectTooLarge, match=f"has {size} bytes, over the 1024 limit"):
            await storage.read(storage.bucket, key, 1_024)
        assert operations == ["PutObject", "GetObject", "GetObject"]
        assert read_in_full > size
        assert relay.bytes_down - read_in_full < size // 2
    finally:
        await storage.stop()
        await relay.close()
