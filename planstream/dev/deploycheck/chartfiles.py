"""The chart's generated files: its copies of the rules and dashboards, and its values schema.

Helm reads no file outside the chart's directory, so the alert rules (``deploy/prometheus/
*.rules.yml``) and the dashboards (``deploy/grafana/dashboards/*.json``), kept and tested where
their owners keep them, are copied under the chart's ``files/``. ``sync`` writes the copies and
``values.schema.json`` (``make chart-files``); ``drift`` names every file that differs from what
``sync`` would write, so that ``make lint`` and the tests fail on a chart left behind.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from planstream.dev.deploycheck import layout
from planstream.dev.deploycheck.valuesschema import values_schema

__all__ = ["Sources", "drift", "sync"]


@dataclass(frozen=True)
class Sources:
    """Where the copied files come from and where the chart is (a test points at copies)."""

    rules: Path = layout.RULES
    dashboards: Path = layout.DASHBOARDS
    chart: Path = layout.CHART

    def folders(self) -> list[tuple[Path, str, Path]]:
        """(source folder, glob, folder of the copies) for each copied kind of file."""
        files = self.chart / "files"
        return [
            (self.rules, layout.RULES_GLOB, files / layout.CHART_RULES.name),
            (self.dashboards, layout.DASHBOARDS_GLOB, files / layout.CHART_DASHBOARDS.name),
        ]


def _expected(sources: Sources) -> dict[Path, bytes]:
    schema = json.dumps(values_schema(), indent=2) + "\n"
    expected = {sources.chart / "values.schema.json": schema.encode()}
    for source, glob, copies in sources.folders():
        for path in sorted(source.glob(glob)):
            expected[copies / path.name] = path.read_bytes()
    return expected


def _stale(sources: Sources, expected: dict[Path, bytes]) -> list[Path]:
    """Copies whose source is gone (anything in a copies folder that sync would not write)."""
    return [
        path
        for _, _, copies in sources.folders()
        for path in sorted(copies.glob("*"))
        if path not in expected
    ]


def drift(sources: Sources | None = None) -> list[str]:
    """What ``sync`` would change, one line each (empty: the chart is up to date)."""
    sources = sources or Sources()
    expected = _expected(sources)
    problems = []
    for path, content in expected.items():
        name = path.relative_to(sources.chart)
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_bytes() != content:
            problems.append(f"{name}: differs from its source")
    stale = _stale(sources, expected)
    problems += [f"{path.relative_to(sources.chart)}: its source is gone" for path in stale]
    if problems:
        problems.append("run `make chart-files` to regenerate the chart's copies")
    return problems


def sync(sources: Sources | None = None) -> list[Path]:
    """Write every generated file and drop copies whose source is gone; returns those changed."""
    sources = sources or Sources()
    expected = _expected(sources)
    changed = []
    for path, content in expected.items():
        if not path.exists() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            changed.append(path)
    for path in _stale(sources, expected):
        path.unlink()
        changed.append(path)
    return changed
