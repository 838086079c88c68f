"""Outside the local stack, no default secret.

Each process names the secrets it needs (``NEEDS``: the Helm chart gives each pod those and no
other, a deploy check holds it to this table). With ``PLANSTREAM_DEPLOYMENT=production`` a
process refuses to start while one of them is missing or still the local stack's throwaway
value, with one sentence naming the setting; on the local stack nothing is checked.
"""

from collections.abc import Mapping
from typing import Final, Literal

from planstream.domain.errors import ConfigurationError
from planstream.domain.service_names import WORKERS
from planstream.settings import ENV_PREFIX, Settings

__all__ = ["NEEDS", "SECRET_VARIABLES", "Secret", "check_secrets", "secret_variables"]

Secret = Literal["postgres", "s3", "model", "legacy", "auth", "kafka"]
"""A credential a process may need: PostgreSQL's, S3's, the model API's, the old function's,
the ingress's token key, Kafka's SASL password."""

SECRET_VARIABLES: Final[Mapping[Secret, tuple[str, ...]]] = {
    "postgres": ("postgres_password", "postgres_dsn"),
    "s3": ("s3_access_key_id", "s3_secret_access_key"),
    "model": ("model_api_key",),
    "legacy": ("legacy_auth_token",),
    "auth": ("auth_hs256_secret",),
    "kafka": ("kafka_sasl_password",),
}
"""The settings that hold each secret (a Secret's keys: ``PLANSTREAM_<NAME>``)."""

_UNSET: Final = (
    "unset or still the local stack's default, which PLANSTREAM_DEPLOYMENT=production refuses"
)
_STEP: Final[frozenset[Secret]] = frozenset({"postgres", "s3", "kafka"})
NEEDS: Final[Mapping[str, frozenset[Secret]]] = {
    "ingress": frozenset({"postgres", "s3", "kafka", "auth"}),
    **dict.fromkeys(WORKERS, _STEP),
    "info_worker": _STEP | {"model"},
    "comparison_worker": _STEP | {"model"},
    "supervisor": _STEP | {"model"},
    "render_worker": _STEP | {"model"},
    "legacy_bridge": _STEP | {"legacy"},
    "decisions_sink": frozenset({"postgres", "kafka"}),
    "migrate": frozenset({"postgres"}),
    "topics": frozenset({"kafka"}),
    "dlq": frozenset({"postgres", "kafka"}),
}
"""What each process needs: the ingress, every worker, the two setup jobs (``db migrate``,
``topics ensure``) and the dead-letter commands. Kafka's password is required by the settings
themselves whenever SASL is on."""


def secret_variables(process: str) -> list[str]:
    """The ``PLANSTREAM_*`` variables of the secrets ``process`` needs, sorted."""
    names = (name for secret in NEEDS[process] for name in SECRET_VARIABLES[secret])
    return sorted(ENV_PREFIX + name.upper() for name in names)


def _local(settings: Settings, name: str) -> bool:
    """Whether a setting is unset, empty or still the local stack's default."""
    value = getattr(settings, name)
    return not value or value == Settings.model_fields[name].default


def _problem(settings: Settings, kind: Secret) -> str | None:
    """The sentence refusing the ``kind`` secret, or None when it is set, not the local stack's."""
    env = {name: ENV_PREFIX + name.upper() for name in SECRET_VARIABLES[kind]}
    if kind == "postgres":
        if settings.postgres_dsn or not _local(settings, "postgres_password"):
            return None
        return f"{env['postgres_password']} (or {env['postgres_dsn']}) is {_UNSET}"
    if kind == "s3":
        keys = (settings.s3_access_key_id, settings.s3_secret_access_key)
        if keys == (None, None):
            return None  # the AWS default credential chain: workload identity
        for name in SECRET_VARIABLES["s3"]:
            if _local(settings, name):
                return (
                    f"{env[name]} is {_UNSET}; set both S3 keys, or unset both (empty) "
                    "for the AWS default credential chain (workload identity)"
                )
        return None
    if kind == "auth":
        # The token key: the issuer's JWKS URL or a shared secret, never the local stack's file.
        if settings.auth_jwks_url or settings.auth_hs256_secret:
            return None
        return f"{ENV_PREFIX}AUTH_JWKS_URL or {ENV_PREFIX}AUTH_HS256_SECRET is {_UNSET}"
    if kind == "kafka":
        return None  # required with SASL_SSL by the settings' own validation
    (name,) = SECRET_VARIABLES[kind]
    return f"{env[name]} is {_UNSET}" if _local(settings, name) else None


def check_secrets(settings: Settings, process: str) -> None:
    """Outside the local stack, raise ConfigurationError naming the first secret ``process``
    needs that is missing or still the local stack's."""
    if settings.deployment == "local":
        return
    for kind in sorted(NEEDS[process]):
        problem = _problem(settings, kind)
        if problem is not None:
            raise ConfigurationError(f"{process}: {problem}")
