"""Sampling profiles of a figure's processes: ``py-spy record`` attached to each of them for a
measured window, then a summary of where each one's CPU went.

``planstream bench --sampling-profile`` runs one extra, unmeasured batch of the step-throughput
figure (the figures themselves are never taken while a sampler is attached) and writes, per
process, py-spy's raw collapsed stacks (``<label>-<pid>.txt``: one ``frame;frame;… count`` line
per stack, for flamegraph tools or speedscope) and ``summary.md``: the share of each process's
busy samples by leaf function (self time) and by the package the leaf lives in. py-spy samples
running threads only (a thread waiting in the selector or a socket read is idle, not counted)
and reads the processes from outside without pausing them (``--nonblocking``).
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
    """Where a frame's code lives: a site-packages distribution, a planstream package, or the
    standard library module; native frames (no file) as they are."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = Path(match["file"])
    parts = path.parts
    if "site-packages" in parts:
        after = parts[parts.index("site-packages") + 1 :]
        return after[0].removesuffix(".py") if after else str(path)
    for root in ("planstream", "agents", "topics"):
        if root in parts:
            inside = parts[parts.index(root) :]
            return ".".join(inside[:2]).removesuffix(".py")
    return f"stdlib {path.stem}" if path.suffix == ".py" else str(path)


def _leaf(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['function']} ({Path(match['file']).name})"


def _shares(counts: Mapping[str, int], total: int) -> list[str]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:_TOP]
    return [f"| {name} | {count / total:.1%} |" for name, count in ranked]


def summarize(profiles: Mapping[str, StackCounts]) -> str:
    """Markdown: per process, its busy samples by leaf function and by the leaf's package."""
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
            packages[_package(stack[-1])] += count
        lines += ["| package of the leaf frame | share |", "|---|---|"]
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
