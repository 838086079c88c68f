"""Helpers over the real local stack: the test session's isolated settings, topic reads, polling.

Services run as subprocesses through ``planstream.dev.launcher`` (see ``tests/conftest.py``).
"""

import asyncio
import time
from pathlib import Path
from typing import NamedTuple

from planstream.adapters.kafka import read_all
from planstream.dev.isolation import free_port, isolated, new_tag
from planstream.settings import Settings
from topics import TopicSpec

ROOT = Path(__file__).resolve().parents[1]


def isolated_settings(base: Settings) -> Settings:
    """Settings with a topic namespace, database, bucket and app ids of this test session."""
    return isolated(
        base,
        new_tag("t"),
        ingress_port=free_port(),
        broker_commit_interval_s=0.2,
        # A hung model call is abandoned after 3 s, well inside the 60 s lease.
        model_timeout_s=3.0,
        model_retry_after_cap_s=5.0,
        lease_s=60,
        sweeper_interval_s=1.0,
        # A routing flag change reaches every process within a second, and the old function's
        # calls (3 x (10 + 5) s at worst) stay inside the lease (docs/migration.md).
        route_cache_s=1.0,
        legacy_timeout_s=10.0,
    )


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
