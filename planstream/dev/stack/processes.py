"""Detached processes: started in their own session, recorded in a pid file, verified, stopped."""

import asyncio
import contextlib
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

__all__ = [
    "Launch",
    "PidRecord",
    "ServiceFiles",
    "detach",
    "is_alive",
    "live_record",
    "port_open",
    "read_record",
    "run_logged",
    "running",
    "signal_and_wait",
    "spawn",
    "start_ticks",
    "tail",
]

logger = logging.getLogger(__name__)

_POLL_S = 0.1
_KILL_WAIT_S = 5.0
_HEADER = "=== "  # starts the line written to a log before each command's output


@dataclass(frozen=True)
class ServiceFiles:
    """Where one service keeps its pid file, its log and its data: ``<work_dir>/<name>/``."""

    name: str
    folder: Path

    @property
    def pid_file(self) -> Path:
        """The JSON pid record of the process `stack up` started."""
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """stdout and stderr of the service and of its set-up commands, appended."""
        return self.folder / f"{self.name}.log"


@dataclass(frozen=True)
class PidRecord:
    """A process we started: its pid, and its start time that tells it from a later pid reuse."""

    pid: int
    start_ticks: int


@dataclass(frozen=True)
class Launch:
    """How to start a long-running service process."""

    argv: Sequence[str]
    cwd: Path | None = None
    user: str | None = None


def start_ticks(pid: int) -> int | None:
    """A live process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    state, *fields = stat[stat.rindex(")") + 2 :].split()
    return None if state in {"Z", "X"} else int(fields[18])


def is_alive(record: PidRecord) -> bool:
    """Whether the recorded process is still running (and is the one we started)."""
    return start_ticks(record.pid) == record.start_ticks


def read_record(pid_file: Path) -> PidRecord | None:
    """The record in a pid file, or None when the file is missing or unreadable."""
    try:
        data = json.loads(pid_file.read_text())
        return PidRecord(pid=int(data["pid"]), start_ticks=int(data["start_ticks"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_record(pid_file: Path) -> PidRecord | None:
    """The record in a pid file when its process still runs, else None."""
    record = read_record(pid_file)
    return record if record is not None and is_alive(record) else None


def running(files: ServiceFiles) -> PidRecord | None:
    """The live process recorded for a service; a stale pid file is removed."""
    record = live_record(files.pid_file)
    if record is not None:
        return record
    if files.pid_file.exists():
        logger.info("%s: removing stale pid file %s", files.name, files.pid_file)
        files.pid_file.unlink()
    return None


def _identity(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """Popen's user, group and extra_groups that drop to ``user`` (or keep ours for None)."""
    if user is None:
        return None, None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, []


def _open_log(files: ServiceFiles, what: str) -> int:
    """Open the service log for appending, after a header line saying what starts now."""
    files.folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(files.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, f"\n{_HEADER}{datetime.now(UTC).isoformat(timespec='seconds')} {what}\n".encode())
    return fd


def detach(
    launch: Launch, log: IO[bytes] | int, env: Mapping[str, str] | None = None
) -> tuple["subprocess.Popen[bytes]", PidRecord]:
    """Start ``launch`` in its own session, output to ``log``; the process and its record."""
    uid, gid, groups = _identity(launch.user)
    process = subprocess.Popen(
        launch.argv,
        cwd=launch.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    ticks = start_ticks(process.pid)
    # None: it exited at once; the record then reads as dead and the caller sees the exit code.
    return process, PidRecord(pid=process.pid, start_ticks=-1 if ticks is None else ticks)


def spawn(launch: Launch, files: ServiceFiles) -> tuple["subprocess.Popen[bytes]", PidRecord]:
    """Start a service in its own session, output to its log, and record it in its pid file."""
    log_fd = _open_log(files, " ".join(launch.argv))
    try:
        process, record = detach(launch, log_fd)
    finally:
        os.close(log_fd)
    tmp = files.pid_file.with_suffix(".pid.tmp")
    tmp.write_text(json.dumps({"pid": record.pid, "start_ticks": record.start_ticks}))
    tmp.replace(files.pid_file)
    return process, record


async def run_logged(argv: Sequence[str], files: ServiceFiles, user: str | None = None) -> int:
    """Run a set-up command to completion, its output appended to the service log; its exit code."""
    uid, gid, groups = _identity(user)
    log_fd = _open_log(files, " ".join(argv))
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    finally:
        os.close(log_fd)
    return await process.wait()


def _kill(pid: int, sig: signal.Signals) -> None:
    """Send a signal to a process that may have exited since it was checked."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def signal_and_wait(records: Mapping[PidRecord, tuple[signal.Signals, float]]) -> list[PidRecord]:
    """Signal each process, wait up to its grace period, then SIGKILL it; the killed ones."""
    start = time.monotonic()
    for record, (sig, _) in records.items():
        if is_alive(record):
            _kill(record.pid, sig)
    killed = []
    for record, (_, grace_s) in records.items():
        while is_alive(record) and time.monotonic() - start < grace_s:
            time.sleep(_POLL_S)
        if is_alive(record):
            _kill(record.pid, signal.SIGKILL)
            killed.append(record)
    deadline = time.monotonic() + _KILL_WAIT_S
    while any(is_alive(record) for record in killed) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    return killed


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 25) -> str:
    """What the latest command wrote to a log (after its header line), at most ``lines`` lines."""
    try:
        with path.open(errors="replace") as log:
            last = list(deque(log, maxlen=lines))
    except OSError:
        return ""
    headers = [index for index, line in enumerate(last) if line.startswith(_HEADER)]
    return "".join(last[headers[-1] + 1 :] if headers else last)
