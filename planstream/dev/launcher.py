"""planstream's own services (the ingress and the workers) as child processes.

Used by ``planstream demo`` and the integration tests: each service runs with the caller's
settings, logs to its own file, counts as started once its log says it is ready, and is
stopped (SIGTERM, then SIGKILL) when the block ends.
"""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from planstream.adapters.kafka import ensure_topics
from planstream.adapters.postgres.db import migrate
from planstream.adapters.storage import Storage
from planstream.settings import ENV_PREFIX, Settings

__all__ = [
    "WORKERS",
    "Service",
    "everything",
    "ingress",
    "prepare",
    "running",
    "serve_all",
    "worker",
]

WORKERS = (
    "image_io",
    "info_worker",
    "comparison_worker",
    "supervisor",
    "render_worker",
    "decisions_sink",
    "sweeper",
)
_STOP_WAIT_S = 30.0


@dataclass(frozen=True)
class Service:
    """One child process: what to run and which log line says it is ready."""

    name: str
    args: tuple[str, ...]
    ready: str


async def prepare(settings: Settings) -> None:
    """What the services need before they start: the schema, the topics, the bucket."""
    await migrate(settings.dsn)
    await ensure_topics(settings)
    storage = Storage(settings)
    await storage.start()
    try:
        await storage.ensure_bucket()
    finally:
        await storage.stop()


def ingress() -> Service:
    return Service("ingress", (sys.executable, "-m", "planstream.cli", "serve"), "Running on")


def worker(name: str) -> Service:
    return Service(name, (sys.executable, "-m", "planstream.cli", "worker", name), "Ready")


def _start(service: Service, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    with (log_dir / f"{service.name}.log").open("wb") as log:
        return subprocess.Popen(
            service.args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _wait_ready(
    service: Service, process: subprocess.Popen[bytes], log_dir: Path, deadline: float
) -> None:
    log_path = log_dir / f"{service.name}.log"
    while service.ready not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-3_000:]
            raise RuntimeError(f"{service.name} did not start (log {log_path}):\n{tail}")
        time.sleep(0.2)


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + _STOP_WAIT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def everything() -> list[Service]:
    """The ingress and every worker."""
    return [ingress(), *(worker(name) for name in WORKERS)]


def serve_all(settings: Settings, log_dir: Path) -> None:
    """Prepare, then run the ingress and every worker until SIGINT or SIGTERM."""
    asyncio.run(prepare(settings))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with running(settings, everything(), log_dir):
        print(
            f"ingress on http://{settings.ingress_host}:{settings.ingress_port}, "
            f"{len(WORKERS)} workers; logs in {log_dir}; Ctrl-C stops them",
            flush=True,
        )
        stop.wait()


@contextmanager
def running(
    settings: Settings, services: Sequence[Service], log_dir: Path, timeout_s: float = 120
) -> Iterator[None]:
    """Run ``services`` with ``settings`` until the block ends, all started, then all ready."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings.to_env(), PYTHONUNBUFFERED="1")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for service in services:
            processes.append(_start(service, env, log_dir))
        deadline = time.monotonic() + timeout_s
        for service, process in zip(services, processes, strict=True):
            _wait_ready(service, process, log_dir, deadline)
        yield
    finally:
        _stop(processes)
