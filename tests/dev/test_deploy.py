"""The deploy files run the pipeline: the rendered chart and the compose file, checked statically.

Helm renders the chart (default values plus the required settings, and every option on); no
cluster and no Docker engine are involved. helm comes from `make tools`: a missing helm fails.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from planstream.dev.deploycheck import chartfiles, helm, layout, manifests
from planstream.dev.deploycheck.compose import compose_problems, load
from planstream.dev.deploycheck.valuesschema import CHART_SET, SECRET_SETTINGS
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

REQUIRED = layout.CHART / "ci" / "test-values.yaml"
ALL_ON = layout.CHART / "ci" / "all-optional-values.yaml"
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    try:
        return helm.find_helm()
    except helm.HelmMissing as exc:
        pytest.fail(str(exc))


def render(binary: Path, values: Path, **sets: str) -> Docs:
    docs, error = helm.template(binary, layout.CHART, [values], sets=sets)
    assert not error, error
    return docs


def refusal(binary: Path, values: Path, **sets: str) -> str:
    docs, error = helm.template(binary, layout.CHART, [values], sets=sets)
    assert not docs, f"rendered with {sets}"
    return error


@pytest.fixture(scope="module")
def defaults(helm_binary: Path) -> Docs:
    return render(helm_binary, REQUIRED)


@pytest.fixture(scope="module")
def all_on(helm_binary: Path) -> Docs:
    return render(helm_binary, ALL_ON)


def of_kind(docs: Docs, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workers(docs: Docs) -> dict[str, dict[str, Any]]:
    """worker name -> its Deployment."""
    found = {}
    for deployment in of_kind(docs, "Deployment").values():
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        if args[0] == "worker":
            found[args[1]] = deployment
    return found


@pytest.mark.parametrize("values", [REQUIRED, ALL_ON], ids=lambda path: path.name)
def test_the_rendered_chart_meets_the_schemas_and_the_invariants(
    helm_binary: Path, values: Path
) -> None:
    for version in manifests.kube_versions():
        docs, error = helm.template(helm_binary, layout.CHART, [values], kube_version=version)
        assert not error, error
        assert manifests.schema_problems(docs, version) == []
    assert manifests.chart_problems(docs) == []


def test_a_deployment_runs_every_worker_the_sweeper_included(defaults: Docs) -> None:
    assert sorted(workers(defaults)) == sorted(WORKERS)
    assert workers(defaults)["sweeper"]["spec"]["replicas"] == 1


def test_every_worker_is_probed_on_its_metrics_port_healthz(defaults: Docs) -> None:
    for name, deployment in workers(defaults).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": 9102} in container["ports"], name
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[kind]["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
    config = of_kind(defaults, "ConfigMap")["planstream"]["data"]
    assert config["PLANSTREAM_METRICS_PORT"] == "9102"
    assert config["PLANSTREAM_METRICS_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("values", [REQUIRED, ALL_ON], ids=lambda path: path.name)
def test_the_rendered_settings_parse(helm_binary: Path, values: Path) -> None:
    docs = render(helm_binary, values)
    env = dict(of_kind(docs, "ConfigMap")["planstream"]["data"])
    env.update(of_kind(docs, "Secret").get("planstream", {}).get("stringData", {}))
    settings = Settings.from_env(env)
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9102)
    assert (settings.ingress_host, settings.ingress_port) == ("0.0.0.0", 18000)


def test_the_ingress_answers_its_service_names_and_the_public_hosts(all_on: Docs) -> None:
    """Requests through the Service or the public Ingress are not refused with 421."""
    env = of_kind(all_on, "ConfigMap")["planstream"]["data"]
    services = of_kind(all_on, "Service")
    [ingress] = [name for name in services if name.endswith("ingress")]
    hosts = json.loads(env["PLANSTREAM_INGRESS_ALLOWED_HOSTS"])
    assert {ingress, f"{ingress}.planstream.svc.cluster.local", "planstream.example.com"} <= set(
        hosts
    )  # the release namespace of the rendering: planstream


def test_the_grace_period_exceeds_the_drain(helm_binary: Path, defaults: Docs) -> None:
    drain = Settings.model_fields["model_timeout_s"].default
    for deployment in workers(defaults).values():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain
    error = refusal(helm_binary, REQUIRED, **{"config.model_timeout_s": "90"})
    assert "terminationGracePeriodSeconds (90) must exceed the drain" in error


def test_every_deployment_has_a_disruption_budget(defaults: Docs) -> None:
    budgets = of_kind(defaults, "PodDisruptionBudget")
    assert sorted(budgets) == sorted(of_kind(defaults, "Deployment"))
    assert all(budget["spec"]["maxUnavailable"] == 1 for budget in budgets.values())


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("workers.sweepr.replicas", "additional properties 'sweepr' not allowed"),
        ("config.kafka_bootstrapp", "additional properties 'kafka_bootstrapp' not allowed"),
        ("config.postgres_password", "additional properties 'postgres_password' not allowed"),
        ("metrics.podMonitor.enabeld", "additional properties 'enabeld' not allowed"),
        ("workerDefaults.probes.liveness.periodSecond", "'periodSecond' not allowed"),
    ],
)
def test_the_values_schema_rejects_a_typo(helm_binary: Path, setting: str, complaint: str) -> None:
    assert complaint in refusal(helm_binary, REQUIRED, **{setting: "1"})


def test_the_values_schema_checks_a_setting_against_its_bounds(helm_binary: Path) -> None:
    assert "minimum: got 0, want 1" in refusal(
        helm_binary, REQUIRED, **{"config.topic_partitions": "0"}
    )


def test_the_optional_parts_are_off_by_default_where_they_need_crds(defaults: Docs) -> None:
    kinds = {doc["kind"] for doc in defaults}
    assert kinds.isdisjoint({"PodMonitor", "PrometheusRule", "HorizontalPodAutoscaler"})


def test_the_autoscaler_scales_a_worker_on_its_groups_lag(all_on: Docs) -> None:
    hpa = of_kind(all_on, "HorizontalPodAutoscaler")["planstream-info-worker"]
    metric = hpa["spec"]["metrics"][0]["external"]
    assert metric["metric"]["name"] == "planstream_consumer_lag_messages"
    assert metric["metric"]["selector"]["matchLabels"] == {"group": "planstream-info_worker-blue"}
    assert metric["target"] == {"type": "AverageValue", "averageValue": "50"}
    assert "replicas" not in workers(all_on)["info_worker"]["spec"]


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        ({"workers.sweeper.autoscaling.enabled": "true"}, "the sweeper consumes no topic"),
        (
            {"workers.image_io.autoscaling.enabled": "true", "config.topic_partitions": "2"},
            "maxReplicas (4) exceeds config.topic_partitions (2)",
        ),
    ],
)
def test_the_chart_refuses_an_autoscaler_that_cannot_work(
    helm_binary: Path, sets: dict[str, str], complaint: str
) -> None:
    assert complaint in refusal(helm_binary, REQUIRED, **sets)


def test_the_monitoring_objects_come_from_the_repositorys_files(all_on: Docs) -> None:
    monitor = of_kind(all_on, "PodMonitor")["planstream"]
    selected = monitor["spec"]["selector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == sorted(["ingress", *(name.replace("_", "-") for name in WORKERS)])
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = of_kind(all_on, "PrometheusRule")["planstream"]["spec"]["groups"]
    sources = sorted(layout.RULES.glob(layout.RULES_GLOB))
    assert sources
    assert rules == [
        group for path in sources for group in yaml.safe_load(path.read_text())["groups"]
    ]
    dashboards = of_kind(all_on, "ConfigMap")["planstream-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted(layout.DASHBOARDS.glob(layout.DASHBOARDS_GLOB))
    assert files
    assert dashboards["data"] == {path.name: path.read_text() for path in files}


def test_the_chart_files_and_values_schema_are_in_sync() -> None:
    assert chartfiles.drift() == []


def test_the_values_schema_names_every_setting_and_worker() -> None:
    schema = json.loads(layout.VALUES_SCHEMA.read_text())
    config = set(schema["properties"]["config"]["properties"])
    assert config == set(Settings.model_fields) - set(SECRET_SETTINGS) - set(CHART_SET)
    assert list(schema["properties"]["workers"]["properties"]) == list(WORKERS)
    values = yaml.safe_load((layout.CHART / "values.yaml").read_text())
    assert list(values["workers"]) == list(WORKERS)


def test_the_compose_file_runs_the_pipeline_and_publishes_only_ingress_and_grafana() -> None:
    assert compose_problems() == []
    services = load(layout.COMPOSE)["services"]
    assert services["sweeper"]["command"] == ["worker", "sweeper"]
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"ingress": ["127.0.0.1:18000:18000"], "grafana": ["127.0.0.1:3000:3000"]}
    assert services["model"]["environment"]["PLANSTREAM_MODEL_SERVER_HOST"] == "0.0.0.0"


def secret_keys(doc: dict[str, Any]) -> set[str]:
    """The Secret keys a Deployment's or Job's container gets."""
    env = doc["spec"]["template"]["spec"]["containers"][0].get("env", [])
    return {e["valueFrom"]["secretKeyRef"]["key"] for e in env if "secretKeyRef" in e["valueFrom"]}


def test_each_pod_gets_only_the_secrets_its_process_needs(defaults: Docs) -> None:
    pods = {**of_kind(defaults, "Deployment"), **of_kind(defaults, "Job")}
    holders = {
        variable: sorted(name for name, doc in pods.items() if variable in secret_keys(doc))
        for variable in ("PLANSTREAM_MODEL_API_KEY", "PLANSTREAM_LEGACY_AUTH_TOKEN")
    }
    assert holders == {
        "PLANSTREAM_MODEL_API_KEY": [
            "planstream-comparison-worker",
            "planstream-info-worker",
            "planstream-render-worker",
            "planstream-supervisor",
        ],
        "PLANSTREAM_LEGACY_AUTH_TOKEN": ["planstream-legacy-bridge"],
    }
    assert secret_keys(pods["planstream-ingress"]) >= {"PLANSTREAM_AUTH_HS256_SECRET"}
    assert secret_keys(pods["planstream-topics"]) == {"PLANSTREAM_KAFKA_SASL_PASSWORD"}
    for doc in pods.values():
        sources = doc["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert [source for source in sources if "secretRef" in source] == []


def test_production_by_default_with_s3_keys_left_to_workload_identity(defaults: Docs) -> None:
    config = of_kind(defaults, "ConfigMap")["planstream"]["data"]
    settings = Settings.from_env(config)
    assert settings.deployment == "production"
    assert (settings.s3_access_key_id, settings.s3_secret_access_key) == (None, None)


def test_no_pod_mounts_a_service_account_token(defaults: Docs, all_on: Docs) -> None:
    accounts = of_kind(defaults, "ServiceAccount")
    assert sorted(accounts) == ["planstream", "planstream-hook"]
    assert all(account["automountServiceAccountToken"] is False for account in accounts.values())
    assert "helm.sh/hook" in accounts["planstream-hook"]["metadata"]["annotations"]
    for name, doc in {**of_kind(defaults, "Deployment"), **of_kind(defaults, "Job")}.items():
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        hook = doc["kind"] == "Job"
        assert pod["serviceAccountName"] == ("planstream-hook" if hook else "planstream"), name
    role = of_kind(all_on, "ServiceAccount")["planstream"]["metadata"]["annotations"]
    assert role == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/planstream"}


def test_only_the_ingress_port_is_open_to_all_and_metrics_to_prometheus(
    defaults: Docs, all_on: Docs
) -> None:
    policies = of_kind(defaults, "NetworkPolicy")
    ingress = policies["planstream-ingress"]["spec"]
    assert ingress["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ingress"
    assert ingress["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    metrics = policies["planstream-metrics"]["spec"]
    assert "app.kubernetes.io/component" not in metrics["podSelector"]["matchLabels"]
    assert metrics["policyTypes"] == ["Ingress"]  # egress is not restricted
    (rule,) = metrics["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    (rule,) = of_kind(all_on, "NetworkPolicy")["planstream-metrics"]["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_the_kafka_tls_files_are_mounted_read_only_in_every_pod(all_on: Docs) -> None:
    for name, doc in {**of_kind(all_on, "Deployment"), **of_kind(all_on, "Job")}.items():
        pod = doc["spec"]["template"]["spec"]
        volume = {
            "name": "kafka-tls",
            "secret": {"secretName": "planstream-kafka-tls", "defaultMode": 0o444},
        }
        assert volume in pod["volumes"], name
        mount = {"name": "kafka-tls", "mountPath": "/etc/planstream/kafka-tls", "readOnly": True}
        assert mount in pod["containers"][0]["volumeMounts"], name
