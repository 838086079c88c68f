"""The Helm chart's ``values.schema.json``, built from the settings and the service list.

Generated rather than hand-kept so that it cannot drift: ``config`` accepts exactly the fields of
``planstream/settings.py`` (less the secrets and the ones the chart sets itself), and ``workers``
exactly the names of ``planstream/domain/service_names.py``. Every object is closed
(``additionalProperties: false``), so a typo fails ``helm lint``/``helm template``/``helm install``
instead of rendering a Deployment that crash-loops or a setting that is silently ignored.
"""

from typing import Any, Final

from planstream.credentials import SECRET_VARIABLES
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

__all__ = ["CHART_SET", "SECRET_SETTINGS", "values_schema"]

SECRET_SETTINGS: Final = tuple(name for names in SECRET_VARIABLES.values() for name in names)
"""Settings that go in the Secret (``secret.values``), never in the ConfigMap (``config``): those
of planstream/credentials.py, which each pod gets only when its process needs them."""
CHART_SET: Final = ("ingress_host", "ingress_port", "metrics_host", "metrics_port")
"""Settings the chart derives from ``ingress.port`` and ``metrics.port``: not in ``config``."""

# The JSON-schema keywords of a setting kept in the chart's schema; nested models ($ref) and
# tuples (prefixItems) become their bare type: the process validates them fully at start.
_KEPT: Final = (
    "type",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
)


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    out = {key: schema[key] for key in _KEPT if key in schema}
    if "anyOf" in schema:
        out["anyOf"] = [_plain(branch) for branch in schema["anyOf"]]
    items = schema.get("items")
    if isinstance(items, dict) and "$ref" not in items:
        out["items"] = _plain(items)
    return out


def _setting(schema: dict[str, Any]) -> dict[str, Any]:
    """One setting: its own type and bounds, or empty/null (left out: planstream's default)."""
    described = {"description": schema["description"]} if "description" in schema else {}
    return {**described, "anyOf": [_plain(schema), {"const": ""}, {"type": "null"}]}


def _config() -> dict[str, Any]:
    fields = Settings.model_json_schema()["properties"]
    skipped = set(SECRET_SETTINGS) | set(CHART_SET)
    return _closed(
        {name: _setting(schema) for name, schema in fields.items() if name not in skipped},
        description="settings by their planstream/settings.py name, as PLANSTREAM_<NAME>",
    )


def _closed(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, **extra}


_INT: Final = {"type": "integer", "minimum": 0}
_PORT: Final = {"type": "integer", "minimum": 1, "maximum": 65535}
_STR: Final = {"type": "string"}
_BOOL: Final = {"type": "boolean"}
_STR_MAP: Final = {"type": "object", "additionalProperties": {"type": "string"}}
# Kubernetes' own objects (resources, security contexts) are checked by Kubernetes' schema.
_OBJECT: Final = {"type": "object"}
_QUANTITY: Final = {"type": ["string", "integer"], "pattern": r"^[0-9]+%?$"}
_SELECTOR: Final = {"type": ["object", "null"]}  # a label selector, checked by Kubernetes


def _probe() -> dict[str, Any]:
    timing = ("periodSeconds", "failureThreshold", "timeoutSeconds", "initialDelaySeconds")
    return _closed({name: {"type": "integer", "minimum": 1} for name in timing})


def _worker(*, full: bool) -> dict[str, Any]:
    """``workerDefaults`` (full: every field required) or one ``workers`` entry (overrides)."""
    properties = {
        "replicas": _INT,
        "resources": _OBJECT,
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 1},
        "probes": _closed({"startup": _probe(), "liveness": _probe(), "readiness": _probe()}),
        "podDisruptionBudget": _closed(
            {"enabled": _BOOL, "maxUnavailable": _QUANTITY, "minAvailable": _QUANTITY}
        ),
        "autoscaling": _closed(
            {
                "enabled": _BOOL,
                "minReplicas": {"type": "integer", "minimum": 1},
                "maxReplicas": {"type": "integer", "minimum": 1},
                "targetLagPerReplica": {"type": "integer", "minimum": 1},
            }
        ),
    }
    schema = _closed(properties)
    if full:
        schema["required"] = list(properties)
    return schema


def _metrics() -> dict[str, Any]:
    monitor = {"enabled": _BOOL, "labels": _STR_MAP}
    return _closed(
        {
            "port": _PORT,
            "podMonitor": _closed({**monitor, "interval": {"type": "string"}}),
            "prometheusRule": _closed(monitor),
            "dashboards": _closed({**monitor, "annotations": _STR_MAP}),
        },
        required=["port"],
    )


def values_schema() -> dict[str, Any]:
    """The whole schema, as ``values.schema.json`` holds it."""
    secret_values = {name: {"type": ["string", "null"]} for name in SECRET_SETTINGS}
    ingress = {
        "replicas": _INT,
        "hosts": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9.-]+$"}},
        "port": _PORT,
        "service": _closed({"type": _STR, "port": _PORT}),
        "resources": _OBJECT,
        "podDisruptionBudget": _closed(
            {"enabled": _BOOL, "maxUnavailable": _QUANTITY, "minAvailable": _QUANTITY}
        ),
    }
    properties = {
        "image": _closed({"repository": _STR, "tag": _STR, "pullPolicy": _STR}),
        "imagePullSecrets": {"type": "array"},
        "nameOverride": _STR,
        "fullnameOverride": _STR,
        "global": _OBJECT,  # Helm passes it to every chart, parent or not
        "config": _config(),
        "secret": _closed({"existingSecret": _STR, "values": _closed(secret_values)}),
        "ingress": _closed(ingress),
        "metrics": _metrics(),
        "workerDefaults": _worker(full=True),
        "workers": _closed({name: _worker(full=False) for name in WORKERS}),
        "jobs": _closed({"backoffLimit": _INT, "resources": _OBJECT}),
        "kafkaTls": _closed({"secretName": _STR, "mountPath": _STR}),
        "serviceAccount": _closed({"create": _BOOL, "name": _STR, "annotations": _STR_MAP}),
        "networkPolicy": _closed(
            {
                "enabled": _BOOL,
                "metricsFrom": _closed({"namespaceSelector": _SELECTOR, "podSelector": _SELECTOR}),
            }
        ),
        "podSecurityContext": _OBJECT,
        "securityContext": _OBJECT,
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "planstream chart values (generated by planstream.dev.deploycheck: do not edit)",
        **_closed(properties),
    }
