"""Figure 4, head-of-line isolation: one run's model call hangs; do the others wait?

All runs go to one partition (run ids chosen by Kafka's partitioner). The first run's image is
the scripted ``hang`` sample, whose first extraction call answers only after ``hang_s``; the
other runs' step requests follow at a steady pace while it hangs. The figure is the p95 of the
other runs' step latency (request sent to ``DecisionMade`` seen), against the same schedule
whose first run is an ordinary one. The two are measured alternately; a repeat with the hang
checks that the hung run really took ``hang_s`` before it counts.
"""

import asyncio

from planstream.dev.bench import kafka_io
from planstream.dev.bench.harness import Pipeline
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.report import progress
from planstream.dev.bench.stats import BenchmarkFailed, Figure, Pair, Target, percentile

__all__ = ["run_head_of_line"]

_PARTITION = 0


async def _once(pipeline: Pipeline, profile: Profile, hang: bool) -> dict[str, float]:
    await pipeline.reset_model()
    first = await pipeline.seed(1, "hang" if hang else "correct", partition=_PARTITION)
    others = await pipeline.seed(profile.hol_runs, partition=_PARTITION)
    first_sent = await pipeline.submit(first)
    await pipeline.images.wait_for([first[0].key], profile.timeout_s)
    await asyncio.sleep(0.2)  # the first run's extraction call is out
    rate = profile.hol_runs / profile.hol_window_s
    messages = [(run.key, run.request) for run in others]
    sent = await kafka_io.send_paced(pipeline.producer, pipeline.requests_topic, messages, rate)
    await pipeline.decided(others, profile.timeout_s)
    await pipeline.decided(first, profile.timeout_s + profile.hang_s)
    await pipeline.verify(first + others)
    latencies = [pipeline.first_decision(run) - sent[run.key] for run in others]
    first_latency = pipeline.first_decision(first[0]) - first_sent
    if hang and first_latency < profile.hang_s * 0.9:
        raise BenchmarkFailed(f"the hung run took {first_latency:.1f} s, not {profile.hang_s} s")
    return {
        "p95": percentile(latencies, 95) * 1000,
        "p50": percentile(latencies, 50) * 1000,
        "first": first_latency,
    }


async def run_head_of_line(profile: Profile, pipeline: Pipeline) -> Figure:
    figure = Figure(
        "head_of_line",
        f"Head-of-line isolation: one model call hangs {profile.hang_s:g} s",
    )
    figure.target = Target(
        "p95 of the other runs <= 1.2 x without the hang", "p95 step latency", 1.2, at_most=True
    )
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for index in range(profile.repeats):
        for hang in (True, False) if index % 2 == 0 else (False, True):
            results[hang].append(await _once(pipeline, profile, hang))
            p95 = results[hang][-1]["p95"]
            progress(f"head_of_line {index + 1} {'hang' if hang else 'no hang'}: p95 {p95:.0f} ms")
    figure.repeats = profile.repeats
    for metric, key in (("p95 step latency", "p95"), ("p50 step latency", "p50")):
        figure.pairs.append(
            Pair.of(
                metric,
                "ms",
                (r[key] for r in results[True]),
                (r[key] for r in results[False]),
                "same runs, no hang",
                "lower",
            )
        )
    figure.details = {
        "other_runs": profile.hol_runs,
        "window_s": profile.hol_window_s,
        "partition": _PARTITION,
        "hung_run_latency_s": [r["first"] for r in results[True]],
    }
    return figure
