"""Every panel query of a dashboard JSON, made runnable against Prometheus outside Grafana.

Grafana fills in variables before it sends a query; a test that evaluates the panels must do the
same: ``$namespace`` becomes the deployment under test, ``$__rate_interval`` and ``$__range``
real durations. A variable left over is an error, not a silent empty answer.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry

from planstream.dev.dashboards.builder import EMPTY_WHEN_HEALTHY
from planstream.services.metrics import REGISTRY

__all__ = [
    "PanelQuery",
    "UnknownVariable",
    "exposed_names",
    "metric_names",
    "panel_queries",
    "substitute",
]

_VARIABLE: Final = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_PLANSTREAM_METRIC: Final = re.compile(r"\bplanstream_[a-z0-9_]+")
_SUFFIXES: Final = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


class UnknownVariable(ValueError):
    """A query names a dashboard variable the evaluation was given no value for."""


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel: where it is, its PromQL, and why it may be empty (or "")."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    empty_when_healthy: str

    @property
    def where(self) -> str:
        """``<dashboard> / <panel> [<refId>]``, for messages."""
        return f"{self.dashboard} / {self.panel} [{self.ref_id}]"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _reason(description: str) -> str:
    """What follows the empty-when-healthy marker in a description, or ""."""
    _, marker, reason = description.partition(EMPTY_WHEN_HEALTHY)
    return reason.strip() if marker else ""


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The PromQL of every panel target (rows have none), in the dashboard's order."""
    found = []
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            found.append(
                PanelQuery(
                    dashboard=str(dashboard.get("title", "")),
                    panel=str(panel.get("title", "")),
                    ref_id=str(target.get("refId", "")),
                    expr=str(target.get("expr", "")),
                    empty_when_healthy=_reason(str(panel.get("description", ""))),
                )
            )
    return found


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with ``$name`` and ``${name}`` replaced; UnknownVariable for one not in values.

    Regex group references such as ``$1`` (label_replace) are not variables and stay.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.isdigit():
            return match.group(0)
        if name not in values:
            raise UnknownVariable(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def metric_names(expr: str) -> set[str]:
    """The planstream series names a PromQL expression reads (``planstream_*``)."""
    return set(_PLANSTREAM_METRIC.findall(expr))


def exposed_names(registry: CollectorRegistry = REGISTRY) -> frozenset[str]:
    """Every planstream series name the processes can expose (``_total``, ``_bucket``, ...)."""
    names: set[str] = set()
    for family in registry.collect():
        if family.name.startswith("planstream_"):
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return frozenset(names)
