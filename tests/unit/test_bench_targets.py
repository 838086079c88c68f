"""Issue 17's target marks and the I/O floor's operation check: each can hold, and can fail."""

import json
from pathlib import Path

import pytest

from planstream.dev.bench.analysis import _pipeline_help
from planstream.dev.bench.floor_counts import (
    HOPS,
    KINDS,
    SINK,
    SINK_STATEMENTS_PER_BATCH,
    STEP_ZERO,
    check_counts,
)
from planstream.dev.bench.report import Report, render_markdown, render_table
from planstream.dev.bench.stats import BenchmarkFailed, Figure, Pair
from planstream.dev.bench.targets import GOALS, committed_reference, mark_all

ROOT = Path(__file__).resolve().parents[2]
_RAW = "raw chain of 4 aiokafka hops"
_FLOOR = "I/O floor: the same external operations with the raw clients"
_EXECUTEMANY = "raw asyncpg executemany (same INSERT, same batches)"
_SINK = "rows/s (decisions_sink service, from Kafka)"


def _figures(cpu_ms: float, floor_ms: float, runs_per_s: float, ratio: float) -> list[Figure]:
    """Every figure a target reads; ``ratio`` is each ratio-target's planstream/baseline."""
    pipeline = Figure("pipeline", "Step throughput")
    pipeline.pairs += [
        Pair.of("runs/s", "runs/s", [runs_per_s], [200.0], _RAW),
        Pair.of("CPU per run", "ms", [cpu_ms], [4.0], _RAW, "lower"),
        Pair.of("CPU per run (vs the I/O floor)", "ms", [cpu_ms], [floor_ms], _FLOOR, "lower"),
    ]
    slow = Figure("slow_model", "Slow model", details={"runs": 500})
    slow.pairs.append(Pair.of("time to decide all", "s", [10.0 * ratio], [10.0], "ideal", "lower"))
    hop = Figure("hop", "Hop cost")
    pooled = "messages/s (pooled agent vs batched raw)"
    hop.pairs.append(Pair.of(pooled, "msg/s", [100.0 * ratio], [100.0], "raw batched"))
    hol = Figure("head_of_line", "Head-of-line")
    hol.pairs.append(Pair.of("p95 step latency", "ms", [100 * ratio], [100.0], "no hang", "lower"))
    sink = Figure("sink", "Sink")
    sink.pairs += [
        Pair.of(_SINK, "rows/s", [1000 * ratio], [1000.0], _EXECUTEMANY),
        Pair.of(_SINK, "rows/s", [1.0], [1000.0], "raw asyncpg copy_records_to_table"),
    ]
    return [pipeline, slow, hop, hol, sink]


_REFERENCE = {"pipeline_runs_per_s": 8.0, "commit": "bc61f95", "profile": "full"}


def test_every_target_holds_when_the_run_is_good_enough() -> None:
    # 25 ms of CPU, 1.5 x a 16.7 ms floor, 40 runs/s = 5 x 8; ratios at 1.0 hold the ones
    # bounded above (<= 1.2, 1.25) and those bounded below (>= 0.3, 0.5).
    marks = mark_all(_figures(25.0, 16.7, 40.0, 1.0), _REFERENCE)
    assert [m.verdict for m in marks] == ["held"] * len(GOALS), marks
    assert marks[0].measured == "25.0 ms"
    assert "the I/O floor alone spends 16.7 ms" in marks[0].note
    assert "framework's own cost is 8.3 ms" in marks[1].note
    assert "bc61f95" in marks[2].note


def test_every_target_can_be_missed() -> None:
    # 40 ms of CPU, 4 x a 10 ms floor, 16 runs/s = 2 x 8; ratios at 0.25 miss the lower
    # bounds; at 1.3 the upper ones.
    low = mark_all(_figures(40.0, 10.0, 16.0, 0.25), _REFERENCE)
    high = mark_all(_figures(40.0, 10.0, 16.0, 1.3), _REFERENCE)
    verdicts = {m.text: m.verdict for m in low} | {
        m.text: m.verdict for m in high if m.verdict == "missed"
    }
    assert set(verdicts.values()) == {"missed"}, verdicts
    assert {m.text: m.measured for m in low}["CPU per step-0 run <= 2 x the I/O floor"] == "4.00 x"


