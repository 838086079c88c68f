"""The offline checkers over Kafka: I8 (lag back to 0), I9 (bad input dead-lettered, not
processed), record sizes, duplicate records, and a readable dump of every topic for I7.
"""

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from planstream.adapters.kafka.security import client_options
from planstream.dev.chaos.checkers import Check
from planstream.settings import Settings
from topics import CATALOGUE, DEAD_LETTER, TopicSpec

__all__ = [
    "DeadLetter",
    "Record",
    "consumer_lag",
    "dead_letters",
    "duplicate_keys",
    "group_ids",
    "read_topic",
    "read_topics",
]

# What each service's consumer group reads (the agents' topics).
SERVICE_TOPICS: dict[str, tuple[str, ...]] = {
    "image_io": ("planstream.step.requested.v1",),
    "info_worker": ("planstream.image.ready.v1", "planstream.info.requested.v1"),
    "comparison_worker": ("planstream.info.extracted.v1",),
    "supervisor": ("planstream.comparison.completed.v1", "planstream.step.failed.v1"),
    "render_worker": ("planstream.render.requested.v1",),
    "decisions_sink": ("planstream.decision.made.v1",),
}


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    def json(self) -> Any:
        try:
            return json.loads(self.value or b"null")
        except ValueError:
            return None


@dataclass(frozen=True)
class DeadLetter:
    record: Record

    def header(self, name: str) -> str:
        for key, value in self.record.headers:
            if key == f"planstream-{name}":
                return value.decode(errors="replace")
        return ""


def _consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        request_timeout_ms=30_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
        **options,
    )


async def read_topics(
    settings: Settings, names: Iterable[str], since: dict[TopicPartition, int] | None = None
) -> list[Record]:
    """Every record now on the named (full) topics, from ``since`` (or the beginning)."""
    consumer = _consumer(settings)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or range(settings.topic_partitions))
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for tp, offset in (since or {}).items():
            if tp in partitions:
                consumer.seek(tp, offset)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*partitions, timeout_ms=2_000)
            for tp, messages in batch.items():
                records.extend(
                    Record(
                        tp.topic,
                        tp.partition,
                        m.offset,
                        m.key,
                        m.value,
                        tuple(m.headers),
                        m.timestamp,
                    )
                    for m in messages
                    if m.offset < ends[tp]
                )
        return records
    finally:
        await consumer.stop()


async def end_offsets(settings: Settings, names: Iterable[str]) -> dict[TopicPartition, int]:
    consumer = _consumer(settings)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p) for name in names for p in range(settings.topic_partitions)
        ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


def namespace_topics(settings: Settings, specs: Sequence[TopicSpec] = CATALOGUE) -> list[str]:
    return [spec.full_name(settings.topic_namespace) for spec in specs]


async def read_topic(settings: Settings, spec: TopicSpec) -> list[Record]:
    return await read_topics(settings, [spec.full_name(settings.topic_namespace)])


async def dead_letters(
    settings: Settings, since: dict[TopicPartition, int] | None = None
) -> list[DeadLetter]:
    records = await read_topics(settings, [DEAD_LETTER.full_name(settings.topic_namespace)], since)
    return [DeadLetter(record) for record in records]


def group_ids(settings: Settings, services: Iterable[str]) -> dict[str, str]:
    return {s: f"planstream-{s}{settings.app_id_suffix}" for s in services}


# A broker that has just started has no coordinator for a group until it has created
# __consumer_offsets: it answers GroupCoordinatorNotAvailable (a retriable error) meanwhile.
COORDINATOR_WAIT_S = 60.0


async def _group_offsets(
    admin: AIOKafkaAdminClient, group: str
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets, waiting out retriable errors for ``COORDINATOR_WAIT_S``."""
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            offsets: dict[TopicPartition, OffsetAndMetadata]
            offsets = await admin.list_consumer_group_offsets(group)
            return offsets
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def consumer_lag(settings: Settings) -> Check:
    """I8: for every service's group, committed offset == end offset on every partition."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=30_000)
    await admin.start()
    consumer = _consumer(settings)
    await consumer.start()
    try:
        behind: list[str] = []
        total = 0
        for service, group in group_ids(settings, SERVICE_TOPICS).items():
            committed = await _group_offsets(admin, group)
            names = [settings.topic_namespace + t for t in SERVICE_TOPICS[service]]
            partitions = [
                TopicPartition(n, p) for n in names for p in range(settings.topic_partitions)
            ]
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                meta = committed.get(tp)
                at = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                lag = max(0, ends[tp] - at)
                if lag:
                    total += lag
                    behind.append(
                        f"{group} {tp.topic}[{tp.partition}] committed {at} end {ends[tp]}"
                    )
        return Check("I8", "consumer_lag", total, tuple(behind[:10]))
    finally:
        await consumer.stop()
        await admin.close()


def duplicate_keys(records: Sequence[Record]) -> Counter[str]:
    """Idempotency keys that appear on more than one record (tolerated; reported)."""
    keys: Counter[str] = Counter()
    for record in records:
        value = record.json()
        if isinstance(value, dict) and isinstance(value.get("idempotency_key"), str):
            keys[value["idempotency_key"]] += 1
    return Counter({key: n for key, n in keys.items() if n > 1})


def max_record_bytes(records: Sequence[Record]) -> int:
    return max((len(r.value or b"") for r in records), default=0)


# What each step service emits when it finishes a job (the event carries the step attempt's key).
SERVICE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "image_io": ("planstream.image.ready.v1", "planstream.step.failed.v1"),
    "info_worker": ("planstream.info.extracted.v1", "planstream.step.failed.v1"),
    "comparison_worker": ("planstream.comparison.completed.v1", "planstream.step.failed.v1"),
    "supervisor": ("planstream.decision.made.v1",),
    "render_worker": ("planstream.step.requested.v1", "planstream.step.failed.v1"),
}
# A job the sweeper gave up: a step service's ends as WORKER_LOST on step.failed, the
# Supervisor's ends its run as failed (no event).
_NO_OUTPUT_NEEDED = {("supervisor", "failed")}


