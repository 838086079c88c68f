"""The deploy checks ``make lint`` runs, each a named list of problems."""

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Final

from planstream.dev.deploycheck import chartfiles, helm, layout, manifests
from planstream.dev.deploycheck.compose import compose_problems

__all__ = [
    "REQUIRED_SETTINGS",
    "Check",
    "all_checks",
    "chart_checks",
    "ci_values",
    "defaults_refused",
]

REQUIRED_SETTINGS: Final = ("config.kafka_bootstrap", "config.s3_endpoint")
"""What the chart refuses to render without (planstream's defaults are the local stack's)."""

Check = tuple[str, Callable[[], list[str]]]
"""A check's title and the function that returns its problems."""


def ci_values(chart: Path = layout.CHART) -> list[Path]:
    """The chart's test values: ci/*.yaml (the required settings alone, every option on)."""
    return sorted((chart / "ci").glob("*.yaml"))


def defaults_refused(binary: Path, chart: Path) -> list[str]:
    """The chart's defaults lack the required settings: rendering must fail naming each in turn
    (Helm stops at the first), then succeed once all are given."""
    given: dict[str, str] = {}
    for name in REQUIRED_SETTINGS:
        docs, error = helm.template(binary, chart, [], sets=given)
        if docs or f"{name} is required" not in error:
            return [f"helm template without {name} did not fail naming it: {error or 'rendered'}"]
        given[name] = "example.invalid:1"
    docs, error = helm.template(binary, chart, [], sets=given)
    return [f"helm template with only the required settings failed: {error}"] if error else []


def _rendered(binary: Path, chart: Path, values: Path) -> list[str]:
    problems = []
    for version in manifests.kube_versions():
        docs, error = helm.template(binary, chart, [values], kube_version=version)
        if error:
            return [f"helm template ({values.name}, k8s {version}) failed: {error}"]
        problems += manifests.schema_problems(docs, version)
        if version == manifests.kube_versions()[-1]:
            problems += manifests.chart_problems(docs)
    return problems


def chart_checks(binary: Path, chart: Path = layout.CHART) -> Iterator[Check]:
    """helm lint, the default values' refusal, and each ci values file rendered and checked."""
    yield "helm lint --strict (default values)", partial(helm.lint, binary, chart, [])
    for values in ci_values(chart):
        yield f"helm lint --strict ({values.name})", partial(helm.lint, binary, chart, [values])
    yield (
        "helm template: the defaults need only the required settings",
        partial(defaults_refused, binary, chart),
    )
    oldest, newest = manifests.kube_versions()
    for values in ci_values(chart):
        title = f"helm template ({values.name}) vs Kubernetes {oldest} and {newest} schemas"
        yield title, partial(_rendered, binary, chart, values)


def all_checks(helm_binary: str | None = None) -> Iterator[Check]:
    """Every check, the chart's generated files first (a stale copy explains a later failure)."""
    yield "chart files in sync (make chart-files)", chartfiles.drift
    yield "docker-compose.yml (shape and invariants)", compose_problems
    try:
        binary = helm.find_helm(helm_binary)
    except helm.HelmMissing as exc:
        yield "helm", partial(list, [str(exc)])
        return
    yield from chart_checks(binary)
