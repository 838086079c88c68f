"""Grafana dashboard JSON from a few plain values: panels in rows, laid out on Grafana's grid.

Every query reaches Prometheus through the dashboard's ``datasource`` variable and keeps to the
deployment the ``namespace`` variable picks (``All`` matches series without that label too, as
in compose and the chart), so one JSON file serves the local stack, compose and a cluster.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "DATASOURCE",
    "EMPTY_WHEN_HEALTHY",
    "Board",
    "Panel",
    "Query",
    "Row",
    "Threshold",
    "render",
    "selector",
]

DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
EMPTY_WHEN_HEALTHY: Final = "Empty on a healthy system:"
"""Where a panel's description says why no series is its normal state (the fault suite fills it)."""
_SCHEMA_VERSION: Final = 39
_GRID_WIDTH: Final = 24
_PANEL_HEIGHT: Final = 8
_ROW_HEIGHT: Final = 1

Unit = Literal[
    "none", "short", "s", "percentunit", "bytes", "decbytes", "reqps", "ops", "currencyUSD"
]


def selector(metric: str, *matchers: str) -> str:
    """``metric{namespace=~"$namespace", mode!="replay", <matchers>}``: the series of the chosen
    deployments' production (a replay process labels its series ``mode="replay"``,
    docs/replay.md; a series without the label matches ``!=``)."""
    return metric + "{" + ", ".join(('namespace=~"$namespace"', 'mode!="replay"', *matchers)) + "}"


@dataclass(frozen=True)
class Query:
    """One PromQL target and its legend (``{{label}}`` placeholders)."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Threshold:
    """A line on a time series (or a colour step on a stat) at ``value``: an objective, a limit."""

    value: float
    color: str = "red"


@dataclass(frozen=True)
class Panel:
    """A time series or stat panel; ``empty_when_healthy`` says why it may show no series."""

    title: str
    description: str
    queries: Sequence[Query]
    unit: Unit = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    thresholds: Sequence[Threshold] = ()
    width: int = 12
    stacked: bool = False
    empty_when_healthy: str = ""


@dataclass(frozen=True)
class Row:
    """A titled band of panels, laid out left to right and wrapped at the grid's width."""

    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True)
class Board:
    """One dashboard: its file name (``<slug>.json``), uid, title and rows."""

    slug: str
    title: str
    description: str
    rows: Sequence[Row]
    tags: Sequence[str] = field(default_factory=lambda: ("planstream",))


def _target(query: Query, index: int) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": True,
        "refId": chr(ord("A") + index),
    }


def _thresholds(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": mark.color, "value": mark.value} for mark in panel.thresholds]
    return {"mode": "absolute", "steps": steps}


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 10,
            "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "stat":
        return {
            "colorMode": "value",
            "graphMode": "area",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
    return {
        "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _description(panel: Panel) -> str:
    if not panel.empty_when_healthy:
        return panel.description
    return f"{panel.description} {EMPTY_WHEN_HEALTHY} {panel.empty_when_healthy}"


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "description": _description(panel),
        "fieldConfig": _field_config(panel),
        "gridPos": {"h": _PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": _options(panel),
        "targets": [_target(query, index) for index, query in enumerate(panel.queries)],
        "title": panel.title,
        "type": panel.kind,
    }


def _panels(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows and their panels with ids from 1 and grid positions, top to bottom."""
    laid_out: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        laid_out.append(
            {
                "collapsed": False,
                "gridPos": {"h": _ROW_HEIGHT, "w": _GRID_WIDTH, "x": 0, "y": y},
                "id": len(laid_out) + 1,
                "panels": [],
                "title": row.title,
                "type": "row",
            }
        )
        y += _ROW_HEIGHT
        x = 0
        for panel in row.panels:
            if x + panel.width > _GRID_WIDTH:
                x, y = 0, y + _PANEL_HEIGHT
            laid_out.append(_panel(panel, len(laid_out) + 1, x, y))
            x += panel.width
        y += _PANEL_HEIGHT
    return laid_out


def _variables() -> list[dict[str, Any]]:
    return [
        {
            "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
            "hide": 0,
            "label": "Data source",
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "type": "datasource",
        },
        {
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DATASOURCE,
            "definition": "label_values(planstream_build_info, namespace)",
            "hide": 0,
            "includeAll": True,
            "label": "Deployment",
            "multi": True,
            "name": "namespace",
            "options": [],
            "query": {
                "query": "label_values(planstream_build_info, namespace)",
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "refresh": 2,
            "sort": 1,
            "type": "query",
        },
    ]


def render(board: Board) -> dict[str, Any]:
    """The dashboard's JSON model, as Grafana's file provisioning and sidecar load it."""
    return {
        "annotations": {"list": []},
        "description": board.description,
        "editable": False,
        "graphTooltip": 1,
        "links": [],
        "panels": _panels(board.rows),
        "refresh": "30s",
        "schemaVersion": _SCHEMA_VERSION,
        "tags": list(board.tags),
        "templating": {"list": _variables()},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": board.title,
        "uid": f"planstream-{board.slug}",
        "version": 1,
    }
