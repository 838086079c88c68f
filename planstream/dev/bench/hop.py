"""Figure 1, hop cost: one planstream agent hop against one raw aiokafka consume-produce hop.

Each variant runs as a child process on its own pair of topics with planstream's partition count:
planstream's hop (``planstream.dev.bench.hop_app``: decode, validate, produce, acknowledgement
awaited), the raw hop waiting for each acknowledgement the same way (the paired baseline), and the
raw hop sending a whole fetched batch before waiting (an upper bound). The same ``StepRequested``
bytes go in; an ``ImageReady`` of the same shape comes out. Throughput is N messages sent at once
over the time until the last output arrived; CPU is the child's CPU time over that window; latency
is input sent to output seen, at a steady rate well below saturation.
"""

import statistics
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from planstream.dev.bench import children, cpu, kafka_io
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.report import progress
from planstream.dev.bench.rows import image_ready, step_request
from planstream.dev.bench.stats import (
    Better,
    Figure,
    Pair,
    Target,
    percentile,
    verify_exactly_once,
)
from planstream.dev.bench.workspace import Workspace
from planstream.dev.launcher import Service
from planstream.domain.ids import new_id
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from topics import DEAD_LETTER, IMAGE_READY, STEP_REQUESTED

__all__ = ["VARIANTS", "run_hop"]

VARIANTS = ("planstream", "raw_each", "planstream_pool", "raw_batch")
_PAIRS = (
    ("planstream", "raw_each", "", "raw aiokafka hop, acknowledgement awaited per message"),
    (
        "planstream_pool",
        "raw_batch",
        " (pooled agent vs batched raw)",
        "raw aiokafka hop, acknowledgements awaited per fetched batch",
    ),
)
_WARM_UP = 20
_METRICS: tuple[tuple[str, str, Better, str], ...] = (
    ("messages/s", "msg/s", "higher", "per_second"),
    ("CPU per message", "µs", "lower", "cpu_us"),
    ("latency p50", "ms", "lower", "p50_ms"),
    ("latency p99", "ms", "lower", "p99_ms"),
)


@dataclass(frozen=True)
class HopSample:
    per_second: float
    cpu_us: float
    p50_ms: float
    p99_ms: float
    cores_busy: float


def _messages(settings: Settings, count: int) -> list[kafka_io.Message]:
    runs = [f"run_{uuid.uuid4().hex}" for _ in range(count)]
    return [(r.encode(), encode_event(step_request(r), settings.max_event_bytes)) for r in runs]


def _template(settings: Settings, folder: Path) -> Path:
    """The ImageReady the raw hop fills in: the same event planstream's hop produces."""
    sample = image_ready(step_request(f"run_{uuid.uuid4().hex}"), new_id("job"))
    path = folder / "image_ready.json"
    path.write_bytes(encode_event(sample, settings.max_event_bytes))
    return path


def _child(variant: str, settings: Settings, name: str, template: Path) -> Service:
    if variant.startswith("planstream"):
        return children.faust_hop(name, pooled=variant == "planstream_pool")
    ns = settings.topic_namespace
    return children.raw_hop(
        name,
        [
            "--bootstrap",
            settings.kafka_bootstrap,
            "--in",
            STEP_REQUESTED.full_name(ns),
            "--out",
            IMAGE_READY.full_name(ns),
            "--group",
            f"raw-{name}",
            "--template",
            str(template),
            "--mode",
            variant.removeprefix("raw_"),
            "--linger-ms",
            str(settings.producer_linger_ms),
            "--commit-s",
            str(settings.broker_commit_interval_s),
        ],
    )


async def _measure(
    workspace: Workspace, profile: Profile, variant: str, index: int, folder: Path
) -> HopSample:
    settings = workspace.namespaced(f"hop{index}-{variant.replace('_', '')}")
    ns = settings.topic_namespace
    source, sink = STEP_REQUESTED.full_name(ns), IMAGE_READY.full_name(ns)
    await kafka_io.create_topics(settings, [source, sink, DEAD_LETTER.full_name(ns)])
    warm = _messages(settings, _WARM_UP)
    bulk = _messages(settings, profile.hop_messages)
    paced = _messages(settings, profile.hop_latency_messages)
    name = f"hop{index}-{variant}"
    child = _child(variant, settings, name, _template(settings, folder))
    module = (
        "planstream.dev.bench.hop_app"
        if variant.startswith("planstream")
        else "planstream.dev.bench.raw_hop"
    )
    marker = {name: [module]}
    producer = kafka_io.new_producer(settings)
    arrivals = kafka_io.Arrivals(settings, [sink])
    await producer.start()
    await arrivals.start()
    try:
        async with children.run_children(settings, [child], workspace.logs / "hop"):
            await kafka_io.send_all(producer, source, warm)
            await arrivals.wait_for([k for k, _ in warm], profile.timeout_s)
            before, load = cpu.snapshot(marker), cpu.MachineLoad()
            started = await kafka_io.send_all(producer, source, bulk)
            finished = await arrivals.wait_for([k for k, _ in bulk], profile.timeout_s)
            spent = sum(cpu.snapshot(marker).spent_since(before).values())
            busy = load.cores_busy()
            sent = await kafka_io.send_paced(producer, source, paced, profile.hop_latency_rate)
            await arrivals.wait_for(list(sent), profile.timeout_s)
    finally:
        await arrivals.stop()
        await producer.stop()
    latencies = [(arrivals.times[key][0] - at) * 1000 for key, at in sent.items()]
    everything = [key for key, _ in warm + bulk + paced]
    seen = [key for key, _ in await kafka_io.read_messages(settings, sink)]
    verify_exactly_once(f"hop outputs ({variant})", everything, seen)
    return HopSample(
        per_second=len(bulk) / (finished - started),
        cpu_us=spent / len(bulk) * 1e6,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        cores_busy=busy,
    )


async def run_hop(workspace: Workspace, profile: Profile) -> Figure:
    figure = Figure("hop", "Hop cost: one agent hop (decode, validate, produce)")
    figure.target = Target("planstream >= 0.5 x raw aiokafka messages/s", "messages/s", 0.5)
    samples: dict[str, list[HopSample]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(dir=workspace.folder) as tmp:
        for index in range(profile.repeats):
            shift = index % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                sample = await _measure(workspace, profile, variant, index, Path(tmp))
                samples[variant].append(sample)
                progress(f"hop {index + 1} {variant}: {sample.per_second:.0f} msg/s")
    figure.repeats = profile.repeats
    for mine, baseline, suffix, name in _PAIRS:
        ours, theirs = samples[mine], samples[baseline]
        for metric, unit, better, field in _METRICS:
            figure.pairs.append(
                Pair.of(
                    metric + suffix,
                    unit,
                    (getattr(s, field) for s in ours),
                    (getattr(s, field) for s in theirs),
                    name,
                    better,
                )
            )
    for variant, found in samples.items():
        busy = statistics.median(sample.cores_busy for sample in found)
        figure.details[f"machine_cores_busy:{variant}"] = busy
    figure.details["messages"] = profile.hop_messages
    figure.details["latency_rate_per_s"] = profile.hop_latency_rate
    return figure
