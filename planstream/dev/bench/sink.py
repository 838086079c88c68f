"""Figure 5, the decision sink: rows per second into ``pipeline_decisions``.

planstream: N ``DecisionMade`` events are on a fresh decisions topic before the real
``decisions_sink`` service starts (its own process, started like ``planstream up`` does: a plain
aiokafka consumer writing one batch per fetch, offsets committed after each write); rows/s is
counted from the first rows to the last (so the process's start-up is left out), with the
table's count sampled every 20 ms. Baselines on the
same rows, batch size (``sink_batch_size``) and table: asyncpg ``executemany`` of the same
``INSERT … ON CONFLICT DO NOTHING``, and ``copy_records_to_table``, one transaction per batch.
``DecisionLog.write`` in this process (the sink's own statements without Kafka) is a third
row, to tell the sink's database work from its consuming. Every variant starts from the same
empty table and fresh runs, and must end with exactly the N rows.
"""

import asyncio
import json
import re
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from planstream.adapters.postgres import decision_log
from planstream.adapters.postgres.db import connect, create_pool
from planstream.adapters.postgres.decision_log import DecisionLog, decision_row
from planstream.dev.bench import children, cpu, kafka_io, rows
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.report import progress
from planstream.dev.bench.stats import Figure, Pair, Target, verify_exactly_once
from planstream.dev.bench.workspace import Workspace
from planstream.domain.events import DecisionMade
from planstream.domain.wire import encode_event
from topics import DECISION_MADE

__all__ = ["run_sink"]

SERVICE_METRIC = "rows/s (decisions_sink service, from Kafka)"

VARIANTS = ("planstream", "executemany", "copy", "adapter")
# The sink's own INSERT, so that the baselines write exactly its columns with its conflict rule.
_INSERT: str = decision_log._INSERT


def _columns(insert: str) -> list[str]:
    """The column list of an ``INSERT INTO pipeline_decisions (...)`` statement."""
    found = re.search(r"pipeline_decisions \(([^)]*)\)", insert)
    assert found is not None, "the sink's INSERT names no columns"
    return [name.strip() for name in found.group(1).split(",")]


_COLUMNS = _columns(_INSERT)
_COUNT = "SELECT count(*) FROM pipeline_decisions"


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


async def _binary_json(conn: asyncpg.Connection) -> None:
    """jsonb in COPY's binary format (version byte 1, then the JSON text)."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda value: b"\x01" + json.dumps(value).encode(),
        decoder=lambda data: json.loads(data[1:]),
    )


async def _service(
    workspace: Workspace, index: int, events: Sequence[DecisionMade], timeout_s: float
) -> tuple[float, float]:
    settings = workspace.namespaced(f"sink{index}")
    await workspace.topics(settings)
    producer = kafka_io.new_producer(settings)
    await producer.start()
    try:
        topic = DECISION_MADE.full_name(settings.topic_namespace)
        size = settings.max_event_bytes
        messages = [(e.run_id.encode(), encode_event(e, size)) for e in events]
        await kafka_io.send_all(producer, topic, messages)
    finally:
        await producer.stop()
    conn = await asyncpg.connect(settings.dsn)
    samples: list[tuple[float, int]] = []

    async def count() -> None:
        while True:
            samples.append((time.monotonic(), await conn.fetchval(_COUNT)))
            await asyncio.sleep(0.02)

    marker = {"sink": ["agents decisions_sink"]}
    poller = asyncio.create_task(count())
    try:
        service = [children.worker("decisions_sink")]
        async with children.run_children(settings, service, workspace.logs / f"sink{index}"):
            deadline = time.monotonic() + timeout_s
            before = cpu.snapshot(marker)
            while not samples or samples[-1][1] < len(events):
                if poller.done():
                    poller.result()
                if time.monotonic() > deadline:
                    raise TimeoutError("the sink did not write every row")
                await asyncio.sleep(0.05)
            spent = sum(cpu.snapshot(marker).spent_since(before).values())
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await conn.close()
    # From the last sample before the first row (the group joined, the first fetch under way)
    # to the first with every row: the first batch's write counts too.
    started = max((at for at, n in samples if n == 0), default=samples[0][0])
    done = next(at for at, n in samples if n >= len(events))
    return len(events) / max(done - started, 1e-3), spent / len(events) * 1e6


async def _direct(
    variant: str, dsn: str, pool: asyncpg.Pool, events: Sequence[DecisionMade], batch: int
) -> float:
    """rows/s of writing the events' rows straight from this process."""
    if variant == "adapter":
        log = DecisionLog(pool)
        started = time.monotonic()
        for part in _batches(events, batch):
            await log.write(part)
        return len(events) / (time.monotonic() - started)
    records = [decision_row(e) for e in events]
    # executemany: a connection set up like planstream's; COPY: jsonb in binary instead.
    conn = await (asyncpg.connect(dsn) if variant == "copy" else connect(dsn))
    try:
        if variant == "copy":
            await _binary_json(conn)
        started = time.monotonic()
        for part in _batches(records, batch):
            async with conn.transaction():
                if variant == "copy":
                    await conn.copy_records_to_table(
                        "pipeline_decisions", records=part, columns=_COLUMNS
                    )
                else:
                    await conn.executemany(_INSERT, part)
        return len(events) / (time.monotonic() - started)
    finally:
        await conn.close()


async def run_sink(workspace: Workspace, profile: Profile) -> Figure:
    settings = workspace.settings
    figure = Figure("sink", "Decision sink: rows/s into pipeline_decisions")
    figure.target = Target("planstream sink >= 0.5 x raw executemany rows/s", SERVICE_METRIC, 0.5)
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    cpu_us: list[float] = []
    pool = await create_pool(settings.dsn, max_size=2)
    try:
        for index in range(profile.repeats):
            shift = index % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                async with pool.acquire() as conn:
                    runs = await rows.reset_runs(conn, profile.sink_rows, settings.s3_bucket)
                events = [rows.decision(run) for run in runs]
                if variant == "planstream":
                    per_s, spent = await _service(workspace, index, events, profile.timeout_s)
                    cpu_us.append(spent)
                else:
                    per_s = await _direct(
                        variant, settings.dsn, pool, events, settings.sink_batch_size
                    )
                keys = await pool.fetch("SELECT idempotency_key FROM pipeline_decisions")
                verify_exactly_once(
                    f"decision rows ({variant})",
                    [e.idempotency_key for e in events],
                    [row["idempotency_key"] for row in keys],
                )
                results[variant].append(per_s)
                progress(f"sink {index + 1} {variant}: {per_s:.0f} rows/s")
    finally:
        await pool.close()
    figure.repeats = profile.repeats
    executemany = "raw asyncpg executemany (same INSERT, same batches)"
    for ours, baseline, metric, name in (
        ("planstream", "executemany", SERVICE_METRIC, executemany),
        ("planstream", "copy", SERVICE_METRIC, "raw asyncpg copy_records_to_table (same batches)"),
        ("adapter", "executemany", "rows/s (DecisionLog.write, no Kafka)", executemany),
    ):
        figure.pairs.append(Pair.of(metric, "rows/s", results[ours], results[baseline], name))
    figure.details = {
        "rows": profile.sink_rows,
        "batch": settings.sink_batch_size,
        "sink_cpu_us_per_row": sorted(cpu_us)[len(cpu_us) // 2] if cpu_us else None,
    }
    return figure