def outputs_by_key(records: Sequence[Record], namespace: str) -> dict[tuple[str, str], int]:
    """How many records each (topic, idempotency key) has, topic without the namespace."""
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        value = record.json()
        if not isinstance(value, dict) or not isinstance(value.get("idempotency_key"), str):
            continue
        key = (record.topic.removeprefix(namespace), value["idempotency_key"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def done_without_output(
    jobs: Sequence[tuple[str, str, str]], counts: dict[tuple[str, str], int]
) -> Check:
    """Jobs (service, job key, status) that finished but whose output is on no topic (I1)."""
    missing = []
    for service, job_key, status in jobs:
        topics = SERVICE_OUTPUTS.get(service)
        if topics is None or status == "running" or (service, status) in _NO_OUTPUT_NEEDED:
            continue
        step_key = job_key.split(":", 1)[1]
        if not any(counts.get((topic, step_key)) for topic in topics):
            missing.append(f"{job_key} ({status})")
    return Check("I1", "jobs_done_without_output", len(missing), tuple(missing[:10]))


def reexecutions(counts: dict[tuple[str, str], int]) -> int:
    """Outputs emitted more than once for one step attempt (tolerated; absorbed downstream)."""
    return sum(n - 1 for n in counts.values() if n > 1)


def dead_letter_counts(
    letters: Sequence[DeadLetter], injected: Iterable[tuple[str, int | None, int | None]]
) -> dict[tuple[str, int, int], int]:
    """I9: how many dead letters name each injected record (topic, partition, offset) as their
    source; a refused input must have exactly one."""
    wanted = {(t, p, o): 0 for t, p, o in injected if p is not None and o is not None}
    for letter in letters:
        try:
            source = (
                letter.header("source-topic"),
                int(letter.header("source-partition")),
                int(letter.header("source-offset")),
            )
        except ValueError:
            continue
        if source in wanted:
            wanted[source] += 1
    return wanted


class OffsetSampler:
    """Samples every service group's committed offsets while a fault runs, so a lost message can
    be traced to the moment its group committed past it without processing it."""

    def __init__(self, settings: Settings, every_s: float = 1.0) -> None:
        self._settings = settings
        self._groups = group_ids(settings, SERVICE_TOPICS)
        self._every_s = every_s
        self.samples: list[tuple[float, dict[tuple[str, int], int]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "OffsetSampler":
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        admin = AIOKafkaAdminClient(**client_options(self._settings))
        await admin.start()
        try:
            while True:
                snapshot: dict[tuple[str, int], int] = {}
                for group in self._groups.values():
                    with contextlib.suppress(Exception):
                        committed = await admin.list_consumer_group_offsets(group)
                        for tp, meta in committed.items():
                            snapshot[(tp.topic, tp.partition)] = meta.offset
                self.samples.append((time.time(), snapshot))
                await asyncio.sleep(self._every_s)
        finally:
            await admin.close()

    def passed(self, topic: str, partition: int, offset: int) -> float | None:
        """When the consuming group's committed offset first went past ``offset`` (epoch s)."""
        for at, snapshot in self.samples:
            if snapshot.get((topic, partition), -1) > offset:
                return at
        return None


async def trace_unfinished(
    settings: Settings, run_ids: Sequence[str], sampler: OffsetSampler | None = None
) -> list[str]:
    """For each run: the last event on a consumed topic, and when its group committed past it."""
    if not run_ids:
        return []
    consumed = {t for topics in SERVICE_TOPICS.values() for t in topics}
    names = [settings.topic_namespace + t for t in sorted(consumed)]
    records = await read_topics(settings, names)
    traces = []
    for run_id in run_ids:
        mine = [r for r in records if r.key == run_id.encode()]
        if not mine:
            traces.append(f"{run_id}: no event on any consumed topic")
            continue
        last = max(mine, key=lambda r: r.timestamp_ms)
        when = sampler.passed(last.topic, last.partition, last.offset) if sampler else None
        kind = (last.json() or {}).get("kind")
        where = (
            f"{last.topic.removeprefix(settings.topic_namespace)}[{last.partition}]@{last.offset}"
        )
        committed = f"committed past it at {when:.1f}" if when else "not seen committed"
        traces.append(
            f"{run_id}: last {kind} {where} at {last.timestamp_ms / 1000:.1f}, {committed}"
        )
    return traces
