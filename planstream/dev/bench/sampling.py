"""Sampling profiles of a figure's processes: ``py-spy record`` attached to each of them for a
measured window, then a summary of where each one's CPU went.

``planstream bench --sampling-profile`` runs one extra, unmeasured batch of the step-throughput
figure (the figures themselves are never taken while a sampler is attached) and writes, per
process, py-spy's raw collapsed stacks (``<label>-<pid>.txt``: one ``frame;frame;… count`` line
per stack, for flamegraph tools or speedscope) and ``summary.md``: the share of each process's
busy samples by the package they were spent for (the innermost frame outside the standard
library: asyncio's socket write under asyncpg counts for asyncpg) and by leaf function. py-spy
samples running threads only (a thread waiting in the selector or a socket read is idle, not
counted) and reads the processes from outside without pausing them (``--nonblocking``).
"""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Final

from planstream.domain.errors import ConfigurationError

__all__ = ["Sampler", "StackCounts", "py_spy", "read_stacks", "summarize"]

_RATE_HZ: Final = 100
_STOP_TIMEOUT_S: Final = 30.0
_TOP: Final = 15
# "function (path/to/file.py:123)": the function, and the file it is in.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")

StackCounts = Counter[tuple[str, ...]]


def py_spy() -> str:
    """The py-spy executable next to this Python (the dev extra installs it), or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ConfigurationError(
            "sampling profiles need py-spy: pip install 'py-spy>=0.4,<0.5' (the dev extra has it)"
        )
    return found


def read_stacks(text: str) -> StackCounts:
    """py-spy's raw format (``frame;frame;… count`` per line) as stack -> samples."""
    stacks: StackCounts = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _package(frame: str) -> str:
    """Where a frame's code lives: a planstream package, a standard library module, or a
    third-party distribution. py-spy shortens a file to its path below ``sys.path``
    (``asyncpg/pool.py``, ``selectors.py``); a full one is cut after ``site-packages``."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    parts = Path(match["file"]).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if not parts:
        return match["file"]
    top = parts[0].removesuffix(".py")
    if top in ("planstream", "agents", "topics"):
        return ".".join(part.removesuffix(".py") for part in parts[:2])
    if top in sys.stdlib_module_names:
        return f"stdlib {top}"
    return top


def _owner(stack: tuple[str, ...]) -> str:
    """The package the work was done for: the innermost frame outside the standard library
    (asyncio's socket write under asyncpg counts for asyncpg), else the leaf's module."""
    for frame in reversed(stack):
        package = _package(frame)
        if not package.startswith("stdlib ") and not package.startswith("<"):
            return package
    return _package(stack[-1])


def _leaf(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['function']} ({Path(match['file']).name})"


def _shares(counts: Mapping[str, int], total: int) -> list[str]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:_TOP]
    return [f"| {name} | {count / total:.1%} |" for name, count in ranked]


def summarize(profiles: Mapping[str, StackCounts]) -> str:
    """Markdown: per process, its busy samples by the package they were spent for and by leaf
    function."""
    lines = ["# Sampling profile", ""]
    for label, stacks in sorted(profiles.items()):
        total = sum(stacks.values())
        lines += [f"## {label}: {total} busy samples", ""]
        if not total:
            lines += ["(no busy samples)", ""]
            continue
        leaves: Counter[str] = Counter()
        packages: Counter[str] = Counter()
        for stack, count in stacks.items():
            leaves[_leaf(stack[-1])] += count
            packages[_owner(stack)] += count
        lines += ["| spent for (innermost frame outside the stdlib) | share |", "|---|---|"]
        lines += [*_shares(packages, total), ""]
        lines += ["| leaf function (self time) | share |", "|---|---|"]
        lines += [*_shares(leaves, total), ""]
    return "\n".join(lines)


class Sampler:
    """py-spy on every labelled process for each window; the profiles add up across windows."""

    def __init__(self, folder: Path, rate_hz: int = _RATE_HZ) -> None:
        self.folder = folder
        self._rate_hz = rate_hz
        self._executable = py_spy()
        self._files: dict[str, list[Path]] = {}

    @contextlib.asynccontextmanager
    async def window(self, processes: Mapping[int, str]) -> AsyncIterator[None]:
        """Sample ``processes`` (pid -> label) while the block runs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        recorders = []
        for pid, label in processes.items():
            output = self.folder / f"{label}-{pid}.txt"
            self._files.setdefault(label, []).append(output)
            recorders.append(await self._record(pid, output))
        try:
            yield
        finally:
            await asyncio.gather(*(self._stop(recorder) for recorder in recorders))

    async def _record(self, pid: int, output: Path) -> asyncio.subprocess.Process:
        args = ["record", "--pid", str(pid), "--rate", str(self._rate_hz), "--format", "raw"]
        args += ["--output", str(output), "--nonblocking"]
        return await asyncio.create_subprocess_exec(
            self._executable,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # our own Ctrl-C reaches the benchmark, not the recorders
        )

    async def _stop(self, recorder: asyncio.subprocess.Process) -> None:
        """SIGINT makes py-spy write its output and exit."""
        if recorder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(recorder.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(recorder.communicate(), _STOP_TIMEOUT_S)
        except TimeoutError:
            recorder.kill()
            await recorder.wait()

    def profiles(self) -> dict[str, StackCounts]:
        """Every window's stacks, per label (a label's processes and windows summed)."""
        found: dict[str, StackCounts] = {}
        for label, files in self._files.items():
            stacks: StackCounts = Counter()
            for path in _existing(files):
                stacks.update(read_stacks(path.read_text(encoding="utf-8", errors="replace")))
            found[label] = stacks
        return found

    def write_summary(self) -> Path:
        """``summary.md`` beside the raw files; its path."""
        path = self.folder / "summary.md"
        path.write_text(summarize(self.profiles()), encoding="utf-8")
        return path


def _existing(paths: Iterable[Path]) -> list[Path]:
    return [path for path in paths if path.exists()]
