"""docker-compose.yml without Docker: the shape the project allows, and what it needs of it.

The shape is closed: top-level keys and service keys come from the allow-lists below (a subset
of the Compose Specification that this file may use, so a misspelt key such as ``helthcheck`` is
refused rather than ignored), each with the value type compose expects. On top of it: every
process of the service list runs
(the sweeper included), only the ingress and Grafana publish ports and only on 127.0.0.1, every
image is pinned and every build, target, mount and ``depends_on`` resolves, the model server
listens beyond its loopback, and the Prometheus and Grafana files they mount agree with it.
"""

import re
from pathlib import Path
from typing import Any, Final

import yaml

from planstream.dev.deploycheck import layout
from planstream.domain.service_names import WORKERS

__all__ = ["PUBLISHERS", "compose_problems", "load"]

PUBLISHERS: Final = frozenset({"ingress", "grafana"})
"""The only services that may publish a port on the host."""
_TOP_KEYS: Final = {"name": str, "services": dict, "volumes": dict, "networks": dict}
_SERVICE_KEYS: Final[dict[str, tuple[type, ...]]] = {
    "build": (str, dict),
    "command": (str, list),
    "container_name": (str,),
    "depends_on": (list, dict),
    "deploy": (dict,),
    "entrypoint": (str, list),
    "env_file": (str, list),
    "environment": (dict, list),
    "expose": (list,),
    "healthcheck": (dict,),
    "image": (str,),
    "init": (bool,),
    "labels": (dict, list),
    "networks": (dict, list),
    "ports": (list,),
    "read_only": (bool,),
    "restart": (str,),
    "stop_grace_period": (str,),
    "stop_signal": (str,),
    "user": (str,),
    "volumes": (list,),
    "working_dir": (str,),
}
_HEALTHCHECK_KEYS: Final = frozenset(
    {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
)
_PROCESSES: Final = {"ingress": ["serve"]} | {name: ["worker", name] for name in WORKERS}
_METRICS_PORT: Final = "9102"


def load(path: Path) -> dict[str, Any]:
    """The compose file as data: YAML anchors and merge keys resolved, as compose does."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


def _shape_problems(compose: dict[str, Any]) -> list[str]:
    """Keys outside the allow-lists, and values of the wrong type (``x-`` keys are free)."""
    problems = []
    for key, value in compose.items():
        if key.startswith("x-"):
            continue
        kind = _TOP_KEYS.get(key)
        if kind is None:
            problems.append(f"compose shape: (top): unknown key {key!r}")
        elif not isinstance(value, kind):
            problems.append(f"compose shape: {key}: not a {kind.__name__}")
    services = compose.get("services")
    for name, service in (services or {}).items() if isinstance(services, dict) else ():
        if not isinstance(service, dict):
            problems.append(f"compose shape: services/{name}: not a mapping")
            continue
        for key, value in service.items():
            kinds = _SERVICE_KEYS.get(key)
            if kinds is None:
                problems.append(f"compose shape: services/{name}: unknown key {key!r}")
            elif not isinstance(value, kinds):
                names = " or ".join(kind.__name__ for kind in kinds)
                problems.append(f"compose shape: services/{name}/{key}: not a {names}")
        unknown = set(service.get("healthcheck") or {}) - _HEALTHCHECK_KEYS
        problems += [
            f"compose shape: services/{name}/healthcheck: unknown key {key!r}"
            for key in sorted(unknown)
        ]
    return problems


def _host_ips(port: Any) -> list[str]:
    """The host address each published port binds ('' for every interface)."""
    if isinstance(port, dict):
        return [str(port.get("host_ip", ""))]
    text = str(port)
    parts = text.rsplit(":", 2)
    if len(parts) == 3:  # HOST_IP:HOST_PORT:CONTAINER_PORT
        return [parts[0].strip("[]")]
    return [""]


def _ports_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in services.items():
        ports = service.get("ports") or []
        if ports and name not in PUBLISHERS:
            problems.append(f"{name}: publishes ports; only {sorted(PUBLISHERS)} may")
        for ip in (ip for port in ports for ip in _host_ips(port)):
            if ip != "127.0.0.1":
                problems.append(f"{name}: publishes a port on {ip or 'every interface'!r}")
    return problems


def _stages(dockerfile: Path) -> set[str]:
    text = dockerfile.read_text() if dockerfile.is_file() else ""
    return set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", text))


def _image_problems(name: str, service: dict[str, Any], root: Path) -> list[str]:
    build = service.get("build")
    image = service.get("image")
    if build is None:
        if not image:
            return [f"{name}: neither image nor build"]
        tag = str(image).rsplit("/", 1)[-1]
        if ":" not in tag or tag.endswith(":latest"):
            return [f"{name}: image {image!r} is not pinned to a version"]
        return []
    build = {"context": build} if isinstance(build, str) else build
    context = root / build.get("context", ".")
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        return [f"{name}: no {dockerfile.relative_to(root)} to build"]
    target = build.get("target")
    if target and target not in _stages(dockerfile):
        return [f"{name}: build target {target!r} is no stage of {dockerfile.name}"]
    return []


def _reference_problems(
    name: str, service: dict[str, Any], root: Path, volumes: set[str], services: set[str]
) -> list[str]:
    """Bind mounts that exist, named volumes that are declared, dependencies that are services."""
    problems = []
    for volume in service.get("volumes") or []:
        source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
        if source.startswith((".", "/")):
            if not (root / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist")
        elif source not in volumes:
            problems.append(f"{name}: mounts the undeclared volume {source!r}")
    for dependency in service.get("depends_on") or []:
        if dependency not in services:
            problems.append(f"{name}: depends on the unknown service {dependency!r}")
    return problems


def _process_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    for name, command in _PROCESSES.items():
        service = services.get(name)
        if service is None:
            problems.append(f"no service {name!r} (planstream {' '.join(command)})")
            continue
        if service.get("command") != command:
            problems.append(f"{name}: command is {service.get('command')!r}, not {command!r}")
        env = service.get("environment") or {}
        if str(env.get("PLANSTREAM_METRICS_PORT")) != _METRICS_PORT:
            problems.append(f"{name}: PLANSTREAM_METRICS_PORT is not {_METRICS_PORT}")
        if env.get("PLANSTREAM_METRICS_HOST") != "0.0.0.0":  # noqa: S104 - its container's network
            problems.append(f"{name}: PLANSTREAM_METRICS_HOST is not 0.0.0.0")
    model = services.get("model", {}).get("environment") or {}
    if model.get("PLANSTREAM_MODEL_SERVER_HOST") != "0.0.0.0":  # noqa: S104 - see above
        problems.append("model: PLANSTREAM_MODEL_SERVER_HOST is not 0.0.0.0 (unreachable)")
    return problems


def _scraped(prometheus_config: Path) -> dict[str, str]:
    """process label -> target, of the compose Prometheus's planstream job."""
    config = yaml.safe_load(prometheus_config.read_text()) or {}
    jobs = [job for job in config.get("scrape_configs", []) if job.get("job_name") == "planstream"]
    return {
        static.get("labels", {}).get("process", ""): target
        for job in jobs
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }


def _monitoring_problems(prometheus_config: Path, provisioning: Path) -> list[str]:
    providers_file = provisioning / "dashboards" / "planstream.yml"
    missing = [path for path in (prometheus_config, providers_file) if not path.is_file()]
    if missing:
        return [f"{path}: missing" for path in missing]
    scraped = _scraped(prometheus_config)
    problems = [
        f"{prometheus_config.name}: does not scrape {name} at {name}:{_METRICS_PORT}"
        for name in _PROCESSES
        if scraped.get(name) != f"{name}:{_METRICS_PORT}"
    ]
    providers = yaml.safe_load(providers_file.read_text()) or {}
    paths = [provider["options"]["path"] for provider in providers.get("providers", [])]
    if paths != ["/etc/grafana/dashboards/planstream"]:
        problems.append(f"grafana provisioning: dashboards read from {paths}, not the mount")
    return problems


def compose_problems(
    compose: dict[str, Any] | None = None,
    *,
    root: Path = layout.REPO,
    prometheus_config: Path = layout.COMPOSE_PROMETHEUS,
    provisioning: Path = layout.GRAFANA_PROVISIONING,
) -> list[str]:
    """Every way the compose file (or ``compose``, its data, with paths relative to ``root``)
    breaks the specification or the project's invariants."""
    compose = load(layout.COMPOSE) if compose is None else compose
    problems = _shape_problems(compose)
    services: dict[str, Any] = compose.get("services") or {}
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        problems += _image_problems(name, service, root)
        problems += _reference_problems(name, service, root, volumes, set(services))
    problems += _ports_problems(services)
    problems += _process_problems(services)
    problems += _monitoring_problems(prometheus_config, provisioning)
    return problems
