"""The S3 adapter passes the artifact-store suite its fake passes, on the session's bucket of
the stack's S3 (moto)."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from planstream.adapters.storage import Storage
from planstream.ports import ObjectMissing
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
