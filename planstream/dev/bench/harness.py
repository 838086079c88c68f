"""The step-0 pipeline on the real stack, for the pipeline figures (2, 3, 4 and 7).

Starts the scripted model server (its own instance, samples and delay) and planstream's
services as child processes with the workspace's settings, seeds runs, publishes their step
requests, clocks each run's first ``DecisionMade`` and checks the output: exactly one decision
per step attempt on the topic and in ``pipeline_decisions``, nothing dead-lettered.
"""

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Literal

import asyncpg

from planstream.adapters.postgres.db import create_pool
from planstream.adapters.storage import Storage
from planstream.dev.bench import children, cpu, kafka_io, model_server, seeding
from planstream.dev.bench.floor_counts import HOPS, SINK
from planstream.dev.bench.rows import image_ready, step_request
from planstream.dev.bench.stats import BenchmarkFailed, verify_exactly_once
from planstream.dev.bench.workspace import Workspace
from planstream.dev.isolation import free_port
from planstream.dev.samples.generator import generate
from planstream.domain.events import ImageReady, step_key
from planstream.domain.ids import new_id
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from topics import DEAD_LETTER, DECISION_MADE, IMAGE_READY, STEP_REQUESTED

__all__ = ["Pipeline", "cpu_labels", "cpu_now"]

SampleKind = Literal["correct", "hang"]
# planstream's own lines (planstream.adapters.faust.app): Faust's logs at WARNING.
_ASSIGNED = ": rebalance started"
_RECOVERED = ": rebalance done"


def _ready(run: seeding.SeededRun) -> ImageReady:
    return image_ready(step_request(run.run_id, run.artifact_id), new_id("job"))


