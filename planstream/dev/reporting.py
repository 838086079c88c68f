"""What the benchmark and fault-suite reports share: profiles chosen by name, the facts of the
machine and commit they ran on, Markdown tables, and a Markdown report written with its JSON twin.

Each tool keeps its own profiles, figures and tables (``planstream.dev.bench``,
``planstream.dev.chaos``); this module is the frame around them.
"""

import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from planstream.settings import Settings

__all__ = [
    "Profile",
    "by_name",
    "choose",
    "commit_description",
    "from_environment",
    "load_average",
    "machine_facts",
    "markdown_cell",
    "markdown_table",
    "write_report",
]

_PACKAGES = ("faust-streaming", "aiokafka", "asyncpg", "pydantic", "aiohttp", "openai", "moto")


@dataclass(frozen=True)
class Profile:
    """A named set of sizes, repeats and timeouts; each tool's profile adds its own fields."""

    name: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


P = TypeVar("P", bound=Profile)


def by_name(*profiles: P) -> dict[str, P]:
    """The profiles keyed by their names, in the order given."""
    return {profile.name: profile for profile in profiles}


def choose(profiles: Mapping[str, P], name: str, source: str = "profile") -> P:
    """The profile called ``name``; a ValueError naming ``source`` and the choices otherwise."""
    try:
        return profiles[name]
    except KeyError:
        raise ValueError(f"{source}={name!r}: choose one of {', '.join(profiles)}") from None


def from_environment(
    profiles: Mapping[str, P], environ: Mapping[str, str], variable: str, default: str
) -> P:
    """The profile the environment ``variable`` names (``default`` when unset or empty)."""
    return choose(profiles, environ.get(variable, default) or default, variable)


def commit_description(
    root: Path, *, dirty: str = "-dirty", ignore: Sequence[str] = ("reports",)
) -> str:
    """The commit checked out at ``root``, with ``dirty`` appended when tracked files differ from
    it (changes under ``ignore``, such as the reports a run writes, do not count)."""
    excluded = [f":(exclude){path}" for path in ignore]
    try:
        head = _git(root, "rev-parse", "HEAD")
        changes = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{dirty if changes else ''}" if head else "unknown"


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


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
        "commit": commit_description(root),
        "load_average_at_start": list(load_average()),
    }


def markdown_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def write_report(markdown: Path, text: str, data: object) -> tuple[Path, Path]:
    """Write the Markdown report and its JSON twin (the same path with ``.json``); both paths."""
    markdown.parent.mkdir(parents=True, exist_ok=True)
    twin = markdown.with_suffix(".json")
    markdown.write_text(text, encoding="utf-8")
    twin.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return markdown, twin
