"""The rendered chart: every object against its schema, and what the project needs of it.

Kubernetes' own kinds are checked with the schemas ``kubernetes-validate`` bundles (offline, in
strict mode: an unknown field is an error); the Prometheus Operator's kinds against the closed
subsets in ``crd-schemas.json``; any other kind is an error, since nothing could check it.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any, Final

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import all_versions

from planstream.credentials import secret_variables
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

__all__ = ["chart_problems", "kube_versions", "schema_problems"]

_CRD_SCHEMAS: Final = Path(__file__).with_name("crd-schemas.json")
_COMMANDS: Final = {
    ("serve",): "ingress",
    ("db", "migrate"): "migrate",
    ("topics", "ensure"): "topics",
}
"""The processes of the commands the chart runs besides ``worker <name>``."""


def kube_versions() -> tuple[str, str]:
    """The oldest and newest Kubernetes versions whose schemas are bundled, e.g. 1.25, 1.37."""
    versions = all_versions()
    return versions[0], versions[-1]


@cache
def _crd_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = json.loads(_CRD_SCHEMAS.read_text())
    return schemas


def _name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _where(error: jsonschema.ValidationError) -> str:
    return "/".join(str(part) for part in error.absolute_path) or "(top)"


def schema_problems(docs: list[dict[str, Any]], kube_version: str) -> list[str]:
    """Each object that its schema rejects, for this Kubernetes version."""
    problems = []
    for doc in docs:
        crd = _crd_schemas().get(f"{doc.get('apiVersion')}/{doc.get('kind')}")
        try:
            if crd is not None:
                jsonschema.Draft7Validator(crd).validate(doc)
            else:
                kubernetes_validate.validate(doc, kube_version, strict=True)
        except jsonschema.ValidationError as exc:
            problems.append(f"{_name(doc)} (k8s {kube_version}): {_where(exc)}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{_name(doc)}: no schema to check it against: {exc.message}")
    return problems


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc.get("kind") == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _drain_s(docs: list[dict[str, Any]]) -> float:
    """The workers' drain: model_timeout_s as the rendered ConfigMap sets it, or its default."""
    for doc in _by_kind(docs, "ConfigMap").values():
        value = doc.get("data", {}).get("PLANSTREAM_MODEL_TIMEOUT_S")
        if value is not None:
            return float(value)
    return float(Settings.model_fields["model_timeout_s"].default)


def _probe_problems(name: str, container: dict[str, Any], port: str) -> list[str]:
    problems = []
    ports = {entry.get("name") for entry in container.get("ports", [])}
    if port not in ports:
        problems.append(f"{name}: its container declares no port named {port!r}")
    for kind in ("livenessProbe", "readinessProbe"):
        get = container.get(kind, {}).get("httpGet", {})
        if get.get("path") != "/healthz" or get.get("port") != port:
            problems.append(f"{name}: {kind} is not GET /healthz on port {port!r}")
    return problems


def _worker_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    deployments = _by_kind(docs, "Deployment")
    drain = _drain_s(docs)
    running = {}
    for name, deployment in deployments.items():
        args = _container(deployment).get("args", [])
        if len(args) == 2 and args[0] == "worker":
            running[args[1]] = name
    for worker in WORKERS:
        if worker not in running:
            problems.append(f"no Deployment runs `planstream worker {worker}`")
    for name in running.values():
        deployment = deployments[name]
        problems += _probe_problems(name, _container(deployment), "metrics")
        grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        if grace <= drain:
            problems.append(f"{name}: terminationGracePeriodSeconds {grace} <= drain {drain:g} s")
    return problems


def _process(container: dict[str, Any]) -> str | None:
    args = tuple(container.get("args", []))
    if len(args) == 2 and args[0] == "worker":
        return str(args[1])
    return _COMMANDS.get(args)


def _secret_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Each pod gets the Secret's keys its process needs (planstream/credentials.py) and no
    others, and no service account token."""
    problems = []
    for doc in docs:
        if doc.get("kind") not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        name, container = _name(doc), pod["containers"][0]
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: its pods mount a service account token")
        process = _process(container)
        if process is None:
            problems.append(f"{name}: runs no process planstream/credentials.py knows")
            continue
        if any("secretRef" in source for source in container.get("envFrom", [])):
            problems.append(f"{name}: takes a whole Secret (envFrom), not the keys {process} needs")
        refs = [
            env for env in container.get("env", []) if "secretKeyRef" in env.get("valueFrom", {})
        ]
        given = sorted(env["valueFrom"]["secretKeyRef"]["key"] for env in refs)
        if given != secret_variables(process):
            problems.append(
                f"{name}: gets the Secret's {given}; {process} needs {secret_variables(process)}"
            )
    return problems


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def chart_problems(docs: list[dict[str, Any]]) -> list[str]:
    """What the project relies on: a Deployment per worker (the sweeper too) with probes on its
    metrics port's /healthz and a grace period above the drain, the ingress probed on its HTTP
    port, a PodDisruptionBudget per Deployment, HPAs that own their Deployment's replicas, and
    each pod given only the secrets its process needs."""
    problems = _worker_problems(docs) + _secret_problems(docs)
    deployments = _by_kind(docs, "Deployment")
    ingress = [
        name for name, doc in deployments.items() if _container(doc).get("args") == ["serve"]
    ]
    if not ingress:
        problems.append("no Deployment runs `planstream serve` (the ingress)")
    problems += [
        problem
        for name in ingress
        for problem in _probe_problems(name, _container(deployments[name]), "http")
    ]
    budgets = _by_kind(docs, "PodDisruptionBudget").values()
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if not any(_selects(budget["spec"]["selector"], labels) for budget in budgets):
            problems.append(f"{name}: no PodDisruptionBudget selects its pods")
    for name, hpa in _by_kind(docs, "HorizontalPodAutoscaler").items():
        target = deployments.get(hpa["spec"]["scaleTargetRef"]["name"])
        if target is None:
            problems.append(f"HorizontalPodAutoscaler/{name}: scales no rendered Deployment")
        elif "replicas" in target["spec"]:
            problems.append(f"HorizontalPodAutoscaler/{name}: its Deployment sets replicas too")
    return problems
