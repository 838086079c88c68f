"""``planstream bench``: every figure in turn on the local stack, then the reports.

The run gets its own workspace (database, bucket, topics, app ids), dropped at the end. A figure
whose own output check fails, or that breaks, is reported as not measured (with the reason)
and the others still run; the command then exits non-zero.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Collection
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from planstream.dev.bench import analysis
from planstream.dev.bench.dedup import run_dedup
from planstream.dev.bench.harness import Pipeline
from planstream.dev.bench.head_of_line import run_head_of_line
from planstream.dev.bench.hop import run_hop
from planstream.dev.bench.pipeline import run_pipeline
from planstream.dev.bench.profile import Profile
from planstream.dev.bench.report import Report, progress
from planstream.dev.bench.sampling import Sampler
from planstream.dev.bench.sink import run_sink
from planstream.dev.bench.slow_model import run_slow_model
from planstream.dev.bench.stats import Figure
from planstream.dev.bench.targets import committed_reference
from planstream.dev.bench.workspace import Workspace, open_workspace
from planstream.dev.reporting import load_average, machine_facts
from planstream.settings import Settings

__all__ = ["FIGURES", "TUNABLES", "run_bench"]

log = logging.getLogger(__name__)

FIGURES = ("hop", "pipeline", "slow_model", "head_of_line", "sink", "dedup", "scaling")
_TITLES = {
    "hop": "Hop cost",
    "pipeline": "Step throughput",
    "slow_model": "Concurrency under a slow model",
    "head_of_line": "Head-of-line isolation",
    "sink": "Decision sink",
    "dedup": "Dedup",
    "scaling": "Scaling",
}
TUNABLES = (
    "broker_commit_interval_s",
    "producer_linger_ms",
    "model_concurrency",
    "sink_batch_size",
    "sink_batch_s",
    "db_pool_min",
    "db_pool_max",
    "topic_partitions",
    "model_timeout_s",
    "lease_s",
    "max_attempts",
)


async def _guarded(key: str, work: Awaitable[Figure]) -> Figure:
    """The figure, or one that says why it was not measured."""
    started = time.monotonic()
    try:
        figure = await work
    except Exception as exc:
        log.exception("benchmark %s failed", key)
        figure = Figure(key, _TITLES[key], error=f"{type(exc).__name__}: {exc}")
    figure.details["wall_time_s"] = round(time.monotonic() - started, 1)
    progress(f"{key} done in {figure.details['wall_time_s']} s")
    return figure


async def _postgres_version(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def _pipeline_figures(
    workspace: Workspace, profile: Profile, wanted: Collection[str], sampler: Sampler | None
) -> dict[str, Figure]:
    found: dict[str, Figure] = {}
    async with Pipeline(workspace, "pipe", profile.hang_s) as pipeline:
        if "pipeline" in wanted or "scaling" in wanted:
            both = await _guarded_pair(run_pipeline(workspace, profile, pipeline, sampler))
            found["pipeline"], scaling = both
            if scaling is not None:
                found["scaling"] = scaling
        if "slow_model" in wanted:
            found["slow_model"] = await _guarded("slow_model", run_slow_model(profile, pipeline))
        if "head_of_line" in wanted:
            found["head_of_line"] = await _guarded(
                "head_of_line", run_head_of_line(profile, pipeline)
            )
    return found


async def _guarded_pair(
    work: Awaitable[tuple[Figure, Figure | None]],
) -> tuple[Figure, Figure | None]:
    holder: list[Figure | None] = []

    async def first() -> Figure:
        pipeline, scaling = await work
        holder.append(scaling)
        return pipeline

    pipeline = await _guarded("pipeline", first())
    if pipeline.error is not None:
        return pipeline, Figure("scaling", _TITLES["scaling"], error=pipeline.error)
    return pipeline, holder[0] if holder else None


async def run_bench(
    base: Settings,
    profile: Profile,
    root: Path,
    wanted: Collection[str] = FIGURES,
    sampling: Path | None = None,
) -> Report:
    """Run the wanted figures with ``profile``; the report (not yet written anywhere). With
    ``sampling``, a py-spy profile per process of one more step-throughput batch goes under
    ``sampling/<run tag>/`` (``planstream.dev.bench.sampling``)."""
    started = time.monotonic()
    report = Report(
        profile=profile.name,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine_facts(base, root),
        settings={name: getattr(base, name) for name in TUNABLES},
        # Read before anything is written: the report in the repository when the run began.
        reference=committed_reference(root / "reports" / "benchmarks.json"),
    )
    report.machine["postgres"] = await _postgres_version(base)
    workspace = await open_workspace(base, root / ".planstream" / "bench")
    report.workspace = workspace.tag
    sampler = Sampler(sampling / workspace.tag) if sampling is not None else None
    found: dict[str, Figure] = {}
    failed = True
    try:
        if "hop" in wanted:
            found["hop"] = await _guarded("hop", run_hop(workspace, profile))
        if {"pipeline", "slow_model", "head_of_line", "scaling"} & set(wanted):
            found |= await _pipeline_figures(workspace, profile, wanted, sampler)
        if "sink" in wanted:
            found["sink"] = await _guarded("sink", run_sink(workspace, profile))
        if "dedup" in wanted:
            found["dedup"] = await _guarded("dedup", run_dedup(workspace, profile))
        failed = any(figure.error for figure in found.values())
        if sampler is not None:
            progress(f"sampling profile: {sampler.write_summary()}")
    finally:
        await asyncio.shield(workspace.close(keep_files=failed))
        if failed:
            progress(f"logs kept in {workspace.folder}")
    report.figures = [found[key] for key in FIGURES if key in found]
    for figure in report.figures:
        analysis.annotate(figure, report)
    report.machine["load_average_at_end"] = list(load_average())
    report.duration_s = time.monotonic() - started
    return report
