"""Object storage through aioboto3: presigned upload forms and GET URLs, bounded reads, writes.

An upload is a presigned POST whose policy fixes the key, the exact content type and a size of
1 to ``max_upload_bytes``, for ``upload_url_ttl_s``: S3 refuses anything else. Not every
S3-compatible store checks a POST policy (moto, the local stack's, does not), so a read is
bounded on its own as well, in one request: by the GET's ``Content-Length`` before a byte of the
body is read (an object over the cap is refused and its connection closed unread), then by
counting the body while it streams.
"""

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from planstream.adapters.presigned import signed_until
from planstream.domain.errors import PermanentError, RetryableError
from planstream.ports import ObjectMissing, ObjectTooLarge
from planstream.settings import Settings

__all__ = ["Storage", "UploadForm", "client_config"]

log = logging.getLogger(__name__)

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})
_CHUNK_BYTES: Final = 256 * 1024


@dataclass(frozen=True)
class UploadForm:
    """Where and how a client uploads one object: a multipart POST of ``fields`` (in order),
    then the file. The fields carry the signed policy: a bearer credential, never logged."""

    url: str
    fields: dict[str, str]


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


def client_config(settings: Settings) -> Config:
    """The S3 client's configuration: one try per call (the services retry), the timeouts,
    SigV4 and path-style addressing (which MinIO and moto need)."""
    return Config(
        connect_timeout=settings.s3_timeout_s,
        read_timeout=settings.s3_timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
        signature_version="s3v4",
        s3={"addressing_style": "path"},
    )


class Storage:
    """One S3 client, opened by ``start`` and closed by ``stop`` (a service's hooks)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def bucket(self) -> str:
        return self._settings.s3_bucket

    @property
    def prefix(self) -> str:
        """Production's keys start with nothing (a replay's store says ``replays/<id>/``)."""
        return ""

    async def start(self) -> None:
        s = self._settings
        session = aioboto3.Session(
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key,
            region_name=s.s3_region,
        )
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=s.s3_endpoint, config=client_config(s))
        )

    async def stop(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def presign_post(
        self, key: str, content_type: str, max_bytes: int, ttl_s: int
    ) -> UploadForm:
        """A form a client may POST one object with, for ``ttl_s`` seconds; its policy fixes
        ``key`` (boto adds the bucket and the exact key), ``content_type`` exactly, and a size
        of 1 to ``max_bytes`` bytes."""
        form = await self._client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=ttl_s,
        )
        fields = {str(name): str(value) for name, value in form["fields"].items()}
        return UploadForm(url=str(form["url"]), fields=fields)

    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str:
        """A short-lived URL to read one object (a bearer credential: never log it)."""
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl_s
        )
        return url

    def signed_until(self, url: str, bucket: str, key: str) -> datetime | None:
        """When ``url`` stops working, if this store's key signed it for ``bucket``/``key``
        and nobody altered it (``planstream.adapters.presigned``); else None."""
        s = self._settings
        if not (s.s3_access_key_id and s.s3_secret_access_key):
            return None  # ambient credentials (a workload identity): never reuse, mint again
        return signed_until(
            url,
            endpoint=s.s3_endpoint,
            bucket=bucket,
            key=key,
            access_key_id=s.s3_access_key_id,
            secret_access_key=s.s3_secret_access_key,
            region=s.s3_region,
        )

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes from one GET, refusing one larger than ``max_bytes`` from its
        ``Content-Length`` before reading the body, and again while the body streams if it
        is longer than declared (never more is held)."""
        what = f"object {key}"
        try:
            response = await self._client.get_object(Bucket=bucket, Key=key)
            return await _bounded(response, max_bytes, what)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, what) from None

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` in the configured bucket."""
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, f"object {key}") from None

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix`` (a purged replay's
        ``replays/<id>/``); how many were deleted. An empty prefix is refused: it is the bucket."""
        if not prefix.strip("/"):
            raise ValueError("delete_prefix needs a prefix: an empty one is the whole bucket")
        deleted = 0
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    await self._client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
                    deleted += len(keys)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, f"objects under {prefix}") from None
        return deleted

    async def ensure_bucket(self) -> None:
        """Create the configured bucket if it does not exist."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.bucket)


async def _bounded(response: dict[str, Any], max_bytes: int, what: str) -> bytes:
    """The body of a GetObject ``response``, refused unread when its declared length is over
    ``max_bytes``, else read in chunks and refused past ``max_bytes`` (aiobotocore never
    decompresses a body, so what is counted is what is held)."""
    body = response["Body"]  # a StreamingBody; leaving ``async with`` with the body unread
    async with body:  # closes its connection instead of returning it to the pool
        declared = int(response.get("ContentLength") or 0)
        if declared > max_bytes:
            raise ObjectTooLarge(f"{what} has {declared} bytes, over the {max_bytes} limit")
        data = bytearray()
        async for chunk in body.iter_chunks(_CHUNK_BYTES):
            data += chunk
            if len(data) > max_bytes:
                raise ObjectTooLarge(f"{what} grew past the {max_bytes}-byte limit while read")
    return bytes(data)
