"""What the report says about each figure: the verdict, where the time goes, what would help.

Notes are built from the figure's own measurements (its pairs and details), so a report never
explains a number it did not measure.
"""

from collections.abc import Callable, Mapping
from typing import Any

from planstream.dev.bench.floor_counts import STEP_ZERO
from planstream.dev.bench.report import Report, number, pair_line
from planstream.dev.bench.stats import Figure, Pair

__all__ = ["annotate"]


def _verdict(figure: Figure) -> list[str]:
    if figure.target is None or figure.target_met is None:
        return []
    ratio = figure.target_ratio or 0.0
    word = "met" if figure.target_met else "missed"
    return [f"Target {word}: {figure.target.text} (ratio {ratio:.2f})."]


def _hop(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs if "messages/s" in pair.metric]
    notes += _busy(details)
    notes.append(
        "The planstream hop decodes and validates every event with pydantic (ids, guards),"
        " builds and validates the next event, writes the service's dedup mark (one changelog"
        " record per event) and waits for the broker's acknowledgement before the next event,"
        " as TopicPublisher does, so a job is never marked done before its event is durable."
        " The CPU-per-message rows show what that costs against plain json.loads/json.dumps."
    )
    notes.append(
        "The batched raw hop lets acknowledgements overlap; planstream's pooled agents"
        " (Image I/O, Info Worker, Comparison Worker, Supervisor) overlap them across runs too,"
        " which is the second pair. The first pair is the floor of one event awaited at a time."
    )
    if figure.target_met is False:
        notes.append(
            "What would fix it: less work per event in the agent path (Faust's per-event stream"
            " machinery dominates the CPU per message, pydantic's decode is a small part), or"
            " overlapping the acknowledgement waits by handing events to the WorkPool, as the"
            " pooled row shows."
        )
    return notes


def _pipeline(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs] + _busy(details)
    cpu = details.get("cpu_ms_per_run_by_process")
    if isinstance(cpu, dict) and cpu:
        parts = ", ".join(f"{name} {number(value)} ms" for name, value in sorted(cpu.items()))
        notes.append(f"CPU per run by process (median): {parts}.")
        busiest = max(cpu.items(), key=lambda item: item[1])
        notes.append(
            f"The busiest process is {busiest[0]} ({number(busiest[1])} ms of CPU per run)."
            " A step is not a Kafka hop: Image I/O reads the plan (a 5.6-megapixel PNG) from S3"
            " and decodes its pixels once to refuse a truncated or corrupt image, every service"
            " leases and finishes its job in PostgreSQL and stores or reads artifacts, and three"
            " model calls each fetch the image again. The raw chain only moves the same JSON."
        )
    notes += _floor(details)
    if figure.target_met is False:
        floor = [p for p in figure.pairs if p.metric == "CPU per run (vs the I/O floor)"]
        notes.append(_pipeline_help(floor[0] if floor else None))
    return notes


def _pipeline_help(floor: Pair | None) -> str:
    """What would close the gap to the raw chain: the CPU per run split at the I/O floor (the
    services' medians, the model server's CPU in neither)."""
    if floor is None:
        return (
            "What would help: the I/O floor's figure (not measured in this run) separates the"
            " cost of the run's PostgreSQL, S3, model and Kafka operations from planstream's"
            " own; docs/benchmarks.md has the profile."
        )
    total, floor_total = floor.planstream.median, floor.baseline.median
    ops = [operations.as_dict() for operations in STEP_ZERO.values()]
    postgres = sum(op["postgres"] for op in ops)
    s3 = sum(op["s3_get"] + op["s3_put"] for op in ops)
    model = sum(op["model"] for op in ops)
    return (
        f"What would help: of {number(total)} ms of CPU per run, {number(floor_total)} ms is"
        " the I/O floor (the same operations with the raw clients) and"
        f" {number(total - floor_total)} ms is planstream's own work. Against a chain that"
        " only moves JSON this target stays out of reach while a run makes"
        f" {postgres} PostgreSQL round trips, {s3} S3 requests and {model} model calls: fewer"
        " operations per run (the floor table in docs/benchmarks.md) and cores not shared with"
        " the stack move it; less framework work only moves the part above the floor."
    )


