"""`planstream stack up | down | status`: the local stack's processes, started, stopped, checked."""

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from planstream.adapters.http.tokens import ensure_local_key
from planstream.dev.stack import processes
from planstream.dev.stack.kafka import Kafka
from planstream.dev.stack.legacy import LegacyServer
from planstream.dev.stack.model import ModelServer
from planstream.dev.stack.postgres import Postgres
from planstream.dev.stack.processes import PidRecord, ServiceFiles
from planstream.dev.stack.prometheus import Prometheus
from planstream.dev.stack.s3 import S3
from planstream.dev.stack.service import Service, ServiceDown, StackError
from planstream.settings import Settings

__all__ = ["SERVICE_TYPES", "build", "down", "status", "up"]

SERVICE_TYPES: Final[tuple[type[Service], ...]] = (
    Kafka,
    Postgres,
    S3,
    ModelServer,
    Prometheus,
    LegacyServer,
)
_READY_POLL_S: Final = 0.5


State = Literal["started", "running", "healthy", "down", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What became of one service: one line of output, and why when it went wrong."""

    service: Service
    state: State
    ok: bool
    note: str = ""


def build(settings: Settings) -> list[Service]:
    """The stack's services, each keeping its files in ``<work_dir>/<name>/``."""
    root = settings.work_dir.expanduser().resolve()
    return [kind(settings, ServiceFiles(kind.name, root / kind.name)) for kind in SERVICE_TYPES]


def _is_local(service: Service) -> bool:
    """Whether `stack up` starts this service (else it is external and only checked)."""
    return service.name in service.settings.stack_services.split(",")


def _line(name: str, state: str, text: str) -> str:
    """One aligned line of output: service, state, then where or what."""
    return f"{name:<12}{state:<9}{text}"


def _report(outcomes: Sequence[Outcome]) -> int:
    """Print one line per service, then any log excerpts on stderr; 0 when every service is fine."""
    for outcome in outcomes:
        first, _, rest = outcome.note.partition("\n")
        note = f"  ({first})" if first else ""
        print(_line(outcome.service.name, outcome.state, outcome.service.address() + note))
        if rest:
            print(rest, end="" if rest.endswith("\n") else "\n", file=sys.stderr)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _check_can_start(services: Sequence[Service]) -> None:
    """Refuse, before starting anything, when a program is missing or a port is taken."""
    for service in services:
        problem = service.missing_prerequisite()
        if problem is not None:
            raise StackError(problem)
        for host, port in service.ports():
            if processes.port_open(host, port):
                raise StackError(
                    f"{host}:{port} is taken by a process this work dir did not start, so "
                    f"{service.name} cannot listen there: stop that process, or leave "
                    f"{service.name} out of PLANSTREAM_STACK_SERVICES to use it as external."
                )


async def _wait_ready(service: Service, alive: Callable[[], bool]) -> None:
    """Poll the readiness probe until it passes; StackError when the process dies or time is up."""
    deadline = time.monotonic() + service.ready_timeout_s
    while alive():
        try:
            await service.ready()
        except ServiceDown as exc:
            if time.monotonic() >= deadline:
                raise StackError(f"not ready after {service.ready_timeout_s:.0f} s: {exc}") from exc
            await asyncio.sleep(_READY_POLL_S)
        else:
            return
    raise StackError("the process exited while starting")


def _failure(service: Service, what: str) -> Outcome:
    """A failed outcome whose note ends with the latest lines of the service log."""
    log = service.files.log_file
    return Outcome(service, "failed", ok=False, note=f"{what}; {log} ends:\n{processes.tail(log)}")


async def _start(service: Service) -> Outcome:
    """Prepare and start a service, wait for it, provision it; a failed start is stopped again."""
    began = time.monotonic()
    service.files.folder.mkdir(parents=True, exist_ok=True)
    try:
        await service.prepare()
    except StackError as exc:
        return _failure(service, str(exc))
    process, record = processes.spawn(service.launch(), service.files)
    try:
        await _wait_ready(service, lambda: process.poll() is None)
        await service.provision()
        await service.healthy()
    except (StackError, ServiceDown) as exc:
        what = str(exc)
        if process.poll() is None:
            stop = {record: (service.stop_signal, service.stop_grace_s)}
            await asyncio.to_thread(processes.signal_and_wait, stop)
            what += ", so it was stopped again"
        else:
            what += f" (exit code {process.returncode})"
        service.files.pid_file.unlink(missing_ok=True)
        return _failure(service, what)
    took = time.monotonic() - began
    return Outcome(service, "started", ok=True, note=f"pid {record.pid}, ready in {took:.1f} s")


async def _reuse(service: Service, record: PidRecord) -> Outcome:
    """Leave a running service alone: wait until it is ready (it may be starting), provision it."""
    try:
        await _wait_ready(service, lambda: processes.is_alive(record))
        await service.provision()
        await service.healthy()
    except (StackError, ServiceDown) as exc:
        return _failure(service, str(exc))
    return Outcome(service, "running", ok=True, note=f"pid {record.pid}")


async def _check(service: Service, record: PidRecord | None) -> Outcome:
    """Probe a service once: healthy or down, for status and for external services."""
    if _is_local(service) and record is None:
        return Outcome(
            service,
            "down",
            ok=False,
            note=f"not running: no live process in {service.files.pid_file}",
        )
    try:
        await service.healthy()
    except ServiceDown as exc:
        return Outcome(service, "down", ok=False, note=str(exc))
    return Outcome(service, "healthy", ok=True, note=f"pid {record.pid}" if record else "external")


def up(settings: Settings) -> int:
    """Start what is not running, wait for real readiness, check the external services; the
    first time, make the key the local stack's tokens are signed with."""
    ensure_local_key(settings)
    services = build(settings)
    records = {service.name: processes.running(service.files) for service in services}
    local = [service for service in services if _is_local(service)]
    _check_can_start([service for service in local if records[service.name] is None])

    async def bring_up() -> list[Outcome]:
        steps = []
        for service in services:
            record = records[service.name]
            if not _is_local(service):
                steps.append(_check(service, None))
            else:
                steps.append(_start(service) if record is None else _reuse(service, record))
        return list(await asyncio.gather(*steps))

    return _report(asyncio.run(bring_up()))


def down(settings: Settings) -> int:
    """Stop the processes `up` started (per their pid files): signal, bounded wait, SIGKILL."""
    services = build(settings)
    records = {service: processes.running(service.files) for service in services}
    targets = {
        record: (service.stop_signal, service.stop_grace_s)
        for service, record in records.items()
        if record
    }
    killed = processes.signal_and_wait(targets)
    for service, record in records.items():
        if record is None:
            note = "not running" if _is_local(service) else "external, left alone"
            print(_line(service.name, "-", note))
            continue
        service.files.pid_file.unlink(missing_ok=True)
        how = (
            f"pid {record.pid}, killed after {service.stop_grace_s:.0f} s"
            if record in killed
            else f"pid {record.pid}"
        )
        print(_line(service.name, "stopped", how))
    return 0


def status(settings: Settings) -> int:
    """Probe every service; 0 only when all are healthy."""
    services = build(settings)

    async def probe_all() -> list[Outcome]:
        records = [processes.live_record(service.files.pid_file) for service in services]
        return list(await asyncio.gather(*map(_check, services, records)))

    return _report(asyncio.run(probe_all()))
