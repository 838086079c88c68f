"""Processes the fault suite starts itself, by name, with pid files: start, kill -9, stop, pause.

Every process the harness starts is recorded in ``<root>/run/<name>.pid`` (pid and start time,
so a reused pid is never signalled) and logs to ``<root>/logs/<name>.log``. Only those processes
are ever signalled: never a broad name, never the shared stack. ``python -m planstream.dev.chaos.rig
ROOT`` stops whatever a crashed session left behind. Waiting for readiness and the stop sequence
are the launcher's (``planstream.dev.launcher``).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from planstream.dev import launcher
from planstream.dev.stack.processes import Launch, PidRecord, detach, is_alive, read_record

__all__ = ["Proc", "Rig", "cleanup"]


def _start_line(name: str, number: int) -> str:
    """The line the rig writes to a log before the ``number``-th start of ``name``."""
    return f"=== chaos rig: start #{number} of {name}"


@dataclass
class Proc:
    """One process the rig started."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    log: Path
    cwd: Path | None = None
    user: str | None = None
    popen: "subprocess.Popen[bytes] | None" = None
    record: PidRecord | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    reaped: bool = False

    @property
    def pid(self) -> int:
        assert self.record is not None, f"{self.name} was never started"
        return self.record.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()


def _wait_exit(popen: "subprocess.Popen[bytes]", timeout_s: float) -> int | None:
    try:
        return popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


class Rig:
    """Starts and signals the processes of one fault-suite session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_dir = root / "run"
        self.log_dir = root / "logs"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Proc] = {}

    # -- starting ------------------------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        ready: Callable[[Proc], bool] | None = None,
        timeout_s: float = 180.0,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> Proc:
        """Start ``argv`` as ``name`` (replacing a dead one); wait until ``ready`` holds."""
        old = self.procs.get(name)
        if old is not None and old.alive():
            raise RuntimeError(f"{name} is already running (pid {old.pid})")
        proc = Proc(name, tuple(argv), dict(env), self.log_dir / f"{name}.log", cwd, user)
        if old is not None:
            proc.starts, proc.exits = old.starts, old.exits
        self._spawn(proc)
        self.procs[name] = proc
        if ready is not None:
            self.wait_ready(proc, ready, timeout_s)
        return proc

    def _spawn(self, proc: Proc) -> None:
        with proc.log.open("ab") as log:
            log.write(f"\n{_start_line(proc.name, proc.starts + 1)}\n".encode())
            log.flush()
            launch = Launch(proc.argv, proc.cwd, proc.user)
            proc.popen, proc.record = detach(launch, log, proc.env)
        proc.starts += 1
        proc.reaped = False
        pid_file = self.run_dir / f"{proc.name}.pid"
        data = {"pid": proc.record.pid, "start_ticks": proc.record.start_ticks, "argv": proc.argv}
        pid_file.write_text(json.dumps(data))

    def wait_ready(self, proc: Proc, ready: Callable[[Proc], bool], timeout_s: float) -> None:
        assert proc.popen is not None, f"{proc.name} was never started"
        launcher.wait_ready(
            proc.name,
            proc.popen,
            lambda: ready(proc),
            time.monotonic() + timeout_s,
            lambda: self.tail(proc.name),
        )

    def restart(
        self,
        name: str,
        env: Mapping[str, str] | None = None,
        *,
        ready: Callable[[Proc], bool] | None = None,
        timeout_s: float = 180.0,
    ) -> Proc:
        """Start ``name`` again (after it died or was stopped), optionally with another env."""
        old = self.procs[name]
        if old.alive():
            raise RuntimeError(f"{name} is still running")
        return self.start(
            name,
            old.argv,
            env if env is not None else old.env,
            ready=ready,
            timeout_s=timeout_s,
            cwd=old.cwd,
            user=old.user,
        )

    # -- signals -------------------------------------------------------------------------------
    def send(self, name: str, sig: signal.Signals) -> None:
        proc = self.procs[name]
        if proc.record is not None and is_alive(proc.record):
            os.kill(proc.record.pid, sig)

    def kill(self, name: str, timeout_s: float = 30.0) -> int | None:
        """``kill -9`` and reap; the exit code (-9)."""
        self.send(name, signal.SIGKILL)
        return self._reap(name, timeout_s)

    def stop(
        self, name: str, grace_s: float = 30.0, sig: signal.Signals = signal.SIGTERM
    ) -> int | None:
        """Ask it to stop (SIGTERM by default), then SIGKILL after ``grace_s``."""
        proc = self.procs[name]
        if proc.popen is not None and proc.alive():
            launcher.stop([proc.popen], grace_s, sig)
        return self._reap(name, timeout_s=30.0)

    def pause(self, name: str) -> None:
        self.send(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.send(name, signal.SIGCONT)

    def wait_exit(self, name: str, timeout_s: float) -> int | None:
        """The exit code once the process exits by itself (a crash point), None on timeout."""
        proc = self.procs[name]
        assert proc.popen is not None
        code = _wait_exit(proc.popen, timeout_s)
        if code is not None:
            self._reap(name, 0)
        return code

    def _reap(self, name: str, timeout_s: float) -> int | None:
        proc = self.procs[name]
        if proc.popen is None:
            return None
        code = _wait_exit(proc.popen, timeout_s)
        if code is not None and not proc.reaped:
            proc.exits.append(code)
            proc.reaped = True
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        return code

    def close(self) -> None:
        """Stop every process still running (SIGCONT first, for paused ones)."""
        for name, proc in reversed(list(self.procs.items())):
            if proc.alive():
                self.send(name, signal.SIGCONT)
                self.stop(name, grace_s=15.0)

    # -- logs ----------------------------------------------------------------------------------
    def log_text(self, name: str) -> str:
        path = self.procs[name].log if name in self.procs else self.log_dir / f"{name}.log"
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, name: str, chars: int = 3_000) -> str:
        return self.log_text(name)[-chars:]

    def log_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log"))


def log_says(text: str, *, after_start: bool = True) -> Callable[[Proc], bool]:
    """Ready when the log of the latest start holds ``text``."""

    def ready(proc: Proc) -> bool:
        marker = _start_line(proc.name, proc.starts) if after_start else None
        return launcher.log_holds(proc.log, text, marker)

    return ready


def http_ready(url: str) -> Callable[[Proc], bool]:
    """Ready when ``GET url`` answers 200."""

    def ready(proc: Proc) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                return int(answer.status) == 200
        except (OSError, ValueError):
            return False

    return ready


def cleanup(root: Path) -> list[int]:
    """SIGKILL every live process recorded under ``root/run`` (a crashed session's leftovers)."""
    killed = []
    for pid_file in sorted((root / "run").glob("*.pid")):
        record = read_record(pid_file)
        if record is not None and is_alive(record):
            os.kill(record.pid, signal.SIGCONT)
            os.kill(record.pid, signal.SIGKILL)
            killed.append(record.pid)
        pid_file.unlink(missing_ok=True)
    return killed


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        print(f"{folder}: killed {cleanup(Path(folder)) or 'nothing'}")
