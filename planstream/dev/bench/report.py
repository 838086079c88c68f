"""The report: ``benchmarks.md`` and ``benchmarks.json``, and the same table on the terminal."""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from planstream.dev.bench.stats import Figure, Pair, Series
from planstream.dev.bench.targets import Mark, mark_all
from planstream.dev.reporting import markdown_table, write_report

__all__ = [
    "Report",
    "progress",
    "render_markdown",
    "render_table",
    "write_reports",
]


@dataclass
class Report:
    """Everything one ``planstream bench`` run measured, and where and how."""

    profile: str
    started_at: str
    machine: dict[str, object]
    settings: dict[str, object]
    figures: list[Figure] = field(default_factory=list)
    duration_s: float = 0.0
    workspace: str = ""
    reference: dict[str, object] = field(default_factory=dict)
    """The committed report's step throughput when the run began (``targets``)."""

    def marks(self) -> list[Mark]:
        """Issue 17's targets, held or missed in this run."""
        return mark_all(self.figures, self.reference)

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 1),
            "workspace": self.workspace,
            "machine": self.machine,
            "settings": self.settings,
            "figures": [figure.as_dict() for figure in self.figures],
            "reference": self.reference,
            "issue_targets": [mark.as_dict() for mark in self.marks()],
        }


def progress(text: str) -> None:
    """One line of progress on the terminal while the benchmarks run."""
    print(f"bench: {text}", flush=True)


def number(value: float) -> str:
    """A figure at a readable precision."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 0.1 else f"{value:.3g}"


def _series(series: Series, unit: str) -> str:
    spread = "" if len(series.values) == 1 else f" ({number(series.min)} to {number(series.max)})"
    return f"{number(series.median)} {unit}{spread}"


def _verdict(figure: Figure) -> str:
    if figure.error is not None:
        return "not measured"
    met = figure.target_met
    if met is None:
        return "no target" if figure.target is None else "not measured"
    return "**met**" if met else "**missed**"


def _rows(figure: Figure, number_: int) -> list[list[str]]:
    if figure.error is not None:
        return [[str(number_), figure.title, "verification failed", figure.error, "", "", ""]]
    rows = []
    for pair in figure.pairs:
        rows.append(
            [
                str(number_),
                figure.title,
                pair.metric,
                _series(pair.planstream, pair.unit),
                pair.baseline_name,
                _series(pair.baseline, pair.unit),
                f"{pair.ratio:.2f}",
            ]
        )
    return rows


_HEAD = ["#", "figure", "metric", "planstream", "baseline", "baseline value", "ratio"]


def _target_rows(report: Report) -> list[list[str]]:
    rows = []
    for index, figure in enumerate(report.figures, start=1):
        if figure.target is None:
            continue
        ratio = figure.target_ratio
        shown = "-" if ratio is None or figure.error else f"{ratio:.2f}"
        rows.append([str(index), figure.target.text, shown, _verdict(figure)])
    return rows


def _mark_rows(report: Report) -> list[list[str]]:
    shown = {"held": "**held**", "missed": "**missed**", "not measured": "not measured"}
    return [[m.text, m.measured, shown[m.verdict], m.note] for m in report.marks()]


def render_markdown(report: Report) -> str:
    """The report as Markdown: targets, the paired figures, notes, machine and settings."""
    m = report.machine
    lines = [
        "# planstream benchmarks",
        "",
        f"Profile **{report.profile}**, started {report.started_at}, took "
        f"{report.duration_s / 60:.1f} min, commit `{m.get('commit')}`. Each figure is the "
        "median of the repeats named below, with (min to max); planstream and its baseline "
        "were measured alternately in the same run. Method: "
        "[docs/benchmarks.md](../docs/benchmarks.md).",
        "",
        "## Targets",
        "",
        *markdown_table(["#", "target", "ratio", "verdict"], _target_rows(report)),
        "",
        "## Issue 17 targets",
        "",
        *markdown_table(["target", "measured", "verdict", "from"], _mark_rows(report)),
        "",
        "## Figures",
        "",
    ]
    rows = [row for i, f in enumerate(report.figures, 1) for row in _rows(f, i)]
    lines += markdown_table(_HEAD, rows)
    lines += ["", "## Notes", ""]
    for index, figure in enumerate(report.figures, start=1):
        lines.append(f"### {index}. {figure.title} ({figure.repeats} repeats)")
        lines.append("")
        lines += [f"- {note}" for note in figure.notes] or ["- (none)"]
        lines.append("")
    lines += ["## Machine", ""]
    lines += [f"- {key}: {json.dumps(value)}" for key, value in m.items()]
    lines += ["", "## Settings in effect", ""]
    lines += [f"- `{key}` = {json.dumps(value)}" for key, value in report.settings.items()]
    return "\n".join(lines) + "\n"


def render_table(report: Report) -> str:
    """The paired figures and the targets as plain text, for the terminal."""
    rows = [_HEAD] + [row for i, f in enumerate(report.figures, 1) for row in _rows(f, i)]
    widths = [max(len(row[c]) for row in rows) for c in range(len(_HEAD))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    text.append("")
    for number_, target, ratio, verdict in _target_rows(report):
        text.append(f"target {number_}: {target}: ratio {ratio} -> {verdict.strip('*')}")
    for mark in report.marks():
        text.append(f"issue 17: {mark.text}: {mark.measured} -> {mark.verdict} ({mark.note})")
    return "\n".join(text)


def write_reports(report: Report, folder: Path) -> tuple[Path, Path]:
    """Write ``benchmarks.md`` and ``benchmarks.json`` into ``folder``."""
    return write_report(folder / "benchmarks.md", render_markdown(report), report.as_dict())


def pair_line(pair: Pair) -> str:
    """One pair in a sentence (for notes)."""
    return (
        f"{pair.metric}: planstream {_series(pair.planstream, pair.unit)} vs "
        f"{pair.baseline_name} {_series(pair.baseline, pair.unit)} (ratio {pair.ratio:.2f})"
    )
