"""Figure 3, concurrency under a slow model: many runs at once, every model call takes 1 s.

The scripted model server of the pipeline harness is told to wait ``slow_delay_s`` before every
chat answer; N runs' step-0 requests go out at once; the figure is the time until every run has
its decision in ``pipeline_decisions``. The ideal the issue names is the model's total seconds
(answered calls x the delay) over the concurrency limit per process (``model_concurrency``).
Also recorded: when Image I/O had handed on the last run, the most calls of each purpose that
were in flight at once, and a tighter bound that counts each service's own pool. A second row
starts the same number of runs from ``ImageReady`` (their images measured and recorded as Image
I/O records them), to clock the model-bound services on their own.
"""

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from planstream.dev.bench import cpu
from planstream.dev.bench.harness import Pipeline
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.report import progress
from planstream.dev.bench.seeding import SeededRun
from planstream.dev.bench.stats import Figure, Pair, Target
from planstream.settings import Settings

__all__ = ["run_slow_model"]

_READY_METRIC = "time to decide all, Image I/O done beforehand"


@dataclass(frozen=True)
class ModelCall:
    purpose: str
    outcome: str
    started: float
    ended: float


def peak_in_flight(calls: Sequence[ModelCall]) -> int:
    """The most calls that were in flight at the same moment."""
    edges = sorted([(c.started, 1) for c in calls] + [(c.ended, -1) for c in calls])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


async def model_calls(pipeline: Pipeline, runs: Sequence[SeededRun]) -> list[ModelCall]:
    """The runs' model calls: purpose, outcome, and when each started and ended (s)."""
    rows = await pipeline.pool.fetch(
        "SELECT purpose, outcome, latency_ms,"
        " extract(epoch FROM created_at)::float8 AS ended"
        " FROM pipeline_model_calls WHERE run_id = ANY($1)",
        [run.run_id for run in runs],
    )
    return [
        ModelCall(r["purpose"], r["outcome"], r["ended"] - r["latency_ms"] / 1000, r["ended"])
        for r in rows
    ]


async def _once(pipeline: Pipeline, profile: Profile, ready: bool) -> dict[str, float]:
    settings, delay = pipeline.settings, profile.slow_delay_s
    if ready:
        runs = await pipeline.seed_ready(profile.slow_runs)
    else:
        runs = await pipeline.seed(profile.slow_runs)
    load = cpu.MachineLoad()
    started = await (pipeline.submit_ready(runs) if ready else pipeline.submit(runs))
    finished = await pipeline.decided(runs, profile.timeout_s)
    busy = load.cores_busy()
    await pipeline.verify(runs)
    images_done = started if ready else await pipeline.images.wait_for([r.key for r in runs], 1.0)
    calls = [c for c in await model_calls(pipeline, runs) if c.outcome == "answered"]
    per_purpose = Counter(call.purpose for call in calls)
    limit = settings.model_concurrency
    result = {
        "seconds": finished - started,
        "ideal": len(calls) * delay / limit,
        # Each service has its own pool: the busiest one bounds the time, plus one call of
        # each other stage for the last run.
        "pipelined_bound": max(per_purpose.values()) * delay / limit
        + (len(per_purpose) - 1) * delay,
        "image_io_done": images_done - started,
        "calls": float(len(calls)),
        "machine_cores_busy": busy,
    }
    for purpose in per_purpose:
        result[f"peak_in_flight:{purpose}"] = float(
            peak_in_flight([c for c in calls if c.purpose == purpose])
        )
    return result


async def run_slow_model(profile: Profile, pipeline: Pipeline) -> Figure:
    limit = pipeline.settings.model_concurrency
    figure = Figure(
        "slow_model",
        f"Concurrency under a slow model: {profile.slow_runs} runs at once, "
        f"{profile.slow_delay_s:g} s per model call",
    )
    figure.target = Target(
        "all decided within 1.5 x the ideal (model seconds / concurrency limit)",
        "time to decide all",
        1.5,
        at_most=True,
    )
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    await pipeline.set_model_delay(profile.slow_delay_s)
    try:
        for index in range(profile.slow_repeats):
            for ready in (False, True) if index % 2 == 0 else (True, False):
                found = await _once(pipeline, profile, ready)
                results[ready].append(found)
                what = "from ImageReady" if ready else "submitted"
                seconds, ideal = found["seconds"], found["ideal"]
                progress(f"slow_model {what}: {seconds:.1f} s, ideal {ideal:.1f} s")
    finally:
        await pipeline.set_model_delay(0.0)
    figure.repeats = profile.slow_repeats
    for ready, metric in ((False, "time to decide all"), (True, _READY_METRIC)):
        figure.pairs.append(
            Pair.of(
                metric,
                "s",
                (r["seconds"] for r in results[ready]),
                (r["ideal"] for r in results[ready]),
                f"ideal: model seconds / {limit} calls per process",
                "lower",
            )
        )
    for ready, prefix in ((False, ""), (True, "ready:")):
        keys = sorted({key for r in results[ready] for key in r} - {"seconds", "ideal"})
        for key in keys:
            values = [r.get(key, 0.0) for r in results[ready]]
            figure.details[prefix + key] = statistics.median(values)
    figure.details["runs"] = profile.slow_runs
    figure.details["model_concurrency"] = limit
    figure.details["default_model_concurrency"] = Settings().model_concurrency
    return figure
