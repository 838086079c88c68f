"""The alert rules: promtool accepts them, its unit tests pass and cover each alert both ways.

Also checked here, without Prometheus: every alert reads series the processes expose, and has a
severity, a summary, a description and a runbook link to a section of docs/operations.md. Each
check has a self-test on a broken input, so a checker that cannot fail would be seen.
"""

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from planstream.dev.dashboards.queries import exposed_names, metric_names
from planstream.dev.stack.tools import find_promtool
from tests.stackkit import ROOT

RULES_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_PREFIX = "docs/operations.md#"
MISSING_PROMTOOL = (
    "promtool was not found on PATH: install Prometheus's tools with "
    "`apt-get install -y prometheus` (.ci/run does it when missing)"
)


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    tool = find_promtool()
    if tool is None:
        pytest.fail(MISSING_PROMTOOL)
    return subprocess.run(
        [str(tool), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules(rule_docs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Every alerting rule of some rule files, by alert name."""
    return {
        rule["alert"]: rule
        for doc in rule_docs
        for group in doc["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def coverage_gaps(alerts: Iterable[str], test_docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """What the promtool tests lack: an alert never expected to fire, or never expected quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for doc in test_docs:
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    gaps = []
    for alert in sorted(alerts):
        if alert not in fires:
            gaps.append(f"{alert}: no test expects it to fire")
        if alert not in quiet:
            gaps.append(f"{alert}: no test expects it not to fire")
    return gaps


def anchors(markdown: str) -> set[str]:
    """The link anchors of a Markdown file's headings, as GitHub makes them."""
    slugs = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def annotation_problems(alerts: Mapping[str, Mapping[str, Any]], known: set[str]) -> list[str]:
    """Alerts without a severity, summary or description, or whose runbook section is missing."""
    problems = []
    for name, rule in sorted(alerts.items()):
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r} is not one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key}")
        runbook = str(annotations.get("runbook_url", ""))
        if not runbook.startswith(RUNBOOK_PREFIX):
            problems.append(f"{name}: runbook_url {runbook!r} does not point into operations.md")
        elif runbook.removeprefix(RUNBOOK_PREFIX) not in known:
            problems.append(f"{name}: no section #{runbook.removeprefix(RUNBOOK_PREFIX)}")
    return problems


def test_the_rule_and_test_files_are_there() -> None:
    assert [path.name for path in RULE_FILES] == ["planstream.rules.yml"]
    assert TEST_FILES, f"no promtool tests in {RULES_DIR / 'tests'}"


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtools_unit_tests_pass() -> None:
    result = _promtool("test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = alert_rules(_load(path) for path in RULE_FILES)
    assert len(alerts) >= 9
    assert coverage_gaps(alerts, [_load(path) for path in TEST_FILES]) == []


def test_every_rule_names_series_the_processes_expose() -> None:
    alerts = alert_rules(_load(path) for path in RULE_FILES)
    exposed = exposed_names()
    unknown = {name: sorted(metric_names(rule["expr"]) - exposed) for name, rule in alerts.items()}
    assert {name: names for name, names in unknown.items() if names} == {}


def test_every_alert_says_how_bad_what_and_where_its_runbook_is() -> None:
    alerts = alert_rules(_load(path) for path in RULE_FILES)
    assert annotation_problems(alerts, anchors(OPERATIONS.read_text())) == []


# --- Self-tests: each check fails on a broken input. ---------------------------------------

_RULE = """groups:
  - name: t
    rules:
      - alert: Broken
        expr: {expr}
        labels: {{severity: warning}}
        annotations: {{summary: s, description: d, runbook_url: docs/operations.md#x}}
"""

_TEST = """rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'x'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: Broken
        exp_alerts: [{exp_labels: {severity: warning}}]
"""


def test_self_test_promtool_check_refuses_a_broken_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(_RULE.format(expr="rate(x[5m]"))
    result = _promtool("check", "rules", rules)
    assert result.returncode != 0, result.stdout


def test_self_test_promtool_test_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(_RULE.format(expr="x > 1"))
    (tmp_path / "t.test.yml").write_text(_TEST)
    result = _promtool("test", "rules", tmp_path / "t.test.yml")
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr


def test_self_test_a_missing_promtool_fails_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y prometheus"):
        _promtool("--version")


def test_self_test_coverage_sees_an_alert_tested_one_way_only() -> None:
    tests = {"tests": [{"alert_rule_test": [{"alertname": "A", "exp_alerts": [{}]}]}]}
    assert coverage_gaps(["A", "B"], [tests]) == [
        "A: no test expects it not to fire",
        "B: no test expects it to fire",
        "B: no test expects it not to fire",
    ]


def test_self_test_annotations_see_a_dead_runbook_and_a_missing_severity() -> None:
    alerts = alert_rules([yaml.safe_load(_RULE.format(expr="x > 1"))])
    assert annotation_problems(alerts, {"y"}) == ["Broken: no section #x"]
    alerts["Broken"] = {"annotations": {"runbook_url": "http://elsewhere"}}
    assert annotation_problems(alerts, {"x"}) == [
        "Broken: severity None is not one of ['critical', 'info', 'warning']",
        "Broken: no summary",
        "Broken: no description",
        "Broken: runbook_url 'http://elsewhere' does not point into operations.md",
    ]


def test_self_test_anchors_follow_githubs_slugs() -> None:
    text = "# Operating it\n#### PlanstreamDeadLetters\n## Watching it: the dashboards\n"
    assert anchors(text) == {"operating-it", "planstreamdeadletters", "watching-it-the-dashboards"}
