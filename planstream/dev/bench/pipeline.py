"""Figures 2 and 7, step throughput: step-0 runs per second through the services.

planstream: runs seeded as the ingress makes them, their step-0 requests published at once,
the clock stopped when the last run's decision is in ``pipeline_decisions``; the scripted model
answers at once. Baseline: a chain of four raw aiokafka hops (``raw_hop``, acknowledgement
awaited per message) over the same topics' shapes, each producing the JSON payload the matching
planstream service produced in the warm-up, from the same ``StepRequested`` bytes, clocked to
the last ``DecisionMade`` read back. Second baseline, the I/O floor (``floor_chain``): the
same external operations as a planstream step-0 run, with the raw clients, from the same number
of runs at once. Figure 7 repeats planstream with a second process of every service. The four
are measured in rotating order within each repeat. With a sampler
(``planstream bench --sampling-profile``), one more batch of planstream runs after the repeats
under py-spy, counted in no figure (``planstream.dev.bench.sampling``).
"""

import contextlib
import json
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from planstream.dev.bench import children, cpu, kafka_io
from planstream.dev.bench.floor_chain import NAME as FLOOR
from planstream.dev.bench.floor_chain import IoFloor
from planstream.dev.bench.harness import Pipeline, cpu_now
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.report import progress
from planstream.dev.bench.rows import step_request
from planstream.dev.bench.sampling import Sampler
from planstream.dev.bench.stats import Better, Figure, Pair, Series, Target, verify_exactly_once
from planstream.dev.bench.workspace import Workspace
from planstream.dev.launcher import Service
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from topics import COMPARISON_COMPLETED, DECISION_MADE, IMAGE_READY, INFO_EXTRACTED, TopicSpec

__all__ = ["CHAIN", "run_pipeline", "warm_up"]

CHAIN: tuple[TopicSpec, ...] = (
    IMAGE_READY,
    INFO_EXTRACTED,
    COMPARISON_COMPLETED,
    DECISION_MADE,
)
_RAW = "raw chain of 4 aiokafka hops, acknowledgement awaited per message"
_RAW_MIN_RUNS = 1_000


async def warm_up(pipeline: Pipeline, timeout_s: float) -> None:
    """Two runs per partition through every service (after a start or a rebalance)."""
    partitions = pipeline.settings.topic_partitions
    runs = []
    for partition in range(partitions):
        runs += await pipeline.seed(2, partition=partition)
    await pipeline.submit(runs)
    await pipeline.decided(runs, timeout_s)
    await pipeline.verify(runs)


async def _templates(pipeline: Pipeline, folder: Path) -> list[Path]:
    """The last payload each planstream service produced, as the raw hops' templates."""
    paths = []
    for spec in CHAIN:
        name = spec.full_name(pipeline.settings.topic_namespace)
        messages = await kafka_io.read_messages(pipeline.settings, name)
        path = folder / f"{spec.name}.json"
        path.write_bytes(messages[-1][1])
        paths.append(path)
    return paths


def _raw_chain(settings: Settings, templates: Sequence[Path]) -> list[Service]:
    ns = settings.topic_namespace
    topics = ["planstream.step.requested.v1", *(spec.name for spec in CHAIN)]
    hops = []
    for index, template in enumerate(templates):
        name = f"raw-chain-{index + 1}"
        args = ["--bootstrap", settings.kafka_bootstrap, "--group", f"{name}-{ns}"]
        args += ["--in", ns + topics[index], "--out", ns + topics[index + 1]]
        args += ["--template", str(template), "--mode", "each"]
        args += ["--linger-ms", str(settings.producer_linger_ms)]
        args += ["--commit-s", str(settings.broker_commit_interval_s)]
        hops.append(children.raw_hop(name, args))
    return hops


