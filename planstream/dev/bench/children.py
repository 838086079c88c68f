"""Child processes of a benchmark: planstream's services, raw hops, the model server.

All run through ``planstream.dev.launcher.running`` (started, waited for, stopped with SIGTERM then
SIGKILL); here that blocking context manager is entered and left in a thread, so the benchmark's
own event loop keeps running while children start.
"""

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from planstream.dev import launcher as services
from planstream.dev.launcher import Service
from planstream.settings import Settings

__all__ = [
    "NOT_FAUST",
    "PIPELINE",
    "faust_hop",
    "model_server",
    "raw_hop",
    "run_children",
    "service_markers",
    "worker",
]

PIPELINE = (
    "image_io",
    "info_worker",
    "comparison_worker",
    "supervisor",
    "decisions_sink",
    "sweeper",
)
"""The services a step-0 decision passes through, and the sweeper that watches their leases
(renders are not part of any figure)."""

NOT_FAUST = ("decisions_sink", "sweeper")
"""Plain asyncio processes: no Faust rebalance recovery to wait for."""


def worker(name: str, copy: int = 1) -> Service:
    """planstream's worker ``name``; copies after the first get their own log file."""
    base = services.worker(name)
    return base if copy == 1 else Service(f"{name}-{copy}", base.args, base.ready)


def service_markers(names: Sequence[str] = PIPELINE) -> dict[str, list[str]]:
    """Command-line fragments telling each worker apart (``python -m agents <name>``)."""
    return {name: [f"agents {name}", f"worker {name}"] for name in names}


def raw_hop(name: str, args: Sequence[str]) -> Service:
    """A raw aiokafka consume-produce hop (``planstream.dev.bench.raw_hop``)."""
    return Service(name, (sys.executable, "-m", "planstream.dev.bench.raw_hop", *args), "Ready")


def faust_hop(name: str, pooled: bool = False) -> Service:
    """planstream's Faust hop (``planstream.dev.bench.hop_app``), configured by the settings."""
    args = (sys.executable, "-m", "planstream.dev.bench.hop_app", *(["pooled"] if pooled else []))
    return Service(name, args, "Ready")


def model_server(name: str = "model_server") -> Service:
    """The scripted model server with a delay the benchmark can change while it runs."""
    return Service(name, (sys.executable, "-m", "planstream.dev.bench.model_server"), "Ready")


@asynccontextmanager
async def run_children(
    settings: Settings, chosen: Sequence[Service], log_dir: Path, timeout_s: float = 120
) -> AsyncIterator[None]:
    """``services.running`` in a thread: the children run (and are ready) inside the block."""
    manager = services.running(settings, chosen, log_dir, timeout_s)
    await asyncio.to_thread(manager.__enter__)
    try:
        yield
    except BaseException as exc:
        await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__)
        raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)
