"""The dashboards' JSON, checked without Grafana or Prometheus: generated, well-formed, scoped.

The committed files are what ``make dashboards`` writes (a drift check, as for ``make
schemas``); every panel reads Prometheus through the ``datasource`` variable, every query keeps
to the chosen deployment and names only series the processes expose. tests/system/
test_dashboards.py evaluates the queries on the local Prometheus after real runs.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from planstream.dev.dashboards.boards import BOARDS
from planstream.dev.dashboards.builder import DATASOURCE, Board, Panel, Query, Row, render
from planstream.dev.dashboards.files import DASHBOARDS_DIR, drift, expected_files, write
from planstream.dev.dashboards.queries import (
    PanelQuery,
    UnknownVariable,
    exposed_names,
    metric_names,
    panel_queries,
    substitute,
)
from planstream.services import metrics

FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
SCOPED = re.compile(r'\b(planstream_[a-z0-9_]+|up)\{namespace=~"\$namespace"')
SELECTOR = re.compile(r"\b(planstream_[a-z0-9_]+|up)\b(?!\s*\()")


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def unscoped(query: PanelQuery) -> list[str]:
    """The series a query reads without the deployment filter (``namespace=~"$namespace"``)."""
    scoped = len(SCOPED.findall(query.expr))
    named = SELECTOR.findall(query.expr)
    return named if scoped < len(named) else []


def unknown_series(query: PanelQuery, exposed: frozenset[str]) -> list[str]:
    """The planstream series a query names that no process exposes."""
    return sorted(metric_names(query.expr) - exposed)


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    assert drift() == [], "run `make dashboards` and commit the JSON files"


def test_three_dashboards_with_deploys_file_names() -> None:
    names = [path.name for path in FILES]
    assert names == ["kafka-and-workers.json", "model.json", "pipeline.json"]
    assert all(re.fullmatch(r"[a-z0-9-]+\.json", name) for name in names)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_every_panel_reads_prometheus_through_the_datasource_variable(path: Path) -> None:
    dashboard = _load(path)
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_panel_ids_are_unique(path: Path) -> None:
    ids = [panel["id"] for panel in _load(path)["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_every_query_keeps_to_the_chosen_deployment(path: Path) -> None:
    assert {query.where: unscoped(query) for query in panel_queries(_load(path))} == {
        query.where: [] for query in panel_queries(_load(path))
    }


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_every_query_names_series_the_processes_expose(path: Path) -> None:
    exposed = exposed_names()
    problems = {
        query.where: unknown_series(query, exposed)
        for query in panel_queries(_load(path))
        if unknown_series(query, exposed)
    }
    assert problems == {}


def test_the_panels_empty_on_a_healthy_system_say_so() -> None:
    marked = {
        query.panel: query.empty_when_healthy
        for path in FILES
        for query in panel_queries(_load(path))
        if query.empty_when_healthy
    }
    assert set(marked) == {
        "Dead letters per minute, by service and reason",
        "Lease take-overs, by service",
        "Stale writes refused, by service",
    }
    assert all("fault suite" in reason for reason in marked.values())


def test_the_objectives_are_bucket_boundaries() -> None:
    """Events over 10 KB are counted from the 10000 bucket, and a P95 over 60 s is exact."""
    # _upper_bounds: prometheus_client's buckets of a histogram (no public accessor).
    assert {10_000.0, 50_000.0} <= set(metrics.EVENT_BYTES._upper_bounds)
    assert 60.0 in metrics.STEP_SECONDS._upper_bounds


def test_substitution_fills_variables_and_leaves_regex_groups() -> None:
    expr = (
        'label_replace(rate(x{namespace=~"$namespace"}[$__rate_interval]), "a", "$1", "b", "(.*)")'
    )
    filled = substitute(expr, {"namespace": "t1", "__rate_interval": "1m"})
    assert filled == 'label_replace(rate(x{namespace=~"t1"}[1m]), "a", "$1", "b", "(.*)")'
    assert substitute("x[${__range}]", {"__range": "1h"}) == "x[1h]"


# --- Self-tests: each check fails on a broken input. ---------------------------------------


def test_self_test_drift_sees_an_edited_a_missing_and_a_stray_file(tmp_path: Path) -> None:
    write(tmp_path)
    assert drift(tmp_path) == []
    (tmp_path / "model.json").write_text("{}\n")
    (tmp_path / "pipeline.json").unlink()
    (tmp_path / "old.json").write_text("{}\n")
    assert drift(tmp_path) == [
        "pipeline.json: missing",
        "old.json: made by no board",
        "model.json: differs from the generated dashboard",
    ]


def test_self_test_an_unknown_variable_is_an_error() -> None:
    with pytest.raises(UnknownVariable, match=r"\$service"):
        substitute('x{service="$service"}', {"namespace": "t1"})


def _board(expr: str) -> dict[str, Any]:
    panel = Panel("broken", "a panel for a self-test", [Query(expr)])
    return render(Board("broken", "broken", "", [Row("r", [panel])]))


def test_self_test_a_query_for_a_metric_that_does_not_exist_is_caught() -> None:
    (query,) = panel_queries(
        _board('rate(planstream_no_such_thing_total{namespace=~"$namespace"}[1m])')
    )
    assert unknown_series(query, exposed_names()) == ["planstream_no_such_thing_total"]


def test_self_test_a_query_without_the_deployment_filter_is_caught() -> None:
    (query,) = panel_queries(_board("sum(rate(planstream_decisions_total[1m]))"))
    assert unscoped(query) == ["planstream_decisions_total"]
    (query,) = panel_queries(_board('up{job="planstream"}'))
    assert unscoped(query) == ["up"]


def test_the_boards_render_what_the_files_hold() -> None:
    assert sorted(expected_files()) == [
        f"{board.slug}.json" for board in sorted(BOARDS, key=lambda b: b.slug)
    ]
