"""The local S3: moto on loopback (it keeps objects in memory only), served with keep-alive
by ``planstream.dev.stack.s3_server``."""

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.util import find_spec
from typing import Any, Final

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from planstream.dev.stack.processes import Launch
from planstream.dev.stack.service import Service, ServiceDown, StackError, reason

__all__ = ["S3"]

logger = logging.getLogger(__name__)

_PROBE_CONFIG: Final = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
_PROBE_ERRORS: Final = (BotoCoreError, ClientError, OSError, TimeoutError)
# What moto[server] installs, and uvicorn, which serves it with keep-alive (the local extra).
_SERVER_PACKAGES: Final = ("moto", "flask", "flask_cors", "uvicorn")


class S3(Service):
    """moto's S3 on 127.0.0.1:s3_port (``planstream.dev.stack.s3_server``), with the settings'
    bucket created."""

    name = "s3"

    def address(self) -> str:
        """The endpoint and the bucket."""
        endpoint = self.settings.s3_endpoint or "the default AWS endpoint"
        return f"{endpoint} (bucket {self.settings.s3_bucket})"

    def ports(self) -> tuple[tuple[str, int], ...]:
        """moto's port on loopback."""
        return (("127.0.0.1", self.settings.s3_port),)

    def missing_prerequisite(self) -> str | None:
        """moto with its server extra, importable by the Python running planstream."""
        if all(find_spec(package) is not None for package in _SERVER_PACKAGES):
            return None
        return (
            f"The local S3 needs moto's server and uvicorn in {sys.executable}: "
            "pip install 'moto[server]' uvicorn (make setup installs them with the 'local' extra)."
        )

    def launch(self) -> Launch:
        """moto's S3-compatible application in the Python running planstream, under uvicorn
        (``python -m moto.server`` closes the connection after every request)."""
        argv = [
            sys.executable,
            "-m",
            "planstream.dev.stack.s3_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.settings.s3_port),
        ]
        return Launch(argv, cwd=self.files.folder)

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        """An S3 client for the settings' endpoint and keys, failing fast (one attempt)."""
        session = aioboto3.Session()
        async with session.client(
            "s3",
            endpoint_url=self.settings.s3_endpoint,
            region_name=self.settings.s3_region,
            aws_access_key_id=self.settings.s3_access_key_id,
            aws_secret_access_key=self.settings.s3_secret_access_key,
            config=_PROBE_CONFIG,
        ) as client:
            yield client

    async def ready(self) -> None:
        """The server we started lists its buckets."""
        try:
            async with self._client() as client:
                await client.list_buckets()
        except _PROBE_ERRORS as exc:
            raise ServiceDown(
                f"no bucket listing from {self.settings.s3_endpoint}: {reason(exc)}"
            ) from exc

    async def provision(self) -> None:
        """Create the settings' bucket when it is missing."""
        bucket, region = self.settings.s3_bucket, self.settings.s3_region
        # us-east-1 is the one region that refuses an explicit location constraint.
        placement = {} if region == "us-east-1" else {"LocationConstraint": region}
        try:
            async with self._client() as client:
                listing = await client.list_buckets()
                if any(entry["Name"] == bucket for entry in listing.get("Buckets", [])):
                    return
                logger.info("s3: creating bucket %s", bucket)
                if placement:
                    await client.create_bucket(Bucket=bucket, CreateBucketConfiguration=placement)
                else:
                    await client.create_bucket(Bucket=bucket)
        except _PROBE_ERRORS as exc:
            raise StackError(f"could not create bucket {bucket}: {reason(exc)}") from exc

    async def healthy(self) -> None:
        """The settings' bucket answers HEAD with the settings' keys."""
        try:
            async with self._client() as client:
                await client.head_bucket(Bucket=self.settings.s3_bucket)
        except _PROBE_ERRORS as exc:
            raise ServiceDown(
                f"bucket {self.settings.s3_bucket} did not answer HEAD: {reason(exc)}"
            ) from exc
