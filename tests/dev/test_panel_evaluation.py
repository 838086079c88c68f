"""The check of the panels the fault suite fills, without Prometheus: it can fail, and it names
what fails; the harness lists its processes for Prometheus under its own labels.

T03 (tests/chaos/test_crashes.py) runs the check on the local Prometheus after its fault; these
self-tests feed it answers directly, so a panel without series is shown to be reported.
"""

import json
from pathlib import Path
from typing import Any

from planstream.dev.chaos.harness import TARGET_LABELS, Harness
from planstream.dev.chaos.profiles import SHORT
from planstream.dev.dashboards.builder import Board, Panel, Query, Row, render
from planstream.dev.dashboards.evaluation import (
    fault_filled,
    unfilled,
    variables,
    verdict,
)
from planstream.dev.dashboards.files import DASHBOARDS_DIR
from planstream.dev.dashboards.queries import PanelQuery, panel_queries
from planstream.dev.launcher import targets_dir, write_targets
from planstream.settings import Settings

SETTINGS = Settings(topic_namespace="c0123456789.")
VALUES = variables(SETTINGS)


def _query(expr: str, empty_when_healthy: str = "a reason.") -> PanelQuery:
    panel = Panel("p", "a self-test", [Query(expr)], empty_when_healthy=empty_when_healthy)
    (query,) = panel_queries(render(Board("b", "b", "", [Row("r", [panel])])))
    return query


def _answers(by_expr: dict[str, tuple[list[Any], str | None]], asked: list[str]) -> Any:
    async def run(expr: str) -> tuple[list[Any], str | None]:
        asked.append(expr)
        return by_expr.get(expr, ([], None))

    return run


def _all_queries() -> list[PanelQuery]:
    return [
        query
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
        for query in panel_queries(json.loads(path.read_text()))
    ]


async def test_self_test_a_fault_filled_panel_without_series_is_a_failure() -> None:
    query = _query('sum(planstream_lease_takeovers_total{namespace=~"$namespace"})')
    asked: list[str] = []

    failures = await unfilled([query], VALUES, _answers({}, asked), timeout_s=0, poll_s=0)

    assert failures == [
        "b / p [A]: no series after the faults that fill it: "
        "'sum(planstream_lease_takeovers_total{namespace=~\"$namespace\"})'"
    ]
    assert asked == ['sum(planstream_lease_takeovers_total{namespace=~"c0123456789"})']


async def test_self_test_a_refused_query_is_a_failure_at_once() -> None:
    query = _query("sum(")
    asked: list[str] = []
    answers = _answers({"sum(": ([], "bad_data: parse error")}, asked)

    failures = await unfilled([query], VALUES, answers, timeout_s=3600, poll_s=3600)

    assert failures == ["b / p [A]: Prometheus refused the query: bad_data: parse error"]
    assert asked == ["sum("]  # not asked again for an hour


async def test_a_panel_with_series_passes_and_only_the_empty_one_is_reported() -> None:
    filled, empty = _query("filled"), _query("empty")
    answers = _answers({"filled": ([{"metric": {}, "value": [0, "0"]}], None)}, [])

    failures = await unfilled([filled, empty], VALUES, answers, timeout_s=0, poll_s=0)

    assert failures == ["b / p [A]: no series after the faults that fill it: 'empty'"]


def test_empty_by_design_holds_on_a_healthy_system_only() -> None:
    query = _query("x")
    assert verdict(query, [], None)[0] == "empty"
    assert verdict(query, [], None, faults_ran=True)[0] == "fail"
    assert verdict(_query("x", empty_when_healthy=""), [], None)[0] == "fail"


def test_the_fault_filled_panels_are_those_t03_fills_and_say_so() -> None:
    filled = fault_filled(_all_queries())
    assert sorted(query.panel for query in filled) == [
        "Dead letters per minute, by service and reason",
        "Lease take-overs, by service",
        "Stale writes refused, by service",
    ]
    for query in filled:
        assert "T03" in query.empty_when_healthy, query.where
        assert "tests/chaos/test_crashes.py" in query.empty_when_healthy, query.where


def test_the_harness_lists_its_processes_under_its_tag_and_the_suite_label(
    tmp_path: Path,
) -> None:
    base = Settings(work_dir=tmp_path / "work")
    harness = Harness(base, SHORT, tmp_path / "root")
    assert harness.targets.parent == targets_dir(base)
    assert harness.targets.name.startswith(f"{harness.tag}-")
    settings = base.with_overrides(topic_namespace=f"{harness.tag}.")

    write_targets(harness.targets, settings, {"sweeper": 40001}, TARGET_LABELS)

    assert json.loads(harness.targets.read_text()) == [
        {
            "targets": ["127.0.0.1:40001"],
            "labels": {"process": "sweeper", "namespace": harness.tag, "suite": "chaos"},
        }
    ]
