"""What the services rely on from the artifact store: bytes back as written, a read bounded
before it downloads, a missing object named as such, and signed URLs that reach the object and
whose expiry the store can tell (only for a URL it signed, unaltered, for that object)."""

from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from planstream.domain.errors import PermanentError
from planstream.domain.ids import new_id
from planstream.ports import ArtifactStore, ObjectMissing, ObjectTooLarge

__all__ = ["ArtifactStoreContract", "StorageHarness"]


class StorageHarness(Protocol):
    @property
    def storage(self) -> ArtifactStore: ...

    @property
    def expected_bucket(self) -> str:
        """The bucket the store was configured with."""

    async def download(self, url: str) -> bytes:
        """What a GET of ``url`` returns; ObjectMissing when no object is behind it."""


def _key() -> str:
    return f"conformance/{new_id('art')[4:]}.bin"


class ArtifactStoreContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_the_configured_bucket_is_written(self, harness: StorageHarness) -> None:
        assert harness.storage.bucket == harness.expected_bucket

    async def test_production_keys_have_no_prefix(self, harness: StorageHarness) -> None:
        # store_by_digest puts the prefix in front of every key it records; production's is
        # empty, so a recorded storage_path is the key as written (a replay's store differs).
        assert harness.storage.prefix == ""

    async def test_bytes_read_back_as_written(self, harness: StorageHarness) -> None:
        store, key = harness.storage, _key()
        await store.write(key, b"\x89PNG first", "image/png")
        assert await store.read(store.bucket, key, 1_024) == b"\x89PNG first"
        await store.write(key, b"second", "application/json")
        assert await store.read(store.bucket, key, 1_024) == b"second"

    async def test_a_read_is_bounded(self, harness: StorageHarness) -> None:
        store, key = harness.storage, _key()
        await store.write(key, b"x" * 100, "application/octet-stream")
        assert await store.read(store.bucket, key, 100) == b"x" * 100
        with pytest.raises(ObjectTooLarge) as refused:
            await store.read(store.bucket, key, 99)
        assert isinstance(refused.value, PermanentError)

    async def test_a_missing_object_is_object_missing(self, harness: StorageHarness) -> None:
        store = harness.storage
        with pytest.raises(ObjectMissing) as missing:
            await store.read(store.bucket, _key(), 1_024)
        assert isinstance(missing.value, PermanentError)
        with pytest.raises(ObjectMissing):
            await store.read(f"planstream-none-{new_id('art')[4:14]}", _key(), 1_024)

    async def test_a_signed_url_reaches_the_object(self, harness: StorageHarness) -> None:
        store, key = harness.storage, _key()
        await store.write(key, b"signed bytes", "application/octet-stream")
        url = await store.presign_get(store.bucket, key, 60)
        assert url.startswith(("http://", "https://"))
        assert await harness.download(url) == b"signed bytes"
        nothing = await store.presign_get(store.bucket, _key(), 60)
        with pytest.raises(ObjectMissing):
            await harness.download(nothing)

    async def test_a_signed_url_says_when_it_expires_and_nothing_else_does(
        self, harness: StorageHarness
    ) -> None:
        store, key = harness.storage, _key()
        before = datetime.now(UTC)
        url = await store.presign_get(store.bucket, key, 60)
        until = store.signed_until(url, store.bucket, key)
        assert until is not None
        assert before + timedelta(seconds=55) <= until <= datetime.now(UTC) + timedelta(seconds=65)
        altered = url[:-1] + ("0" if url[-1] != "0" else "1")  # one byte of the signature
        assert store.signed_until(altered, store.bucket, key) is None
        assert store.signed_until(url, store.bucket, _key()) is None  # another object
        assert store.signed_until("http://example.invalid/x", store.bucket, key) is None
