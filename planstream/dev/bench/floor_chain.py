"""The I/O floor in the step-throughput figure: its processes, its runs, one measured batch.

Four hop processes and a sink (``planstream.dev.bench.io_floor``) chained over topics of their
own namespace, against the same database, bucket and scripted model server as planstream's
services, with the same settings. Each run is seeded as planstream's are (the sample image in
the bucket, the run and its source artifact in rows, a ``StepRequested``), before the clock
starts; then all step requests go out at once and the clock stops when the last run's decision
is on the topic and in the floor's decisions table. CPU is read from /proc for the floor's
processes, as for planstream's. At the end every process's own count of its operations is
held to ``floor_counts.STEP_ZERO``, and every run must have exactly one decision.
"""

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from planstream.dev.bench import cpu, kafka_io, seeding
from planstream.dev.bench import floor_statements as sql
from planstream.dev.bench.floor_counts import HOPS, SINK, check_counts
from planstream.dev.bench.harness import Pipeline, cpu_now
from planstream.dev.bench.rows import step_request
from planstream.dev.bench.stats import BenchmarkFailed, verify_exactly_once
from planstream.dev.bench.workspace import Workspace
from planstream.dev.launcher import Service
from planstream.domain.ids import new_id
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from topics import (
    COMPARISON_COMPLETED,
    DECISION_MADE,
    IMAGE_READY,
    INFO_EXTRACTED,
    RENDER_REQUESTED,
    STEP_REQUESTED,
)

__all__ = ["NAME", "IoFloor"]

NAME = "I/O floor: the same external operations with the raw clients"
_MODULE = "planstream.dev.bench.io_floor"
_PUTS_IN_FLIGHT = 16