def test_the_sink_target_reads_the_executemany_pair_not_copy() -> None:
    marks = {m.text: m for m in mark_all(_figures(25.0, 16.7, 40.0, 1.0), _REFERENCE)}
    assert marks["sink >= 0.5 x raw executemany"].measured == "1.00 x"


def test_a_target_without_its_figure_is_not_measured_never_held() -> None:
    failed = Figure("pipeline", "Step throughput", error="BenchmarkFailed: 2 lost")
    marks = mark_all([failed], {})
    assert {m.verdict for m in marks} == {"not measured"}
    assert "failed: BenchmarkFailed: 2 lost" in marks[0].note
    assert "was not in this run" in marks[-1].note
    no_reference = mark_all(_figures(25.0, 16.7, 40.0, 1.0), {})
    assert no_reference[2].verdict == "not measured"


def test_a_smaller_slow_model_profile_says_so() -> None:
    figures = _figures(25.0, 16.7, 40.0, 1.0)
    figures[1].details["runs"] = 100
    marks = {m.text: m for m in mark_all(figures, _REFERENCE)}
    assert "ran 100 runs, the target names 500" in marks[GOALS[3].text].note


def test_the_report_shows_the_marks() -> None:
    report = Report("quick", "2026-12-06T18:00:00+00:00", {"commit": "abc"}, {})
    report.figures = _figures(40.0, 10.0, 40.0, 1.0)
    report.reference = _REFERENCE
    text = render_markdown(report)
    assert "## Issue 17 targets" in text
    assert "| CPU per step-0 run <= 30 ms | 40.0 ms | **missed** |" in text
    assert "| step-0 throughput >= 4 x the committed report's | 5.00 x | **held** |" in text
    assert "issue 17: CPU per step-0 run <= 2 x the I/O floor: 4.00 x -> missed" in render_table(
        report
    )
    assert [m["verdict"] for m in report.as_dict()["issue_targets"]][:2] == ["missed", "missed"]


def test_the_committed_report_is_the_reference(tmp_path: Path) -> None:
    found = committed_reference(ROOT / "reports" / "benchmarks.json")
    assert isinstance(found["pipeline_runs_per_s"], float) and found["pipeline_runs_per_s"] > 0
    assert found["commit"]
    broken = tmp_path / "benchmarks.json"
    broken.write_text(json.dumps({"figures": [{"key": "pipeline", "pairs": []}]}))
    assert committed_reference(broken) == {}
    assert committed_reference(tmp_path / "missing.json") == {}


@pytest.mark.parametrize("hop", HOPS)
def test_the_floor_check_takes_exactly_planstreams_operations(hop: str) -> None:
    exact = {kind: n * 3 for kind, n in STEP_ZERO[hop].as_dict().items() if n}
    check_counts(hop, 3, exact)
    for kind in KINDS:
        for wrong in (exact.get(kind, 0) + 1, exact.get(kind, 0) - 1):
            if wrong < 0:
                continue
            with pytest.raises(BenchmarkFailed, match=kind):
                check_counts(hop, 3, exact | {kind: wrong})
    with pytest.raises(BenchmarkFailed, match="unknown kinds"):
        check_counts(hop, 3, exact | {"redis": 0})


def test_the_sink_check_counts_statements_per_batch() -> None:
    check_counts(SINK, 10, {"postgres": 2 * SINK_STATEMENTS_PER_BATCH, "kafka_consume": 10}, 2)
    with pytest.raises(BenchmarkFailed):
        check_counts(SINK, 10, {"postgres": 2 * SINK_STATEMENTS_PER_BATCH, "kafka_consume": 10}, 3)
    with pytest.raises(BenchmarkFailed, match="no hop"):
        check_counts("render_worker", 1, {})


def test_the_pipeline_note_splits_the_cpu_at_the_floor_and_counts_the_operations() -> None:
    floor = Pair.of("CPU per run (vs the I/O floor)", "ms", [56.5, 60.0, 50.1], [32.1], _FLOOR)

    note = _pipeline_help(floor)

    assert "of 56.5 ms of CPU per run, 32.1 ms is the I/O floor" in note
    assert "24.4 ms is planstream's own work" in note
    postgres = sum(op.postgres for op in STEP_ZERO.values())
    assert f"{postgres} PostgreSQL round trips" in note
    assert "not measured in this run" in _pipeline_help(None)
