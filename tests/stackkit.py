"""Helpers over the real local stack: isolated settings, subprocess services, topic reads."""

import asyncio
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple

from planstream.adapters.kafka import read_all
from planstream.settings import Settings
from topics import TopicSpec

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_settings(base: Settings) -> Settings:
    """Settings with a topic namespace, database, bucket and app ids of this test session."""
    tag = uuid.uuid4().hex[:10]
    dsn = base.dsn.rsplit("/", 1)[0] + f"/planstream_t{tag}"
    return base.with_overrides(
        topic_namespace=f"t{tag}.",
        app_id_suffix=f"-t{tag}",
        s3_bucket=f"planstream-t{tag}",
        postgres_dsn=dsn,
        ingress_port=free_port(),
        broker_commit_interval_s=0.2,
        # A hung model call is abandoned after 3 s, well inside the 60 s lease.
        model_timeout_s=3.0,
        model_retry_after_cap_s=5.0,
        lease_s=60,
        sweeper_interval_s=1.0,
    )


def planstream(*args: str) -> list[str]:
    return [sys.executable, "-m", "planstream.cli", *args]


class Record(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int
    offset: int


async def read_topic(settings: Settings, spec: TopicSpec) -> list[Record]:
    """Every message now on the topic, from its first offset."""
    records = await read_all(settings, spec.full_name(settings.topic_namespace))
    return [Record(r.key, r.value, list(r.headers), r.partition, r.offset) for r in records]


async def wait_for(predicate, timeout_s: float = 60, interval_s: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
