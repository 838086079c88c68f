"""The benchmark harness: a tiny configuration on the real stack verifies its outputs and
writes both reports. No figure is judged here: the machine is shared, so timings are noise."""

import json
from pathlib import Path

import pytest

from planstream.dev.bench.profile import TINY
from planstream.dev.bench.report import write_reports
from planstream.dev.bench.runner import FIGURES, _guarded, run_bench
from planstream.dev.bench.stats import BenchmarkFailed, verify_exactly_once
from planstream.settings import Settings
from tests.stackkit import ROOT


def test_verification_refuses_lost_duplicated_and_stray_messages() -> None:
    verify_exactly_once("ok", ["a", "b"], ["b", "a"])
    for seen in (["a"], ["a", "b", "b"], ["a", "b", "c"]):
        with pytest.raises(BenchmarkFailed):
            verify_exactly_once("broken", ["a", "b"], seen)


async def test_a_failed_check_reports_no_number() -> None:
    async def broken():
        raise BenchmarkFailed("2 lost")

    figure = await _guarded("sink", broken())
    assert figure.error == "BenchmarkFailed: 2 lost"
    assert figure.as_dict()["verified"] is False
    assert figure.pairs == []


async def test_a_tiny_run_verifies_every_figure_and_writes_both_reports(
    base_settings: Settings, tmp_path: Path
) -> None:
    report = await run_bench(base_settings, TINY, ROOT)
    assert [figure.key for figure in report.figures] == [
        key
        for key in FIGURES
        if key != "scaling"  # the tiny profile does not scale
    ]
    for figure in report.figures:
        assert figure.error is None, figure.error
        assert figure.pairs, figure.key
        for pair in figure.pairs:
            assert len(pair.planstream.values) == len(pair.baseline.values) >= 1
    markdown, data = write_reports(report, tmp_path)
    parsed = json.loads(data.read_text())
    assert [f["key"] for f in parsed["figures"]] == [f.key for f in report.figures]
    assert all(f["verified"] for f in parsed["figures"])
    assert parsed["machine"]["kafka"] == base_settings.kafka_version
    assert parsed["machine"]["commit"]
    text = markdown.read_text()
    assert "## Targets" in text and "| ratio |" in text
    # The run dropped what it made: no Faust data folders or workspace files are left.
    faust = base_settings.work_dir / "faust"
    assert not list(faust.glob(f"planstream-*-{report.workspace}*-data"))
    assert not (ROOT / ".planstream" / "bench" / report.workspace).exists()