def _floor(details: Mapping[str, Any]) -> list[str]:
    """The I/O floor's CPU by process, and its checked operation counts."""
    cpu = details.get("io_floor_cpu_ms_per_run_by_process")
    if not isinstance(cpu, dict) or not cpu:
        return []
    parts = ", ".join(
        f"{name.removeprefix('io_floor:')} {number(value)} ms"
        for name, value in sorted(cpu.items())
    )
    notes = [
        f"The I/O floor's CPU per run by process (median): {parts}. It makes a planstream"
        " step-0 run's external operations (docs/benchmarks.md counts them per service) with"
        " the raw clients and the same concurrency; what planstream spends above it is its own"
        " work: decoding and validating events, the image check, leases' bookkeeping, Faust's"
        " per-event machinery, logs, metrics and traces."
    ]
    ops = details.get("io_floor_operations")
    if isinstance(ops, dict) and ops:
        runs = next(iter(ops.values())).get("runs")
        notes.append(
            f"Each floor process counted its own operations over {runs} runs (warm-up included)"
            " and they were exactly planstream's per step-0 run (floor_counts.STEP_ZERO)."
        )
    return notes


def _slow(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs]
    limit = details.get("model_concurrency")
    for prefix, what in (("", "Submitted"), ("ready:", "From ImageReady")):
        if f"{prefix}calls" not in details:
            continue
        peaks = {
            k.rsplit(":", 1)[1]: v
            for k, v in details.items()
            if k.startswith(f"{prefix}peak_in_flight:")
        }
        shown = ", ".join(f"{p} {number(float(v))}" for p, v in sorted(peaks.items()))
        notes.append(
            f"{what}: {number(float(details[prefix + 'calls']))} answered calls; the most in"
            f" flight at once: {shown} (limit {limit} per process); a bound that gives each"
            f" service its own pool is {number(float(details[prefix + 'pipelined_bound']))} s;"
            f" the machine kept {number(float(details[prefix + 'machine_cores_busy']))} cores"
            " busy."
        )
    done = details.get("image_io_done")
    if done is not None:
        notes.append(
            f"Submitted: Image I/O had handed on the last run after {number(float(done))} s;"
            " no model call can start for a run Image I/O has not reached, so the model-bound"
            " services wait for Image I/O until then."
        )
    default = details.get("default_model_concurrency")
    notes.append(f"The default model_concurrency is {default} calls per worker process.")
    if figure.target_met is False:
        notes.append(
            "What would fix it: CPU, first for Image I/O's decode (see figure 2), so that runs"
            " reach the model stages as fast as they are submitted, then for the model-bound"
            " services (each call also leases a job, stores two artifacts, records the call, and"
            " the scripted server fetches the image): more cores than this machine has."
        )
    return notes


def _hol(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs]
    hung = details.get("hung_run_latency_s") or []
    if hung:
        shown = ", ".join(number(float(v)) for v in hung)
        notes.append(f"The hung run's own step took {shown} s (it hung, then was retried).")
    notes.append(
        f"{details.get('other_runs')} other runs on partition {details.get('partition')},"
        f" sent evenly over {details.get('window_s')} s while the call hung."
    )
    return notes


def _sink(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs]
    per_row = details.get("sink_cpu_us_per_row")
    if per_row is not None:
        notes.append(
            f"The sink process spent {number(float(per_row))} µs of CPU per row (median):"
            " aiokafka's fetch and pydantic's decode of each record (overlapped with the"
            " previous batch's write), then asyncpg's encoding. The DecisionLog.write row shows"
            " the database side alone: it inserts the rows, then advances pipeline_runs with"
            " one set-based UPDATE per batch; the sink cannot be faster than it."
        )
    if figure.target_met is False:
        notes.append(
            "What would fix it: a cheaper DecisionLog.write (its run UPDATE is the difference"
            " from the raw executemany), or a second sink process (the topic has four"
            " partitions)."
        )
    return notes


def _busy(details: Mapping[str, Any]) -> list[str]:
    busy = {k.split(":", 1)[1]: v for k, v in details.items() if k.startswith("machine_cores")}
    if not busy:
        return []
    shown = ", ".join(f"{name} {number(float(v))}" for name, v in sorted(busy.items()))
    return [f"Cores the whole machine kept busy while measuring (of 2): {shown}."]


def _plain(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    return [pair_line(pair) for pair in figure.pairs] + _busy(details)


_NOTES: dict[str, Callable[[Figure, Mapping[str, Any]], list[str]]] = {
    "hop": _hop,
    "pipeline": _pipeline,
    "slow_model": _slow,
    "head_of_line": _hol,
    "sink": _sink,
    "dedup": _plain,
    "scaling": _plain,
}


def annotate(figure: Figure, report: Report) -> None:
    """Add the verdict and the measured explanation to the figure's notes."""
    if figure.error is not None:
        figure.notes.insert(0, f"Not measured: {figure.error}")
        return
    notes = _verdict(figure) + _NOTES[figure.key](figure, figure.details)
    figure.notes[:0] = notes