class Pipeline:
    """Model server plus the step-0 services, and the benchmark's clients of them."""

    def __init__(
        self, workspace: Workspace, name: str, hang_s: float, *, services: bool = True
    ) -> None:
        port = free_port()
        self._services = services  # False: the model server alone (the I/O floor's test)
        self.workspace = workspace
        self.settings: Settings = workspace.namespaced(
            name,
            model_server_port=port,
            model_base_url=f"http://127.0.0.1:{port}/v1",
            model_hang_s=hang_s,
            model_samples_dir=workspace.settings.model_samples_dir / name,
        )
        self.logs = workspace.logs / name
        self._stack = AsyncExitStack()
        self._images: dict[str, tuple[bytes, str]] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self.pool: asyncpg.Pool
        self.storage = Storage(self.settings)
        self.producer = kafka_io.new_producer(self.settings)
        ns = self.settings.topic_namespace
        self.decisions = kafka_io.Arrivals(self.settings, [DECISION_MADE.full_name(ns)])
        self.images = kafka_io.Arrivals(self.settings, [IMAGE_READY.full_name(ns)])

    async def __aenter__(self) -> "Pipeline":
        stack = self._stack
        try:
            await self.workspace.topics(self.settings)
            manifest = await asyncio.to_thread(
                generate,
                self.settings.model_samples_dir,
                seed=random.randrange(1, 2**31),
                scenarios=("correct", "hang"),
                count=2,
            )
            folder = self.settings.model_samples_dir
            for sample in manifest.samples:
                image = (folder / sample.file).read_bytes()
                self._images[sample.scenario] = (image, sample.request_text)
                self._sizes[sample.scenario] = (sample.width_px, sample.height_px)
            self.pool = await create_pool(self.settings.dsn, max_size=4)
            stack.push_async_callback(self.pool.close)
            await self.storage.start()
            stack.push_async_callback(self.storage.stop)
            await self.producer.start()
            stack.push_async_callback(self.producer.stop)
            for arrivals in (self.decisions, self.images):
                await arrivals.start()
                stack.push_async_callback(arrivals.stop)
            workers = children.PIPELINE if self._services else ()
            chosen = [children.model_server(), *map(children.worker, workers)]
            await stack.enter_async_context(children.run_children(self.settings, chosen, self.logs))
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    @asynccontextmanager
    async def extra_workers(self, copy: int = 2) -> AsyncIterator[None]:
        """A second process of every service but the sweeper while the block runs.

        The block starts, and ends, once every first Faust process has recovered its new
        partitions, so the figure measures the steady state, not the rebalance.
        """
        copies = [name for name in children.PIPELINE if name != "sweeper"]
        faust = [name for name in copies if name not in children.NOT_FAUST]
        chosen = [children.worker(name, copy) for name in copies]
        before = self._assignments(faust)
        async with children.run_children(self.settings, chosen, self.logs):
            await self._settled(faust, before)
            before = self._assignments(faust)
            yield
        await self._settled(faust, before)

    def _assignments(self, names: Sequence[str]) -> dict[str, tuple[int, bool]]:
        """Per first process: rebalances seen so far, and whether the last one has recovered."""
        found = {}
        for name in names:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
            count = text.count(_ASSIGNED)
            last = text.rfind(_ASSIGNED)
            found[name] = (count, text.find(_RECOVERED, last) > last)
        return found

    async def _settled(
        self, names: Sequence[str], before: dict[str, tuple[int, bool]], timeout_s: float = 60
    ) -> None:
        """Wait until every first process has rebalanced since ``before`` and recovered."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self._assignments(names)
            if all(now[n][0] > before[n][0] and now[n][1] for n in names):
                return
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the consumer groups did not settle: {now}")
            await asyncio.sleep(0.2)

    async def set_model_delay(self, seconds: float) -> None:
        await model_server.set_delay(self.settings, seconds)

    async def reset_model(self) -> None:
        """Forget the scripted server's call counts, so a hang sample hangs again."""
        await model_server.reset(self.settings)

    def sample(self, kind: SampleKind = "correct") -> tuple[bytes, str]:
        """A scripted sample's image and request text (the model server knows the image)."""
        return self._images[kind]

    async def seed(
        self, count: int, kind: SampleKind = "correct", partition: int | None = None
    ) -> list[seeding.SeededRun]:
        image, request_text = self._images[kind]
        ids = seeding.run_ids(count, self.settings.topic_partitions, partition)
        return await seeding.seed_runs(
            self.settings, self.pool, self.storage, image, request_text, ids
        )

    async def seed_ready(self, count: int) -> list[seeding.SeededRun]:
        """Runs whose step 0 is past Image I/O: the image's facts recorded, ImageReady's bytes.

        What Image I/O leaves for the next services (the measured size, the quality band), so
        the model-bound services can be clocked on their own.
        """
        runs = await self.seed(count)
        width, height = self._sizes["correct"]
        facts = {"width_px": width, "height_px": height, "quality": "2K", "within_band": True}
        await self.pool.execute(
            "UPDATE pipeline_artifacts SET metadata_json = metadata_json || $2"
            " WHERE artifact_id = ANY($1)",
            [run.artifact_id for run in runs],
            facts,
        )
        size = self.settings.max_event_bytes
        return [
            seeding.SeededRun(run.run_id, encode_event(_ready(run), size), run.artifact_id)
            for run in runs
        ]

    async def submit_ready(self, runs: Sequence[seeding.SeededRun]) -> float:
        """Publish ready runs' ImageReady events at once; the clock when the first went out."""
        topic = IMAGE_READY.full_name(self.settings.topic_namespace)
        messages = [(run.key, run.request) for run in runs]
        return await kafka_io.send_all(self.producer, topic, messages)

    @property
    def requests_topic(self) -> str:
        return STEP_REQUESTED.full_name(self.settings.topic_namespace)

    async def submit(self, runs: Sequence[seeding.SeededRun]) -> float:
        """Publish every run's step-0 request at once; the clock when the first went out."""
        messages = [(run.key, run.request) for run in runs]
        return await kafka_io.send_all(self.producer, self.requests_topic, messages)

    async def decided(self, runs: Sequence[seeding.SeededRun], timeout_s: float) -> float:
        """Wait for every run's first decision on the topic and its row; the clock of the last."""
        last_event = await self.decisions.wait_for([run.key for run in runs], timeout_s)
        ids = [run.run_id for run in runs]
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await self.pool.fetchval(
                "SELECT count(*) FROM pipeline_decisions WHERE run_id = ANY($1)", ids
            )
            now = time.monotonic()
            if rows >= len(ids):
                return max(last_event, now)
            if now > deadline:
                raise BenchmarkFailed(f"{len(ids) - rows} decisions never reached the table")
            await asyncio.sleep(0.05)

    def first_decision(self, run: seeding.SeededRun) -> float:
        return self.decisions.times[run.key][0]

    async def verify(self, runs: Sequence[seeding.SeededRun]) -> Counter[str]:
        """One decision per step attempt on the topic and in the table; what was decided."""
        ns = self.settings.topic_namespace
        ours = {run.run_id for run in runs}
        events = [
            json.loads(value)
            for key, value in await kafka_io.read_messages(
                self.settings, DECISION_MADE.full_name(ns)
            )
            if key.decode() in ours
        ]
        keys = [event["idempotency_key"] for event in events]
        attempts = sorted(set(keys))
        expected = [step_key(run, 0, 1) for run in ours]
        verify_exactly_once("step-0 decisions on the topic", attempts, keys)
        missing = set(expected) - set(attempts)
        if missing:
            raise BenchmarkFailed(f"{len(missing)} runs have no first-attempt decision")
        rows = await self.pool.fetch(
            "SELECT idempotency_key FROM pipeline_decisions WHERE run_id = ANY($1)", list(ours)
        )
        verify_exactly_once("decision rows", attempts, [row["idempotency_key"] for row in rows])
        dead = [
            key for key, _ in await kafka_io.read_messages(self.settings, DEAD_LETTER.full_name(ns))
        ]
        if any(key.decode(errors="replace") in ours for key in dead):
            raise BenchmarkFailed("a run's event was dead-lettered")
        return Counter(event["decision"] for event in events)


def cpu_labels() -> dict[str, list[str]]:
    """CPU labels of the pipeline's children: each service, the model server, raw hops, and
    each process of the I/O floor (``io_floor:<hop>``)."""
    return {
        **children.service_markers(),
        "model_server": ["planstream.dev.bench.model_server"],
        "raw_chain": ["planstream.dev.bench.raw_hop"],
        **{f"io_floor:{hop}": [f"io_floor {hop}"] for hop in (*HOPS, SINK)},
    }


def cpu_now() -> cpu.CpuSnapshot:
    return cpu.snapshot(cpu_labels())
