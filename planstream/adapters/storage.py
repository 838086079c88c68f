"""Object storage through aioboto3: presigned URLs and bounded reads and writes."""

import logging
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from planstream.domain.errors import PermanentError, RetryableError
from planstream.ports import ObjectMissing, ObjectTooLarge
from planstream.settings import Settings

__all__ = ["Storage"]

log = logging.getLogger(__name__)

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _MISSING_CODES:
            return ObjectMissing(f"{what} does not exist")
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "Throttling"):
            return RetryableError(f"storage answered {code or status} for {what}")
        return PermanentError(f"storage refused {what}: {code or status}")
    return RetryableError(f"storage unreachable for {what}: {type(exc).__name__}")


class Storage:
    """One S3 client, opened by ``start`` and closed by ``stop`` (a service's hooks)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def bucket(self) -> str:
        return self._settings.s3_bucket

    async def start(self) -> None:
        s = self._settings
        session = aioboto3.Session(
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key,
            region_name=s.s3_region,
        )
        config = Config(
            connect_timeout=s.s3_timeout_s,
            read_timeout=s.s3_timeout_s,
            retries={"max_attempts": 1, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path"},
        )
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=s.s3_endpoint, config=config)
        )

    async def stop(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> str:
        """A URL a client may PUT one object to, for ``ttl_s`` seconds."""
        url: str = await self._client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=ttl_s,
        )
        return url

    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str:
        """A short-lived URL to read one object (a bearer credential: never log it)."""
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl_s
        )
        return url

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes, refusing one larger than ``max_bytes`` before downloading it."""
        what = f"object {key}"
        try:
            head = await self._client.head_object(Bucket=bucket, Key=key)
            size = int(head["ContentLength"])
            if size > max_bytes:
                raise ObjectTooLarge(f"{what} has {size} bytes, over the {max_bytes} limit")
            response = await self._client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, what) from None
        return data

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` in the configured bucket."""
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, f"object {key}") from None

    async def ensure_bucket(self) -> None:
        """Create the configured bucket if it does not exist."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.bucket)
