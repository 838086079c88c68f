"""Figure 3, concurrency under a slow model: many runs at once, every model call takes 1 s.

The scripted model server of the pipeline harness is told to wait ``slow_delay_s`` before every
chat answer; N runs' step-0 requests go out at once; the figure is the time until every run has
its decision in ``pipeline_decisions``. The ideal the issue names is the model's total seconds
(answered calls x the delay) over the concurrency limit per process (``model_concurrency``).
Also recorded: when Image I/O had handed on the last run, the most calls of each purpose that
were in flight at once, and a tighter bound that counts each service's own pool.
"""

import statistics
from collections import Counter

from planstream.bench import cpu
from planstream.bench.harness import Pipeline, peak_in_flight
from planstream.bench.profile import Profile
from planstream.bench.report import progress
from planstream.bench.stats import Figure, Pair, Series, Target
from planstream.settings import Settings

__all__ = ["run_slow_model"]


async def _once(pipeline: Pipeline, profile: Profile) -> dict[str, float]:
    settings, delay = pipeline.settings, profile.slow_delay_s
    runs = await pipeline.seed(profile.slow_runs)
    load = cpu.MachineLoad()
    started = await pipeline.submit(runs)
    finished = await pipeline.decided(runs, profile.timeout_s)
    busy = load.cores_busy()
    await pipeline.verify(runs)
    images_done = await pipeline.images.wait_for([run.key for run in runs], profile.timeout_s)
    calls = [c for c in await pipeline.model_calls(runs) if c.outcome == "answered"]
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
    results = []
    await pipeline.set_model_delay(profile.slow_delay_s)
    try:
        for _ in range(profile.slow_repeats):
            results.append(await _once(pipeline, profile))
            progress(
                f"slow_model: {results[-1]['seconds']:.1f} s, ideal {results[-1]['ideal']:.1f} s"
            )
    finally:
        await pipeline.set_model_delay(0.0)
    figure.repeats = profile.slow_repeats
    figure.pairs.append(
        Pair(
            "time to decide all",
            "s",
            Series(tuple(r["seconds"] for r in results)),
            Series(tuple(r["ideal"] for r in results)),
            f"ideal: model seconds / {limit} calls per process",
            "lower",
        )
    )
    keys = sorted({key for r in results for key in r} - {"seconds", "ideal"})
    figure.details = {key: statistics.median(r.get(key, 0.0) for r in results) for key in keys}
    figure.details["model_concurrency"] = limit
    figure.details["default_model_concurrency"] = Settings().model_concurrency
    return figure
