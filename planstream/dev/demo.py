"""``planstream demo``: sample plans through the whole pipeline on the local stack, checked.

Starts the local stack and every service, draws a fresh sample set with every scenario,
submits one run per sample through the ingress (image by presigned POST), follows each run to
the end of step 6 or a block, prints one line per run and a summary, and fails when a run ends
differently from its scenario's expected outcome or is still running at the time limit.
"""

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.http.tokens import mint
from planstream.dev import launcher as services
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import SampleEntry
from planstream.dev.stack import commands as stack
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

__all__ = ["Outcome", "judge", "run_demo"]

_TERMINAL = frozenset({"completed", "blocked", "failed", "rejected"})
_POLL_S = 0.5


@dataclass(frozen=True)
class Outcome:
    """How one demo run ended, read back through the API."""

    sample: SampleEntry
    run_id: str
    status: str
    block_reason: str | None
    decisions: tuple[tuple[int, int, str], ...]
    extraction_calls_step0: int
    cost_usd: float
    seconds: float


def judge(outcome: Outcome) -> str | None:
    """Why the run differs from its scenario's expectation, or None when it matches."""
    expected = outcome.sample.expected
    if outcome.status not in _TERMINAL:
        return f"still {outcome.status} at the time limit"
    if outcome.status != expected.outcome:
        return f"ended {outcome.status}, expected {expected.outcome}"
    if outcome.block_reason != expected.block_reason:
        return f"block reason {outcome.block_reason}, expected {expected.block_reason}"
    if outcome.extraction_calls_step0 != expected.step0_attempts:
        return (
            f"step 0 took {outcome.extraction_calls_step0} extraction calls, "
            f"expected {expected.step0_attempts}"
        )
    return None


def _outcome(sample: SampleEntry, run_id: str, view: dict[str, Any], seconds: float) -> Outcome:
    decisions = tuple((d["step_id"], d["attempt"], d["decision"]) for d in view["decisions"])
    calls = sum(1 for c in view["model_calls"] if c["step_id"] == 0 and c["purpose"] == "extract")
    return Outcome(
        sample=sample,
        run_id=run_id,
        status=view["status"],
        block_reason=view["block_reason"],
        decisions=decisions,
        extraction_calls_step0=calls,
        cost_usd=float(view["cost"]["total_usd"]),
        seconds=seconds,
    )


def _line(outcome: Outcome) -> str:
    steps = len({step for step, _, decision in outcome.decisions if decision == "proceed"})
    decided = " ".join(f"{s}.{a}:{d}" for s, a, d in outcome.decisions) or "-"
    problem = judge(outcome)
    verdict = "ok" if problem is None else f"MISMATCH: {problem}"
    return (
        f"{outcome.run_id}  {outcome.sample.scenario:<19} steps {steps}/7  "
        f"block={outcome.block_reason or '-':<22} {outcome.seconds:6.1f}s  "
        f"${outcome.cost_usd:.4f}  [{decided}]  {verdict}"
    )


async def _follow(
    client: PlanstreamClient, folder: Path, sample: SampleEntry, deadline: float
) -> Outcome:
    started = time.monotonic()
    image = (folder / sample.file).read_bytes()
    upload_id = await client.upload(image, "image/png")
    run_id = await client.create_run(upload_id, request_text=sample.request_text)
    await client.request_step(run_id, 0, idempotency_key=f"{run_id}:step-0")
    while True:
        view = await client.show_run(run_id)
        if view["status"] in _TERMINAL or time.monotonic() > deadline:
            return _outcome(sample, run_id, view, time.monotonic() - started)
        await asyncio.sleep(_POLL_S)


async def _runs(
    settings: Settings, folder: Path, samples: tuple[SampleEntry, ...], timeout_s: float
) -> list[Outcome]:
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        client = PlanstreamClient(base, session, mint(settings, "demo"))
        return list(await asyncio.gather(*(_follow(client, folder, s, deadline) for s in samples)))


def run_demo(settings: Settings, *, count: int, seed: int, timeout_s: float) -> int:
    """The whole demo; 0 when every run ended as its scenario expects."""
    if stack.up(settings) != 0:
        return 2
    asyncio.run(services.prepare(settings))
    root = settings.model_samples_dir
    for old in root.glob("demo-*"):
        shutil.rmtree(old, ignore_errors=True)
    folder = root / f"demo-{seed}"
    manifest = generate(folder, seed=seed, count=count, max_attempts=settings.max_attempts)
    print(f"samples: {len(manifest.samples)} plans in {folder} (seed {seed})")
    log_dir = settings.work_dir / "demo" / "logs"
    started = time.monotonic()
    with services.running(settings, services.everything(), log_dir):
        print(f"services: ingress and {len(WORKERS)} workers up, logs in {log_dir}")
        outcomes = asyncio.run(_runs(settings, folder, manifest.samples, timeout_s))
    for outcome in outcomes:
        print(_line(outcome))
    failed = [o for o in outcomes if judge(o) is not None]
    completed = sum(o.status == "completed" for o in outcomes)
    blocked = sum(o.status == "blocked" for o in outcomes)
    cost = sum(o.cost_usd for o in outcomes)
    print(
        f"summary: {len(outcomes)} runs, {completed} completed, {blocked} blocked, "
        f"{len(failed)} unexpected, ${cost:.4f} of model calls, "
        f"{time.monotonic() - started:.1f}s wall time"
    )
    return 1 if failed else 0
