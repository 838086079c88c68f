"""Issue 17's targets, each marked held or missed from what one run measured.

A target reads its figure's pair (or the committed report, for the throughput it must
multiply); a target whose figure was not in the run, or failed, is "not measured" with the
reason, never held. The committed report is read before the run writes anything
(``committed_reference``), so the comparison is with the report in the repository when the
run began.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal

from planstream.dev.bench.stats import Figure, Pair

__all__ = ["GOALS", "Goal", "Mark", "committed_reference", "mark_all"]

Verdict = Literal["held", "missed", "not measured"]
Reading = tuple[float, str] | str
"""A measured value and what it is made of, or why nothing was measured."""
Reader = Callable[[Mapping[str, Figure], Mapping[str, object]], Reading]


@dataclass(frozen=True)
class Mark:
    """One target's verdict in one run."""

    text: str
    measured: str
    verdict: Verdict
    note: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Goal:
    """A target: a value read from the run, and the bound it must keep."""

    text: str
    threshold: float
    at_most: bool
    unit: str
    read: Reader

    def mark(self, figures: Mapping[str, Figure], reference: Mapping[str, object]) -> Mark:
        reading = self.read(figures, reference)
        if isinstance(reading, str):
            return Mark(self.text, "-", "not measured", reading)
        value, note = reading
        held = value <= self.threshold if self.at_most else value >= self.threshold
        shown = f"{value:.1f} {self.unit}" if self.unit == "ms" else f"{value:.2f} x"
        return Mark(self.text, shown, "held" if held else "missed", note)


def _pair(figures: Mapping[str, Figure], key: str, metric: str, baseline: str = "") -> Pair | str:
    """The figure's pair, or why it is not there."""
    figure = figures.get(key)
    if figure is None:
        return f"figure {key} was not in this run"
    if figure.error is not None:
        return f"figure {key} failed: {figure.error}"
    for pair in figure.pairs:
        if pair.metric == metric and pair.baseline_name.startswith(baseline):
            return pair
    return f"figure {key} has no pair {metric!r}"


def _ratio(key: str, metric: str, baseline: str = "") -> Reader:
    """The ratio of one figure's pair (planstream's median over its baseline's)."""

    def read(figures: Mapping[str, Figure], reference: Mapping[str, object]) -> Reading:
        pair = _pair(figures, key, metric, baseline)
        if isinstance(pair, str):
            return pair
        unit = pair.unit
        return pair.ratio, (
            f"planstream {pair.planstream.median:.4g} {unit} against {pair.baseline_name}:"
            f" {pair.baseline.median:.4g} {unit}"
        )

    return read


def _cpu(figures: Mapping[str, Figure], reference: Mapping[str, object]) -> Reading:
    pair = _pair(figures, "pipeline", "CPU per run")
    if isinstance(pair, str):
        return pair
    note = f"median of {len(pair.planstream.values)} repeats"
    floor = _pair(figures, "pipeline", "CPU per run (vs the I/O floor)")
    if not isinstance(floor, str):  # a bound below the floor cannot be held by less framework
        note += f"; the I/O floor alone spends {floor.baseline.median:.1f} ms"
    return pair.planstream.median, note


def _floor(figures: Mapping[str, Figure], reference: Mapping[str, object]) -> Reading:
    pair = _pair(figures, "pipeline", "CPU per run (vs the I/O floor)")
    if isinstance(pair, str):
        return pair
    ours, floor = pair.planstream.median, pair.baseline.median
    return pair.ratio, (
        f"planstream {ours:.1f} ms, the I/O floor {floor:.1f} ms per run: the framework's own"
        f" cost is {ours - floor:.1f} ms"
    )


def _throughput(figures: Mapping[str, Figure], reference: Mapping[str, object]) -> Reading:
    pair = _pair(figures, "pipeline", "runs/s")
    if isinstance(pair, str):
        return pair
    before = reference.get("pipeline_runs_per_s")
    if not isinstance(before, int | float) or before <= 0:
        return "no committed report with a step-throughput figure to compare with"
    return pair.planstream.median / before, (
        f"{pair.planstream.median:.3g} runs/s against {before:.3g} in the committed report"
        f" (commit {str(reference.get('commit'))[:7]}, {reference.get('profile')} profile)"
    )


def _slow(figures: Mapping[str, Figure], reference: Mapping[str, object]) -> Reading:
    reading = _ratio("slow_model", "time to decide all")(figures, reference)
    if isinstance(reading, str):
        return reading
    runs = figures["slow_model"].details.get("runs")
    named = "" if runs in (None, 500) else f"; this profile ran {runs} runs, the target names 500"
    return reading[0], reading[1] + named


GOALS: Final[Sequence[Goal]] = (
    Goal("CPU per step-0 run <= 30 ms", 30.0, True, "ms", _cpu),
    Goal("CPU per step-0 run <= 2 x the I/O floor", 2.0, True, "x", _floor),
    Goal("step-0 throughput >= 4 x the committed report's", 4.0, False, "x", _throughput),
    Goal(
        "500 runs at once, 1 s model: all decided within 1.25 x the ideal", 1.25, True, "x", _slow
    ),
    Goal(
        "pooled agent hop >= 0.3 x the batched raw hop",
        0.3,
        False,
        "x",
        _ratio("hop", "messages/s (pooled agent vs batched raw)"),
    ),
    Goal(
        "head-of-line p95 <= 1.2 x without the hang",
        1.2,
        True,
        "x",
        _ratio("head_of_line", "p95 step latency"),
    ),
    Goal(
        "sink >= 0.5 x raw executemany",
        0.5,
        False,
        "x",
        _ratio("sink", "rows/s (decisions_sink service, from Kafka)", "raw asyncpg executemany"),
    ),
)


def mark_all(
    figures: Sequence[Figure],
    reference: Mapping[str, object],
    goals: Sequence[Goal] = GOALS,
) -> list[Mark]:
    """Every target's mark for the run's figures."""
    by_key = {figure.key: figure for figure in figures}
    return [goal.mark(by_key, reference) for goal in goals]


def committed_reference(path: Path) -> dict[str, object]:
    """The committed report's step-throughput figures and where they come from; empty when
    there is no readable report with that figure."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        figure = next(f for f in data["figures"] if f["key"] == "pipeline" and f["pairs"])
        pairs = {pair["metric"]: pair["planstream"]["median"] for pair in figure["pairs"]}
        return {
            "report": str(path),
            "commit": data["machine"].get("commit"),
            "profile": data.get("profile"),
            "started_at": data.get("started_at"),
            "pipeline_runs_per_s": float(pairs["runs/s"]),
            "pipeline_cpu_ms_per_run": float(pairs["CPU per run"]),
        }
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return {}
