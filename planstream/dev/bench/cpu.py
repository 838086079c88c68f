"""CPU time of child processes, read from /proc (Linux): what a figure's processes spent."""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSnapshot", "MachineLoad", "children", "cpu_seconds", "snapshot"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ')' splits cleanly.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one live process (0 when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the ')' the fields start at "state" (3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def children(parent: int | None = None) -> dict[int, str]:
    """The live direct children of ``parent`` (this process by default): pid -> command line."""
    parent = os.getpid() if parent is None else parent
    found = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[1]) == parent:
            found[int(entry.name)] = _cmdline(int(entry.name))
    return found


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in (_PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class MachineLoad:
    """How many cores the whole machine kept busy (every process, ours or not) since created."""

    def __init__(self) -> None:
        self._start = _machine_jiffies()

    def cores_busy(self) -> float:
        now = _machine_jiffies()
        busy, total = now[0] - self._start[0], now[1] - self._start[1]
        return busy / total * (os.cpu_count() or 1) if total else 0.0


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds per process at one moment; subtract two to get what was spent between."""

    seconds: Mapping[int, float]
    labels: Mapping[int, str]

    def spent_since(self, earlier: "CpuSnapshot") -> dict[str, float]:
        """CPU seconds spent per label since ``earlier`` (processes under one label summed)."""
        spent: dict[str, float] = {}
        for pid, now in self.seconds.items():
            label = self.labels[pid]
            spent[label] = spent.get(label, 0.0) + now - earlier.seconds.get(pid, 0.0)
        return spent


def snapshot(labels: Mapping[str, Iterable[str]]) -> CpuSnapshot:
    """CPU seconds of this process's children, labelled by the first marker in their command line.

    ``labels`` maps a label to command-line fragments (``{"image_io": ["agents image_io"]}``);
    children matching none are left out.
    """
    seconds, named = {}, {}
    for pid, cmdline in children().items():
        for label, markers in labels.items():
            if any(marker in cmdline for marker in markers):
                seconds[pid], named[pid] = cpu_seconds(pid), label
                break
    return CpuSnapshot(seconds, named)
