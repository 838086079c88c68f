"""planstream's own services (the ingress and the workers) as child processes.

The one child-process launcher of the dev tools: ``planstream demo``, the integration tests and
the benchmarks run services with ``running``; the fault suite's rig starts its own (recorded in
pid files) but builds their environment, waits for them and stops them with the same functions.
Each service runs with the caller's settings, logs to its own file, counts as started once its log
says it is ready, and is stopped (SIGTERM, then SIGKILL) when the block ends.

Each child gets its own metrics port (``/metrics``, ``/healthz``); ``running`` lists them for
Prometheus in a file_sd targets file under ``<work_dir>/prometheus/targets/``, removed when the
block ends (the fault-suite harness lists its processes the same way, with ``write_targets``).
"""

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from planstream.adapters.kafka import ensure_topics
from planstream.adapters.postgres.db import migrate
from planstream.adapters.storage import Storage
from planstream.dev.isolation import free_port
from planstream.domain.service_names import REPLAY_WORKERS, WORKERS
from planstream.settings import ENV_PREFIX, Settings

__all__ = [
    "WORKERS",  # planstream.domain.service_names.WORKERS, re-exported
    "Service",
    "child_env",
    "everything",
    "ingress",
    "log_holds",
    "namespace_label",
    "planstream_argv",
    "prepare",
    "replay_worker",
    "replay_workers",
    "running",
    "serve_all",
    "service",
    "stop",
    "targets_dir",
    "targets_file",
    "wait_ready",
    "worker",
    "write_targets",
]

_STOP_WAIT_S = 30.0
_KILL_WAIT_S = 30.0
_POLL_S = 0.2
_TARGET_FILES = itertools.count(1)  # one targets file per `running` block of this process


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


def planstream_argv(*args: str) -> tuple[str, ...]:
    """The ``planstream`` command of this Python with ``args``."""
    return (sys.executable, "-m", "planstream.cli", *args)


def ingress() -> Service:
    return Service("ingress", planstream_argv("serve"), "Running on")


def worker(name: str) -> Service:
    return Service(name, planstream_argv("worker", name), "Ready")


def replay_worker(name: str) -> Service:
    """A worker in replay mode (docs/replay.md); its log is ``<name>-replay.log``."""
    return Service(f"{name}-replay", planstream_argv("worker", name, "--replay"), "Ready")


def replay_workers() -> list[Service]:
    """Every worker a replay's attempts go through, in replay mode."""
    return [replay_worker(name) for name in REPLAY_WORKERS]


def service(name: str) -> Service:
    """The ingress, or the worker called ``name``."""
    return ingress() if name == "ingress" else worker(name)


def child_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a planstream process with ``settings`` (no inherited PLANSTREAM_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings.to_env(), PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def log_holds(path: Path, text: str, after: str | None = None) -> bool:
    """Whether the log at ``path`` holds ``text`` (after the last ``after``, when given)."""
    try:
        log = path.read_text(errors="replace")
    except OSError:
        return False
    return text in (log.rsplit(after, 1)[-1] if after else log)


def wait_ready(
    name: str,
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    deadline: float,
    tail: Callable[[], str],
) -> None:
    """Return once ``ready()`` holds; RuntimeError with ``tail()`` (the end of the log) when the
    process exits first or the ``time.monotonic()`` deadline passes."""
    began = time.monotonic()
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited while starting:\n{tail()}")
        if time.monotonic() > deadline:
            waited = time.monotonic() - began
            raise RuntimeError(f"{name} not ready in {waited:.0f} s:\n{tail()}")
        time.sleep(_POLL_S)


def stop(
    processes: Sequence[subprocess.Popen[bytes]],
    grace_s: float = _STOP_WAIT_S,
    sig: signal.Signals = signal.SIGTERM,
) -> None:
    """Send ``sig`` to each process, SIGKILL those still running ``grace_s`` later; reap all."""
    for process in processes:
        process.send_signal(sig)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_KILL_WAIT_S)