class _Raw:
    """The raw chain's topics, its clock on the last topic, and one measured repeat."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ns = settings.topic_namespace
        self.topics = [ns + "planstream.step.requested.v1", *(ns + s.name for s in CHAIN)]
        self.producer = kafka_io.new_producer(settings)
        self.arrivals = kafka_io.Arrivals(settings, [self.topics[-1]])
        self.sent: list[bytes] = []

    async def start(self) -> None:
        await kafka_io.create_topics(self.settings, self.topics)
        await self.producer.start()
        await self.arrivals.start()

    async def stop(self) -> None:
        await self.arrivals.stop()
        await self.producer.stop()

    async def measure(self, count: int, timeout_s: float) -> dict[str, float]:
        """Runs/s, CPU ms per run and the machine's busy cores for ``count`` requests."""
        runs = [f"run_{uuid.uuid4().hex}" for _ in range(count)]
        size = self.settings.max_event_bytes
        messages = [(r.encode(), encode_event(step_request(r), size)) for r in runs]
        self.sent += [key for key, _ in messages]
        before, load = cpu_now(), cpu.MachineLoad()
        started = await kafka_io.send_all(self.producer, self.topics[0], messages)
        finished = await self.arrivals.wait_for([key for key, _ in messages], timeout_s)
        spent = cpu_now().spent_since(before).get("raw_chain", 0.0)
        return {
            "runs/s": count / (finished - started),
            "cpu_ms": spent / count * 1000,
            "machine_cores_busy": load.cores_busy(),
        }

    async def verify(self) -> None:
        seen = [key for key, _ in await kafka_io.read_messages(self.settings, self.topics[-1])]
        verify_exactly_once("raw chain outputs", self.sent, seen)


def _sampled() -> dict[int, str]:
    """The processes a sampling profile watches: the services and the model server."""
    wanted = {*children.PIPELINE, "model_server"}
    return {pid: label for pid, label in cpu_now().labels.items() if label in wanted}


async def _planstream(
    pipeline: Pipeline, count: int, timeout_s: float, sampler: Sampler | None = None
) -> dict[str, float]:
    """One measured batch: runs/s and CPU ms per run (services, and the model server); with a
    sampler, the services are sampled from the submission to the last decision."""
    await warm_up(pipeline, timeout_s)
    runs = await pipeline.seed(count)
    watched = sampler.window(_sampled()) if sampler else contextlib.nullcontext()
    async with watched:
        before, load = cpu_now(), cpu.MachineLoad()
        started = await pipeline.submit(runs)
        finished = await pipeline.decided(runs, timeout_s)
        spent = cpu_now().spent_since(before)
        busy = load.cores_busy()
    await pipeline.verify(runs)
    result = {"runs/s": count / (finished - started), "machine_cores_busy": busy}
    result |= {f"cpu_ms:{label}": seconds / count * 1000 for label, seconds in spent.items()}
    result["cpu_ms"] = sum(v for k, v in spent.items() if k in children.PIPELINE) / count * 1000
    return result


def _series(samples: Sequence[dict[str, float]], key: str) -> Series:
    return Series(tuple(sample.get(key, 0.0) for sample in samples))


async def run_pipeline(
    workspace: Workspace, profile: Profile, pipeline: Pipeline, sampler: Sampler | None = None
) -> tuple[Figure, Figure | None]:
    """Figure 2 (and 7 when the profile scales): all variants, rotating order per repeat; then,
    with a sampler, one sampled batch that no figure counts."""
    raw = _Raw(workspace.namespaced("rawchain"))
    floor = IoFloor(workspace, pipeline)
    variants = ["one", "raw", "floor", "two"]
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    operations: dict[str, dict[str, int]] = {}
    count, timeout_s = profile.pipeline_runs, profile.timeout_s

    async def measure(variant: str) -> dict[str, float]:
        if variant == "raw":
            # The chain moves a batch the size of planstream's in about a second; a larger one
            # keeps its clock clear of scheduling hiccups (the figures are per run either way).
            return await raw.measure(max(count, _RAW_MIN_RUNS), timeout_s)
        if variant == "floor":
            return await floor.measure(count, timeout_s)
        if variant == "two":
            async with pipeline.extra_workers():
                return await _planstream(pipeline, count, timeout_s)
        return await _planstream(pipeline, count, timeout_s)

    await warm_up(pipeline, timeout_s)
    templates = await _templates(pipeline, workspace.folder)
    await raw.start()
    await floor.start()
    try:
        chain = _raw_chain(raw.settings, templates)
        hops = floor.services(await floor.templates(templates))
        async with (
            children.run_children(raw.settings, chain, workspace.logs / "raw-chain"),
            children.run_children(floor.settings, hops, floor.logs),
        ):
            await raw.measure(20, timeout_s)  # warm-up
            await floor.measure(2 * pipeline.settings.topic_partitions, timeout_s)  # warm-up
            for index in range(profile.repeats):
                shift = index % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    if variant == "two" and index >= profile.scaling_repeats:
                        continue
                    began = time.monotonic()
                    results[variant].append(await measure(variant))
                    rate = results[variant][-1]["runs/s"]
                    took = time.monotonic() - began
                    progress(f"pipeline {index + 1} {variant}: {rate:.1f} runs/s ({took:.0f} s)")
            await raw.verify()
            await floor.verify()
        operations = floor.check_counts()  # written by the floor's processes as they stopped
        if sampler is not None:
            sampled = await _planstream(pipeline, count, timeout_s, sampler)
            progress(f"pipeline sampled: {sampled['runs/s']:.1f} runs/s, {sampler.folder}")
    finally:
        await floor.stop()
        await raw.stop()
    throughput, scaling = _figures(profile, results, templates)
    throughput.details["io_floor_operations"] = operations
    return throughput, scaling