class IoFloor:
    """The floor's topics, processes, seeded runs and measured batches."""

    def __init__(self, workspace: Workspace, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.settings: Settings = pipeline.settings.with_overrides(
            topic_namespace=f"{workspace.tag}-iofloor.",
            app_id_suffix=f"-{workspace.tag}-iofloor",
        )
        self.folder = workspace.folder / "io-floor"
        self.logs = workspace.logs / "io-floor"
        ns = self.settings.topic_namespace
        chain = (STEP_REQUESTED, IMAGE_READY, INFO_EXTRACTED, COMPARISON_COMPLETED, DECISION_MADE)
        self.chain = [spec.full_name(ns) for spec in chain]
        self.renders = RENDER_REQUESTED.full_name(ns)
        self.changelogs = {hop: f"{ns}io-floor-{hop}-dedup-changelog" for hop in HOPS}
        self.producer = kafka_io.new_producer(self.settings)
        self.decisions = kafka_io.Arrivals(self.settings, [self.chain[-1]])
        self.sent: list[str] = []

    async def start(self) -> None:
        topics = [*self.chain, self.renders, *self.changelogs.values()]
        await kafka_io.create_topics(self.settings, topics)
        await self.pipeline.pool.execute(sql.CREATE)
        await self.producer.start()
        await self.decisions.start()
        self.folder.mkdir(parents=True, exist_ok=True)

    async def stop(self) -> None:
        await self.decisions.stop()
        await self.producer.stop()

    async def templates(self, chain: Sequence[Path]) -> list[Path]:
        """The hops' output templates: the raw chain's four, and the Supervisor's step-1
        RenderRequested as planstream published it in the warm-up."""
        name = RENDER_REQUESTED.full_name(self.pipeline.settings.topic_namespace)
        messages = await kafka_io.read_messages(self.pipeline.settings, name)
        if not messages:
            raise BenchmarkFailed("planstream's warm-up published no RenderRequested to copy")
        render = self.folder / "render.requested.json"
        render.write_bytes(messages[-1][1])
        return [*chain, render]

    def services(self, templates: Sequence[Path]) -> list[Service]:
        """The four hops and the sink, each a child process with the floor's settings."""
        found = []
        for index, hop in enumerate(HOPS):
            args = [hop, "--in", self.chain[index], "--out", self.chain[index + 1]]
            args += ["--template", str(templates[index]), "--changelog", self.changelogs[hop]]
            if hop == "supervisor":
                args += ["--out2", self.renders, "--template2", str(templates[-1])]
            found.append(self._service(hop, args))
        found.append(self._service(SINK, [SINK, "--in", self.chain[-1]]))
        return found

    def _service(self, hop: str, args: list[str]) -> Service:
        group = f"io-floor-{hop}-{self.settings.topic_namespace}"
        args += ["--group", group, "--counts", str(self.folder / f"{hop}.counts.json")]
        return Service(f"io-floor-{hop}", (sys.executable, "-m", _MODULE, *args), "Ready")

    async def seed(self, count: int) -> list[tuple[str, bytes]]:
        """``count`` runs as planstream's are seeded: the image in the bucket, the run and its
        source artifact, and the encoded step-0 request."""
        image, request_text = self.pipeline.sample()
        storage, bucket = self.pipeline.storage, self.settings.s3_bucket
        ids = seeding.run_ids(count, self.settings.topic_partitions)
        sources = {run: (new_id("art"), f"uploads/floor-{new_id('upl')}") for run in ids}
        slots = asyncio.Semaphore(_PUTS_IN_FLIGHT)

        async def put(path: str) -> None:
            async with slots:
                await storage.write(path, image, "image/png")

        await asyncio.gather(*(put(path) for _, path in sources.values()))
        async with self.pipeline.pool.acquire() as conn, conn.transaction():
            await conn.executemany(sql.SEED_RUN, [(run, request_text) for run in ids])
            await conn.executemany(
                sql.SEED_ARTIFACT,
                [(art, run, bucket, path) for run, (art, path) in sources.items()],
            )
        size = self.settings.max_event_bytes
        return [(run, encode_event(step_request(run, sources[run][0]), size)) for run in ids]

    async def measure(self, count: int, timeout_s: float) -> dict[str, float]:
        """Runs/s, CPU ms per run (all floor processes, and each) and the busy cores."""
        runs = await self.seed(count)
        self.sent += [run for run, _ in runs]
        messages = [(run.encode(), request) for run, request in runs]
        before, load = cpu_now(), cpu.MachineLoad()
        started = await kafka_io.send_all(self.producer, self.chain[0], messages)
        finished = await self._decided([run for run, _ in runs], timeout_s)
        spent = cpu_now().spent_since(before)
        result = {"runs/s": count / (finished - started), "machine_cores_busy": load.cores_busy()}
        ours = {label: s for label, s in spent.items() if label.startswith("io_floor:")}
        result |= {f"cpu_ms:{label}": s / count * 1000 for label, s in ours.items()}
        result["cpu_ms"] = sum(ours.values()) / count * 1000
        return result

    async def _decided(self, runs: Sequence[str], timeout_s: float) -> float:
        """The clock when every run's decision was on the topic and in the table."""
        last = await self.decisions.wait_for([run.encode() for run in runs], timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            stored = await self.pipeline.pool.fetchval(
                "SELECT count(*) FROM io_floor_decisions WHERE run_id = ANY($1)", list(runs)
            )
            now = time.monotonic()
            if stored >= len(runs):
                return max(last, now)
            if now > deadline:
                raise BenchmarkFailed(f"I/O floor: {len(runs) - stored} decisions not stored")
            await asyncio.sleep(0.05)

    async def verify(self) -> None:
        """Exactly one decision per run sent, on the topic and in the table."""
        events = await kafka_io.read_messages(self.settings, self.chain[-1])
        verify_exactly_once("I/O floor decisions", self.sent, [k.decode() for k, _ in events])
        rows = await self.pipeline.pool.fetch("SELECT run_id FROM io_floor_decisions")
        verify_exactly_once("I/O floor decision rows", self.sent, [r["run_id"] for r in rows])

    def check_counts(self) -> dict[str, dict[str, int]]:
        """After the processes stopped: each one's operations are exactly planstream's for
        the runs it finished (every run sent); what each counted."""
        found = {}
        for hop in (*HOPS, SINK):
            path = self.folder / f"{hop}.counts.json"
            if not path.exists():
                raise BenchmarkFailed(f"I/O floor {hop} wrote no counts (did it stop cleanly?)")
            counts = json.loads(path.read_text(encoding="utf-8"))
            if counts["errors"] or counts["runs"] != len(self.sent):
                raise BenchmarkFailed(
                    f"I/O floor {hop}: {counts['runs']} of {len(self.sent)} runs finished;"
                    f" errors: {counts['errors']}"
                )
            check_counts(hop, counts["runs"], counts["ops"], counts["batches"])
            found[hop] = counts["ops"] | {"runs": counts["runs"], "batches": counts["batches"]}
        return found
