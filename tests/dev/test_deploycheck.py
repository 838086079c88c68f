"""Each deploy check fails on a broken input: the checks `make lint` runs can fail."""

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from planstream.dev.deploycheck import chartfiles, checks, helm, layout, manifests
from planstream.dev.deploycheck.compose import compose_problems, load

Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def rendered() -> Docs:
    try:
        binary = helm.find_helm()
    except helm.HelmMissing as exc:
        pytest.fail(str(exc))
    docs, error = helm.template(
        binary, layout.CHART, [layout.CHART / "ci" / "all-optional-values.yaml"]
    )
    assert not error, error
    return docs


def first(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    return next(
        doc for doc in docs if doc["kind"] == kind and name in (None, doc["metadata"]["name"])
    )


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def test_lint_fails_when_helm_is_missing(tmp_path: Path) -> None:
    with pytest.raises(helm.HelmMissing, match="make tools"):
        helm.find_helm(str(tmp_path / "helm"))


def test_lint_reports_helms_own_failure(tmp_path: Path) -> None:
    broken = tmp_path / "chart"
    shutil.copytree(layout.CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.nothing.here }}\n")
    problems = helm.lint(helm.find_helm(), broken, [broken / "ci" / "test-values.yaml"])
    assert problems
    assert "nil pointer" in problems[0]


def test_the_required_settings_check_fails_on_a_chart_that_renders_without_them(
    tmp_path: Path,
) -> None:
    binary = helm.find_helm()
    assert checks.defaults_refused(binary, layout.CHART) == []
    lenient = tmp_path / "chart"
    shutil.copytree(layout.CHART, lenient)
    configmap = lenient / "templates" / "configmap.yaml"
    configmap.write_text(configmap.read_text().replace("required ", 'default "x" '))
    problems = checks.defaults_refused(binary, lenient)
    assert problems == [
        "helm template without config.kafka_bootstrap did not fail naming it: rendered"
    ]


def broken_object(docs: Docs, kind: str, path: list[str | int], value: Any) -> Docs:
    docs = copy.deepcopy(docs)
    target: Any = first(docs, kind)
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return docs


@pytest.mark.parametrize(
    ("kind", "path", "value", "complaint"),
    [
        ("Deployment", ["spec", "replicaz"], 1, "'replicaz' was unexpected"),
        ("HorizontalPodAutoscaler", ["spec", "maxReplicas"], "4", "is not of type 'integer'"),
        (
            "PodDisruptionBudget",
            ["spec", "selector", "matchLabel"],
            {},
            "'matchLabel' was unexpected",
        ),
        ("PodMonitor", ["spec", "podMetricsEndpoints", 0, "intervall"], "1m", "unexpected"),
        ("PrometheusRule", ["spec", "groups", 0, "rules", 0, "for"], "ten", "does not match"),
    ],
)
def test_the_schema_check_rejects_a_broken_object(
    rendered: Docs, kind: str, path: list[str | int], value: Any, complaint: str
) -> None:
    assert manifests.schema_problems(rendered, "1.37.0") == []
    problems = manifests.schema_problems(broken_object(rendered, kind, path, value), "1.37.0")
    assert len(problems) == 1
    assert complaint in problems[0]


def test_the_schema_check_rejects_a_kind_it_cannot_check(rendered: Docs) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert manifests.schema_problems([*rendered, widget], "1.37.0") == [
        "Widget/w: no schema to check it against: Couldn't find schema for kind Widget with api "
        "version example.com/v1 for kubernetes version 1.37"
    ]


def without_sweeper(docs: Docs) -> Docs:
    return [doc for doc in docs if "sweeper" not in doc["metadata"]["name"]]


def without_probe(docs: Docs) -> Docs:
    docs = copy.deepcopy(docs)
    del container(first(docs, "Deployment", "planstream-supervisor"))["livenessProbe"]
    return docs


def short_grace(docs: Docs) -> Docs:
    docs = copy.deepcopy(docs)
    first(docs, "Deployment", "planstream-image-io")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ] = 45
    return docs


def without_budget(docs: Docs) -> Docs:
    return [
        doc
        for doc in docs
        if (doc["kind"], doc["metadata"]["name"]) != ("PodDisruptionBudget", "planstream-ingress")
    ]


def hpa_and_replicas(docs: Docs) -> Docs:
    docs = copy.deepcopy(docs)
    first(docs, "Deployment", "planstream-info-worker")["spec"]["replicas"] = 1
    return docs


def model_key_to_the_ingress(docs: Docs) -> Docs:
    docs = copy.deepcopy(docs)
    env = container(first(docs, "Deployment", "planstream-ingress"))["env"]
    ref = {"name": "planstream-credentials", "key": "PLANSTREAM_MODEL_API_KEY", "optional": True}
    env.append({"name": "PLANSTREAM_MODEL_API_KEY", "valueFrom": {"secretKeyRef": ref}})
    return docs


def whole_secret_to_the_sink(docs: Docs) -> Docs:
    docs = copy.deepcopy(docs)
    sources = container(first(docs, "Deployment", "planstream-decisions-sink"))["envFrom"]
    sources.append({"secretRef": {"name": "planstream-credentials"}})
    return docs