def _start(service: Service, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            service.args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _tail(log_path: Path) -> str:
    return f"(log {log_path})\n" + log_path.read_text(errors="replace")[-3_000:]


def targets_dir(settings: Settings) -> Path:
    """Where ``running`` lists its processes' metrics endpoints for Prometheus (file_sd)."""
    return settings.work_dir / "prometheus" / "targets"


def namespace_label(settings: Settings) -> str:
    """The ``namespace`` label of the processes of ``settings`` (their topic namespace)."""
    return settings.topic_namespace.rstrip(".") or "default"


def targets_file(folder: Path, settings: Settings) -> Path:
    """A new targets file in ``folder`` for this process's processes of ``settings``, named
    ``<namespace>-<pid>-<n>.json`` so that the next launcher removes it if this one dies."""
    return folder / f"{namespace_label(settings)}-{os.getpid()}-{next(_TARGET_FILES)}.json"


def write_targets(
    path: Path,
    settings: Settings,
    ports: Mapping[str, int],
    labels: Mapping[str, str] | None = None,
) -> None:
    """Write the file_sd targets of the processes ``ports`` names (name -> metrics port), with
    ``labels`` added to each, at once: Prometheus never reads half a file."""
    anywhere = settings.metrics_host in ("", "0.0.0.0", "::")  # noqa: S104 - a comparison
    host = "127.0.0.1" if anywhere else settings.metrics_host
    namespace = namespace_label(settings)
    entries = [
        {
            "targets": [f"{host}:{port}"],
            "labels": {"process": name, "namespace": namespace, **(labels or {})},
        }
        for name, port in ports.items()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_suffix(".tmp")
    partial_path.write_text(json.dumps(entries, indent=2) + "\n")
    partial_path.replace(path)


def _remove_stale_targets(folder: Path) -> None:
    """Remove the targets files of launchers that died without removing theirs."""
    for path in folder.glob("*-*-*.json"):
        pid = path.stem.rsplit("-", 2)[1]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def everything() -> list[Service]:
    """The ingress and every worker."""
    return [ingress(), *(worker(name) for name in WORKERS)]


def serve_all(settings: Settings, log_dir: Path, *, replay: bool = False) -> None:
    """Prepare, then run the ingress and every worker (and with ``replay`` the replay workers)
    until SIGINT or SIGTERM."""
    asyncio.run(prepare(settings))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    services = everything() + (replay_workers() if replay else [])
    with running(settings, services, log_dir):
        print(
            f"ingress on http://{settings.ingress_host}:{settings.ingress_port}, "
            f"{len(services) - 1} workers; logs in {log_dir}; metrics targets in "
            f"{targets_dir(settings)}; Ctrl-C stops them",
            flush=True,
        )
        stop.wait()


@contextmanager
def running(
    settings: Settings, services: Sequence[Service], log_dir: Path, timeout_s: float = 120
) -> Iterator[None]:
    """Run ``services`` with ``settings`` until the block ends, all started, then all ready;
    each on its own metrics port, listed in a targets file (``targets_dir``) meanwhile."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log_dir / f"{child.name}.log" for child in services]
    ports = {child.name: free_port() for child in services}
    folder = targets_dir(settings)
    _remove_stale_targets(folder)
    targets = targets_file(folder, settings)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for child, log in zip(services, logs, strict=True):
            env = child_env(settings, {"PLANSTREAM_METRICS_PORT": str(ports[child.name])})
            processes.append(_start(child, env, log))
        write_targets(targets, settings, ports)
        deadline = time.monotonic() + timeout_s
        for child, process, log in zip(services, processes, logs, strict=True):
            ready = partial(log_holds, log, child.ready)
            wait_ready(child.name, process, ready, deadline, partial(_tail, log))
        yield
    finally:
        targets.unlink(missing_ok=True)
        stop(processes)
