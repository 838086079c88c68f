"""What the report says about each figure: the verdict, where the time goes, what would help.

Notes are built from the figure's own measurements (its pairs and details), so a report never
explains a number it did not measure.
"""

from collections.abc import Callable, Mapping
from typing import Any

from planstream.bench.report import Report, number, pair_line
from planstream.bench.stats import Figure

__all__ = ["annotate"]


def _verdict(figure: Figure) -> list[str]:
    if figure.target is None or figure.target_met is None:
        return []
    ratio = figure.target_ratio or 0.0
    word = "met" if figure.target_met else "missed"
    return [f"Target {word}: {figure.target.text} (ratio {ratio:.2f})."]


def _hop(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs if "messages/s" in pair.metric]
    notes.append(
        "The planstream hop decodes and validates every event with pydantic (ids, guards),"
        " builds and validates the next event, writes the service's dedup mark (one changelog"
        " record per event) and waits for the broker's acknowledgement before the next event,"
        " as TopicPublisher does, so a job is never marked done before its event is durable."
        " The CPU-per-message rows show what that costs against plain json.loads/json.dumps."
    )
    notes.append(
        "The batched raw hop lets acknowledgements overlap; planstream's pooled agents"
        " (Info Worker, Comparison Worker, Supervisor) overlap them across runs too, which is"
        " the second pair. Image I/O, which awaits each event in turn, is the first pair's shape."
    )
    return notes


def _pipeline(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    notes = [pair_line(pair) for pair in figure.pairs]
    cpu = details.get("cpu_ms_per_run_by_process")
    if isinstance(cpu, dict) and cpu:
        parts = ", ".join(f"{name} {number(value)} ms" for name, value in sorted(cpu.items()))
        notes.append(f"CPU per run by process (median): {parts}.")
        busiest = max(cpu.items(), key=lambda item: item[1])
        notes.append(
            f"The busiest process is {busiest[0]} ({number(busiest[1])} ms of CPU per run)."
            " A step is not a Kafka hop: Image I/O decodes the whole plan (a 5.6-megapixel PNG)"
            " and reads it from S3, every service leases and finishes its job in PostgreSQL and"
            " stores or reads artifacts, and three model calls each fetch the image again. The"
            " raw chain only moves the same JSON."
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
            " services never get near their limit while Image I/O feeds them one event at a"
            " time."
        )
    default = details.get("default_model_concurrency")
    notes.append(f"The default model_concurrency is {default} calls per worker process.")
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


def _plain(figure: Figure, details: Mapping[str, Any]) -> list[str]:
    return [pair_line(pair) for pair in figure.pairs]


_NOTES: dict[str, Callable[[Figure, Mapping[str, Any]], list[str]]] = {
    "hop": _hop,
    "pipeline": _pipeline,
    "slow_model": _slow,
    "head_of_line": _hol,
    "sink": _plain,
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