def token_in_the_migrate_job(docs: Docs) -> Docs:
    docs = copy.deepcopy(docs)
    del first(docs, "Job", "planstream-migrate")["spec"]["template"]["spec"][
        "automountServiceAccountToken"
    ]
    return docs


@pytest.mark.parametrize(
    ("breaking", "complaint"),
    [
        (without_sweeper, "no Deployment runs `planstream worker sweeper`"),
        (model_key_to_the_ingress, "Deployment/planstream-ingress: gets the Secret's ["),
        (whole_secret_to_the_sink, "planstream-decisions-sink: takes a whole Secret (envFrom)"),
        (token_in_the_migrate_job, "Job/planstream-migrate: its pods mount a service account"),
        (without_probe, "planstream-supervisor: livenessProbe is not GET /healthz"),
        (short_grace, "planstream-image-io: terminationGracePeriodSeconds 45 <= drain 45 s"),
        (without_budget, "planstream-ingress: no PodDisruptionBudget selects its pods"),
        (hpa_and_replicas, "planstream-info-worker: its Deployment sets replicas too"),
    ],
)
def test_the_chart_check_names_a_broken_invariant(
    rendered: Docs, breaking: Any, complaint: str
) -> None:
    assert manifests.chart_problems(rendered) == []
    assert complaint in "\n".join(manifests.chart_problems(breaking(rendered)))


def edit(compose: dict[str, Any], service: str, key: str, value: Any) -> dict[str, Any]:
    compose = copy.deepcopy(compose)
    if value is None:
        del compose["services"][service][key]
    else:
        compose["services"][service][key] = value
    return compose


@pytest.mark.parametrize(
    ("service", "key", "value", "complaint"),
    [
        ("sweeper", "command", ["worker", "swept"], "sweeper: command is ['worker', 'swept']"),
        ("s3", "ports", ["127.0.0.1:5000:5000"], "s3: publishes ports"),
        ("grafana", "ports", ["3000:3000"], "grafana: publishes a port on 'every interface'"),
        ("ingress", "ports", [{"target": 18000, "host_ip": "0.0.0.0"}], "on '0.0.0.0'"),
        ("postgres", "image", "postgres", "postgres: image 'postgres' is not pinned"),
        ("model", "build", {"context": ".", "target": "devel"}, "build target 'devel'"),
        ("prometheus", "volumes", ["./deploy/nowhere.yml:/x:ro"], "does not exist"),
        ("grafana", "depends_on", {"prometeus": {}}, "unknown service 'prometeus'"),
        ("ingress", "helthcheck", {}, "services/ingress: unknown key 'helthcheck'"),
        ("ingress", "init", "yes", "services/ingress/init: not a bool"),
        ("ingress", "healthcheck", {"intervall": "5s"}, "unknown key 'intervall'"),
    ],
)
def test_the_compose_check_names_a_broken_file(
    service: str, key: str, value: Any, complaint: str
) -> None:
    compose = load(layout.COMPOSE)
    assert compose_problems(compose) == []
    assert complaint in "\n".join(compose_problems(edit(compose, service, key, value)))


def test_the_compose_check_wants_every_worker_and_a_reachable_model() -> None:
    compose = copy.deepcopy(load(layout.COMPOSE))
    del compose["services"]["sweeper"]
    del compose["services"]["model"]["environment"]["PLANSTREAM_MODEL_SERVER_HOST"]
    problems = "\n".join(compose_problems(compose))
    assert "no service 'sweeper'" in problems
    assert "model: PLANSTREAM_MODEL_SERVER_HOST is not 0.0.0.0" in problems


def test_the_compose_check_wants_every_process_scraped(tmp_path: Path) -> None:
    config = layout.COMPOSE_PROMETHEUS.read_text()
    broken = tmp_path / "prometheus.yml"
    broken.write_text(config.replace('"sweeper:9102"', '"sweeper:9100"'))
    problems = compose_problems(load(layout.COMPOSE), prometheus_config=broken)
    assert problems == ["prometheus.yml: does not scrape sweeper at sweeper:9102"]


def test_the_drift_check_names_a_stale_copy_and_sync_repairs_it(tmp_path: Path) -> None:
    rules, dashboards, chart = tmp_path / "rules", tmp_path / "dashboards", tmp_path / "chart"
    for folder in (rules, dashboards, chart):
        folder.mkdir()
    (rules / "a.rules.yml").write_text("groups: []\n")
    (dashboards / "pipeline.json").write_text("{}\n")
    sources = chartfiles.Sources(rules=rules, dashboards=dashboards, chart=chart)
    assert chartfiles.drift(sources)[:3] == [
        "values.schema.json: missing",
        "files/prometheus/a.rules.yml: missing",
        "files/dashboards/pipeline.json: missing",
    ]
    chartfiles.sync(sources)
    assert chartfiles.drift(sources) == []
    (dashboards / "pipeline.json").write_text('{"title": "Pipeline"}\n')
    (dashboards / "pipeline.json").rename(dashboards / "renamed.json")
    assert chartfiles.drift(sources) == [
        "files/dashboards/renamed.json: missing",
        "files/dashboards/pipeline.json: its source is gone",
        "run `make chart-files` to regenerate the chart's copies",
    ]
    chartfiles.sync(sources)
    assert chartfiles.drift(sources) == []
    assert (
        chart / "files" / "dashboards" / "renamed.json"
    ).read_text() == '{"title": "Pipeline"}\n'
