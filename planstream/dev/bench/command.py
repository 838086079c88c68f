"""``planstream bench [--quick] [--out DIR] [--only FIGURES] [--sampling-profile [DIR]]``: run,
print, write the reports (and, asked for, a py-spy profile per process of step throughput)."""

import asyncio
from collections.abc import Sequence
from pathlib import Path

from planstream.dev.bench.profile import PROFILES
from planstream.dev.bench.report import render_table, write_reports
from planstream.dev.bench.runner import FIGURES, run_bench
from planstream.dev.bench.sampling import py_spy
from planstream.dev.reporting import choose
from planstream.dev.stack import commands as stack
from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings

__all__ = ["run_command"]


def _figures(only: str | None) -> Sequence[str]:
    if not only:
        return FIGURES
    chosen = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        raise ConfigurationError(f"unknown figure {', '.join(unknown)}; choose from {FIGURES}")
    return chosen


def run_command(
    settings: Settings,
    *,
    profile: str,
    out: Path,
    only: str | None,
    sampling: Path | None = None,
) -> int:
    """0 when every figure was measured and verified (targets may still be missed)."""
    chosen = choose(PROFILES, profile)
    figures = _figures(only)
    if sampling is not None:
        py_spy()  # missing: say so before the stack and the figures take their minutes
        if "pipeline" not in figures:
            raise ConfigurationError("--sampling-profile samples the pipeline figure: add it")
    if stack.up(settings) != 0:
        return 2
    print(f"bench: profile {chosen.name}, figures {', '.join(figures)}", flush=True)
    report = asyncio.run(run_bench(settings, chosen, Path.cwd(), figures, sampling))
    markdown, data = write_reports(report, out)
    print(render_table(report))
    print(f"bench: wrote {markdown} and {data} ({report.duration_s / 60:.1f} min)")
    return 1 if any(figure.error for figure in report.figures) else 0