_METRICS: tuple[tuple[str, str, Better, str], ...] = (
    ("runs/s", "runs/s", "higher", "runs/s"),
    ("CPU per run", "ms", "lower", "cpu_ms"),
)


def _figures(
    profile: Profile, results: dict[str, list[dict[str, float]]], templates: Sequence[Path]
) -> tuple[Figure, Figure | None]:
    throughput = Figure("pipeline", "Step throughput: step-0 runs through the services")
    throughput.target = Target("planstream >= 0.25 x the raw chain's runs/s", "runs/s", 0.25)
    scaling = Figure("scaling", "Scaling: step throughput, 1 vs 2 processes per service")
    throughput.repeats = profile.repeats
    scaling.repeats = len(results["two"])
    one = results["one"]
    for metric, unit, better, key in _METRICS:
        throughput.pairs.append(
            Pair(metric, unit, _series(one, key), _series(results["raw"], key), _RAW, better)
        )
        floor = _series(results["floor"], key)
        throughput.pairs.append(
            Pair(f"{metric} (vs the I/O floor)", unit, _series(one, key), floor, FLOOR, better)
        )
        if results["two"]:
            two = _series(results["two"], key)
            label = metric + " (2 processes per service)"
            scaling.pairs.append(
                Pair(label, unit, two, _series(one, key), "1 process per service", better)
            )
    labels = sorted(
        {k for sample in one for k in sample if k.startswith("cpu_ms:") and "raw" not in k}
    )
    labels = [label for label in labels if not label.startswith("cpu_ms:io_floor:")]
    throughput.details["runs"] = profile.pipeline_runs
    throughput.details["cpu_ms_per_run_by_process"] = _by_process(one, labels)
    floor_labels = sorted({k for s in results["floor"] for k in s if k.startswith("cpu_ms:io_")})
    throughput.details["io_floor_cpu_ms_per_run_by_process"] = _by_process(
        results["floor"], floor_labels
    )
    for variant, samples in results.items():
        if not samples:
            continue
        busy = statistics.median(s.get("machine_cores_busy", 0.0) for s in samples)
        target = throughput if variant != "two" else scaling
        target.details[f"machine_cores_busy:{variant}"] = busy
    kinds = [json.loads(path.read_bytes())["kind"] for path in templates]
    throughput.details["raw_chain_payloads"] = kinds
    if results["two"]:
        scaling.details["cpu_ms_per_run_by_process_two"] = _by_process(results["two"], labels)
    return throughput, scaling if results["two"] else None


def _by_process(samples: Sequence[dict[str, float]], labels: Sequence[str]) -> dict[str, float]:
    """Median CPU ms per run of each labelled process over the repeats."""
    return {
        label.removeprefix("cpu_ms:"): statistics.median(s.get(label, 0.0) for s in samples)
        for label in labels
    }
