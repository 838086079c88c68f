"""An isolated place for one benchmark run: its database, bucket, topic namespaces and files.

Like the integration tests, every run gets a tag (``planstream.dev.isolation``); the database
``planstream_<tag>``, the bucket ``planstream-<tag>``, topics under ``<tag>-<name>.`` and Faust app
ids ending ``-<tag>-<name>`` are its own, and ``close`` drops them all.
"""

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import aioboto3
from aiokafka.admin import AIOKafkaAdminClient

from planstream.adapters.kafka import ensure_topics
from planstream.adapters.kafka.security import client_options
from planstream.adapters.postgres.db import migrate
from planstream.adapters.storage import Storage
from planstream.dev.isolation import (
    create_database,
    database_name,
    drop_database,
    isolated,
    new_tag,
)
from planstream.settings import Settings

__all__ = ["Workspace", "open_workspace"]

log = logging.getLogger(__name__)


class Workspace:
    """The run's isolated settings and what to drop at the end."""

    def __init__(self, base: Settings, tag: str, folder: Path) -> None:
        self.tag = tag
        self.folder = folder
        self.base = base
        self.settings = isolated(base, tag, model_samples_dir=folder / "samples")
        self.database = database_name(self.settings)
        self.logs = folder / "logs"

    def namespaced(self, name: str, **overrides: Any) -> Settings:
        """Settings whose topics and Faust app ids belong to ``name`` within this run."""
        return self.settings.with_overrides(
            topic_namespace=f"{self.tag}-{name}.", app_id_suffix=f"-{self.tag}-{name}", **overrides
        )

    async def topics(self, settings: Settings) -> None:
        """Create the catalogue's topics in ``settings``' namespace."""
        await ensure_topics(settings)

    async def _create(self) -> None:
        await create_database(self.base.dsn, self.database, timeout_s=10)
        await migrate(self.settings.dsn)
        storage = Storage(self.settings)
        await storage.start()
        try:
            await storage.ensure_bucket()
        finally:
            await storage.stop()

    async def close(self, keep_files: bool = False) -> None:
        """Drop the database, the bucket, the topics and the Faust data folders of this run."""
        for step in (self._drop_database, self._drop_bucket, self._drop_topics):
            try:
                await step()
            except Exception:
                log.exception("benchmark clean-up step %s failed", step.__name__)
        # Where planstream.adapters.faust.app puts Faust's data folders.
        for folder in (self.settings.work_dir / "faust").glob(f"planstream-*-{self.tag}*-data"):
            shutil.rmtree(folder, ignore_errors=True)
        if not keep_files:
            shutil.rmtree(self.folder, ignore_errors=True)

    async def _drop_database(self) -> None:
        await drop_database(self.base.dsn, self.database, timeout_s=10)

    async def _drop_bucket(self) -> None:
        s = self.settings
        session = aioboto3.Session(
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key,
            region_name=s.s3_region,
        )
        async with session.client("s3", endpoint_url=s.s3_endpoint) as s3:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=s.s3_bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    await s3.delete_objects(Bucket=s.s3_bucket, Delete={"Objects": keys})
            await s3.delete_bucket(Bucket=s.s3_bucket)

    async def _drop_topics(self) -> None:
        admin = AIOKafkaAdminClient(**client_options(self.settings), request_timeout_ms=30_000)
        await admin.start()
        try:
            # Ours: namespaced topics, and Faust's changelogs named after our app ids.
            ours = [name for name in await admin.list_topics() if self.tag in name]
            for start in range(0, len(ours), 50):
                await admin.delete_topics(ours[start : start + 50])
        finally:
            await admin.close()


async def open_workspace(base: Settings, root: Path) -> Workspace:
    """A new tagged workspace under ``root`` with its database migrated and bucket created."""
    tag = new_tag("b")
    folder = (root / tag).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(base, tag, folder)
    try:
        await workspace._create()
    except BaseException:
        await asyncio.shield(workspace.close())
        raise
    return workspace
