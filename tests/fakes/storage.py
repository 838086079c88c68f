"""Object storage in memory: buckets of bytes, errors as ``adapters/storage.py`` raises them."""

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from planstream.adapters.storage import UploadForm
from planstream.domain.errors import PlanstreamError
from planstream.ports import ObjectMissing, ObjectTooLarge

__all__ = ["FakeStorage", "StoredObject"]

_HOST = "storage.fake.invalid"


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str


class FakeStorage:
    """``Storage`` with buckets in a dict; its own bucket exists from the start."""

    def __init__(
        self, bucket: str = "planstream", clock: Callable[[], datetime] | None = None
    ) -> None:
        self._bucket = bucket
        self._clock = clock or (lambda: datetime.now(UTC))
        self.buckets: dict[str, dict[str, StoredObject]] = {bucket: {}}
        self._signed: dict[str, tuple[str, str]] = {}
        self._expiry: dict[str, datetime] = {}
        self._before_read: list[Callable[[str, str], Awaitable[None]]] = []
        self._failures: list[PlanstreamError] = []

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        """Production's keys start with nothing, as ``Storage``'s do."""
        return ""

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def ensure_bucket(self) -> None:
        self.buckets.setdefault(self._bucket, {})

    async def presign_post(
        self, key: str, content_type: str, max_bytes: int, ttl_s: int
    ) -> UploadForm:
        """A form a client may POST one object with (``put`` stands in for the upload)."""
        url = self._sign("POST", self._bucket, key, ttl_s)
        return UploadForm(url, {"key": key, "Content-Type": content_type})

    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str:
        """A URL that reads one object while it exists (``download`` follows it)."""
        return self._sign("GET", bucket, key, ttl_s)

    def signed_until(self, url: str, bucket: str, key: str) -> datetime | None:
        """When a GET URL this store signed for ``bucket``/``key`` expires; None for any other."""
        if self._signed.get(url) != (bucket, key) or "X-Amz-Method=GET" not in url:
            return None
        return self._expiry[url]

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes, refusing one larger than ``max_bytes`` before reading it."""
        for hook in list(self._before_read):
            await hook(bucket, key)
        if self._failures:
            raise self._failures.pop(0)
        what = f"object {key}"
        found = self.buckets.get(bucket, {}).get(key)
        if found is None:
            raise ObjectMissing(f"{what} does not exist")
        if len(found.data) > max_bytes:
            raise ObjectTooLarge(f"{what} has {len(found.data)} bytes, over the {max_bytes} limit")
        return found.data

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` in the configured bucket."""
        if self._failures:
            raise self._failures.pop(0)
        objects = self.buckets.get(self._bucket)
        if objects is None:
            raise ObjectMissing(f"object {key} does not exist")  # NoSuchBucket, as S3 says it
        objects[key] = StoredObject(bytes(data), content_type)

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "image/png") -> None:
        """Place an object directly, as a client's upload through a presigned POST would."""
        self.buckets.setdefault(bucket, {})[key] = StoredObject(bytes(data), content_type)

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object (a lifecycle rule or an operator did)."""
        self.buckets.get(bucket, {}).pop(key, None)

    def download(self, url: str) -> bytes:
        """What a GET of a presigned URL returns; ObjectMissing if it names no object."""
        bucket, key = self._signed.get(url, ("", ""))
        found = self.buckets.get(bucket, {}).get(key)
        if found is None:
            raise ObjectMissing(f"no object behind {urlsplit(url).path}")
        return found.data

    def before_read(self, hook: Callable[[str, str], Awaitable[None]]) -> None:
        """Run ``hook(bucket, key)`` at the start of every read (to act while work is under way)."""
        self._before_read.append(hook)

    def fail_next(self, error: PlanstreamError) -> None:
        """The next read or write raises ``error`` (a RetryableError is an S3 outage)."""
        self._failures.append(error)

    def _sign(self, method: str, bucket: str, key: str, ttl_s: int) -> str:
        token = secrets.token_hex(8)
        url = (
            f"http://{_HOST}/{quote(bucket)}/{quote(key)}"
            f"?X-Amz-Method={method}&X-Amz-Expires={ttl_s}&X-Amz-Signature={token}"
        )
        self._signed[url] = (bucket, key)
        self._expiry[url] = self._clock() + timedelta(seconds=ttl_s)
        return url
