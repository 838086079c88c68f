"""Outside the local stack, a process refuses to start on a secret it needs that is missing or
still the local stack's, naming it in one sentence; on the local stack nothing is checked."""

from typing import Any

import pytest

from planstream.credentials import NEEDS, check_secrets, secret_variables
from planstream.domain.errors import ConfigurationError
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

# What a production deployment sets for every process (each pod gets only its own part).
PRODUCTION: dict[str, Any] = {
    "deployment": "production",
    "postgres_password": "a-real-password",
    "s3_access_key_id": None,
    "s3_secret_access_key": None,
    "model_api_key": "sk-real",
    "legacy_auth_token": "a-real-token",
    "auth_jwks_url": "https://auth.example.com/.well-known/jwks.json",
}


def production(**overrides: Any) -> Settings:
    return Settings(**{**PRODUCTION, **overrides})


def test_the_local_stack_runs_on_its_own_defaults() -> None:
    for process in NEEDS:
        check_secrets(Settings(), process)


def test_production_with_every_secret_set_starts_every_process() -> None:
    for process in NEEDS:
        check_secrets(production(), process)


def test_every_worker_and_the_ingress_say_what_they_need() -> None:
    assert set(WORKERS) | {"ingress", "migrate", "topics", "dlq"} == set(NEEDS)


@pytest.mark.parametrize(
    ("process", "overrides", "named"),
    [
        ("sweeper", {"postgres_password": "planstream"}, "PLANSTREAM_POSTGRES_PASSWORD (or"),
        ("migrate", {"postgres_password": ""}, "PLANSTREAM_POSTGRES_PASSWORD (or"),
        ("info_worker", {"model_api_key": "sk-local-scripted"}, "PLANSTREAM_MODEL_API_KEY is"),
        ("render_worker", {"model_api_key": ""}, "PLANSTREAM_MODEL_API_KEY is"),
        (
            "legacy_bridge",
            {"legacy_auth_token": "legacy-local-key"},
            "PLANSTREAM_LEGACY_AUTH_TOKEN is",
        ),
        ("ingress", {"auth_jwks_url": None}, "PLANSTREAM_AUTH_JWKS_URL or"),
        (
            "image_io",
            {"s3_access_key_id": "planstream-local", "s3_secret_access_key": "real"},
            "PLANSTREAM_S3_ACCESS_KEY_ID is",
        ),
        ("ingress", {"s3_access_key_id": "AKIAREAL"}, "PLANSTREAM_S3_SECRET_ACCESS_KEY is"),
    ],
)
def test_a_missing_or_local_secret_is_refused_naming_it(
    process: str, overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_secrets(production(**overrides), process)
    message = str(refused.value)
    assert message.startswith(f"{process}: {named}")
    assert "PLANSTREAM_DEPLOYMENT=production refuses" in message
    assert message.count(".") <= 1  # one sentence


def test_a_process_ignores_the_secrets_it_does_not_need() -> None:
    local_model_key = production(
        model_api_key="sk-local-scripted", legacy_auth_token="legacy-local-key"
    )
    for process in ("ingress", "image_io", "decisions_sink", "sweeper", "migrate", "topics"):
        check_secrets(local_model_key, process)


def test_a_dsn_stands_for_the_password_and_a_shared_secret_for_the_jwks() -> None:
    check_secrets(
        production(postgres_password="planstream", postgres_dsn="postgresql://x/y"), "dlq"
    )
    check_secrets(production(auth_jwks_url=None, auth_hs256_secret="k" * 32), "ingress")


def test_each_process_names_the_variables_of_its_secrets() -> None:
    assert secret_variables("migrate") == [
        "PLANSTREAM_POSTGRES_DSN",
        "PLANSTREAM_POSTGRES_PASSWORD",
    ]
    assert "PLANSTREAM_MODEL_API_KEY" in secret_variables("supervisor")
    assert "PLANSTREAM_MODEL_API_KEY" not in secret_variables("ingress")
    assert secret_variables("ingress")[0] == "PLANSTREAM_AUTH_HS256_SECRET"
