"""Where the deploy files are, relative to the checkout this module runs from."""

from pathlib import Path
from typing import Final

__all__ = [
    "CHART",
    "CHART_DASHBOARDS",
    "CHART_RULES",
    "COMPOSE",
    "COMPOSE_PROMETHEUS",
    "DASHBOARDS",
    "DASHBOARDS_GLOB",
    "GRAFANA_PROVISIONING",
    "REPO",
    "RULES",
    "RULES_GLOB",
    "VALUES_SCHEMA",
]

REPO: Final = Path(__file__).resolve().parents[3]
"""The checkout: planstream.dev runs from one only (the wheel leaves it out)."""

CHART: Final = REPO / "deploy" / "helm" / "planstream"
VALUES_SCHEMA: Final = CHART / "values.schema.json"
COMPOSE: Final = REPO / "docker-compose.yml"
COMPOSE_PROMETHEUS: Final = REPO / "deploy" / "compose" / "prometheus.yml"
GRAFANA_PROVISIONING: Final = REPO / "deploy" / "grafana" / "provisioning"

# The alert rules and dashboards, as kept and tested by their owners, and the copies inside
# the chart (Helm reads no file outside its chart directory).
RULES: Final = REPO / "deploy" / "prometheus"
RULES_GLOB: Final = "*.rules.yml"
DASHBOARDS: Final = REPO / "deploy" / "grafana" / "dashboards"
DASHBOARDS_GLOB: Final = "*.json"
CHART_RULES: Final = CHART / "files" / "prometheus"
CHART_DASHBOARDS: Final = CHART / "files" / "dashboards"
