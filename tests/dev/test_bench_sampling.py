"""The benchmark's sampling profiles: py-spy's raw stacks read and summarised by leaf function
and by the package the work was for, and a real py-spy attached to a process that burns CPU in
a known function."""

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from planstream.dev.bench import sampling
from planstream.dev.bench.sampling import Sampler, read_stacks, summarize
from planstream.domain.errors import ConfigurationError

_SITE = "/venv/lib/python3.11/site-packages"
RAW = f"""\
<module> (agents/__main__.py:3);run (planstream/services/image_io.py:80);verify_png (planstream/adapters/png.py:200) 60
<module> (agents/__main__.py:3);_run_once (asyncio/base_events.py:1900);select (selectors.py:468) 25
<module> (agents/__main__.py:3);fetch ({_SITE}/asyncpg/connection.py:690) 15
not a stack line
"""  # noqa: E501


def test_raw_stacks_are_read_and_summarised_by_leaf_and_package() -> None:
    stacks = read_stacks(RAW)
    assert sum(stacks.values()) == 100
    summary = summarize({"image_io": stacks, "sink": read_stacks("")})
    assert "## image_io: 100 busy samples" in summary
    assert "| planstream.adapters | 60.0% |" in summary
    assert "| agents.__main__ | 25.0% |" in summary  # the loop's select, for the service
    assert "| asyncpg | 15.0% |" in summary
    assert "| verify_png (png.py) | 60.0% |" in summary
    assert "## sink: 0 busy samples" in summary


_BURNER = textwrap.dedent(
    """
    def burn_the_cpu() -> None:
        total = 0
        while True:
            total += 1

    print("burning", flush=True)
    burn_the_cpu()
    """
)


async def test_py_spy_samples_a_process_while_the_window_is_open(tmp_path: Path) -> None:
    """A child that only burns CPU in ``burn_the_cpu``: the profile of a one-second window has
    samples, nearly all of them in that function (the window's length is not asserted)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _BURNER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert await child.stdout.readline() == b"burning\n"
        sampler = Sampler(tmp_path / "profiles")
        async with sampler.window({child.pid: "burner"}):
            await asyncio.sleep(1.0)
    finally:
        child.kill()
        await child.wait()
    stacks = sampler.profiles()["burner"]
    total = sum(stacks.values())
    assert total > 0, "py-spy recorded nothing (is ptrace allowed here?)"
    in_burner = sum(count for stack, count in stacks.items() if "burn_the_cpu" in stack[-1])
    assert in_burner / total > 0.9
    summary = sampler.write_summary().read_text(encoding="utf-8")
    assert "burn_the_cpu (<string>)" in summary


def test_a_missing_py_spy_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sampling.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="pip install 'py-spy"):
        sampling.py_spy()
