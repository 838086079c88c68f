"""The facts a benchmark report records about where it ran: machine, versions, commit, load."""

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from planstream.settings import Settings

__all__ = ["git_commit", "load_average", "machine_facts"]

_PACKAGES = ("faust-streaming", "aiokafka", "asyncpg", "pydantic", "aiohttp", "openai", "moto")


# Tracked files only, and not the reports a benchmark writes.
_GIT_STATUS = ("git", "-C")
_GIT_STATUS_ARGS = ("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports")


def git_commit(root: Path) -> str:
    """The commit checked out at ``root``, with ``-dirty`` when tracked files differ from it
    (the reports a benchmark writes do not count)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [*_GIT_STATUS, str(root), *_GIT_STATUS_ARGS],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine_facts(settings: Settings, root: Path) -> dict[str, object]:
    """Cores, CPU, memory, Python, Kafka and library versions, the commit and the load."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu": _cpu_model(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "kafka": settings.kafka_version,
        "libraries": _versions(),
        "commit": git_commit(root),
        "load_average_at_start": list(load_average()),
    }
