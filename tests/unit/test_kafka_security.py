"""Kafka's security settings: the combinations refused with the setting named, and the one
reading of them that every aiokafka client and every Faust app gets."""

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from planstream.adapters.kafka.security import client_options, faust_options
from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings
from tests.tlskit import Authority, Issued

SASL = {
    "PLANSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "PLANSTREAM_KAFKA_SASL_USERNAME": "planstream",
    "PLANSTREAM_KAFKA_SASL_PASSWORD": "s3cret-pa55word",
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Issued]:
    authority = Authority(tmp_path_factory.mktemp("tls"))
    return authority, authority.issue("client", server=False)


def test_plaintext_is_the_local_stacks_default() -> None:
    options = client_options(Settings())
    assert options == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}
    assert faust_options(Settings()) == {
        "broker": "kafka://127.0.0.1:19092",
        "broker_credentials": None,
    }


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        (
            {"PLANSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "PLANSTREAM_KAFKA_SASL_USERNAME is required with "
            "PLANSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {**SASL, "PLANSTREAM_KAFKA_SASL_PASSWORD": ""},
            "PLANSTREAM_KAFKA_SASL_PASSWORD is required with",
        ),
        (
            {"PLANSTREAM_KAFKA_SASL_PASSWORD": "x"},
            "PLANSTREAM_KAFKA_SASL_PASSWORD is set but unused by "
            "PLANSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"PLANSTREAM_KAFKA_SSL_CAFILE": "/etc/hosts"},
            "PLANSTREAM_KAFKA_SSL_CAFILE is set but unused by PLAINTEXT",
        ),
        (
            {**SASL, "PLANSTREAM_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "PLANSTREAM_KAFKA_SSL_CAFILE names no readable file: /nonexistent/ca.pem",
        ),
        (
            {**SASL, "PLANSTREAM_KAFKA_SSL_KEYFILE": "/etc/hosts"},
            "PLANSTREAM_KAFKA_SSL_KEYFILE needs PLANSTREAM_KAFKA_SSL_CERTFILE",
        ),
        (
            {"PLANSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "PLANSTREAM_KAFKA_SECURITY_PROTOCOL is invalid",
        ),
        ({**SASL, "PLANSTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM is invalid"),
    ],
)
def test_a_bad_combination_is_refused_naming_the_setting(
    env: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match="invalid") as refused:
        Settings.from_env(env)
    assert complaint in str(refused.value)


def test_the_password_is_in_no_repr_and_no_message() -> None:
    settings = Settings.from_env(SASL)
    assert "s3cret-pa55word" not in repr(settings)
    assert "s3cret-pa55word" not in repr(faust_options(settings)["broker_credentials"])
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({**SASL, "PLANSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert "s3cret-pa55word" not in str(refused.value)


def test_sasl_ssl_gives_aiokafka_the_mechanism_login_and_a_verifying_context() -> None:
    options = client_options(Settings.from_env(SASL))
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "planstream",
        "sasl_plain_password": "s3cret-pa55word",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def _same(ours: dict[str, Any], fausts: dict[str, Any]) -> None:
    """Faust's reading of the credentials equals ours, the context aside (a new one each)."""
    assert isinstance(ours.pop("ssl_context", None), ssl.SSLContext | None)
    assert isinstance(fausts.pop("ssl_context", None), ssl.SSLContext | None)
    assert {key: ours[key] for key in fausts} == fausts


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_faust_hands_its_clients_the_same_options(
    protocol: str, tls: tuple[Authority, Issued]
) -> None:
    authority, client = tls
    env = {
        **(SASL if protocol == "SASL_SSL" else {}),
        "PLANSTREAM_KAFKA_SECURITY_PROTOCOL": protocol,
        "PLANSTREAM_KAFKA_SSL_CAFILE": str(authority.ca.cert_file),
        "PLANSTREAM_KAFKA_SSL_CERTFILE": str(client.cert_file),
        "PLANSTREAM_KAFKA_SSL_KEYFILE": str(client.key_file),
    }
    settings = Settings.from_env(env)
    credentials = faust_options(settings)["broker_credentials"]
    assert isinstance(
        credentials, faust.SASLCredentials if protocol == "SASL_SSL" else faust.SSLCredentials
    )
    _same(client_options(settings), credentials_to_aiokafka_auth(credentials))


def test_a_file_that_is_no_certificate_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    settings = Settings.from_env({**SASL, "PLANSTREAM_KAFKA_SSL_CAFILE": str(garbage)})
    with pytest.raises(ConfigurationError, match="PLANSTREAM_KAFKA_SSL_CAFILE holds no usable"):
        client_options(settings)


def test_a_key_that_does_not_match_the_certificate_is_named(
    tls: tuple[Authority, Issued],
) -> None:
    authority, client = tls
    other = authority.issue("other", server=False)
    settings = Settings.from_env(
        {
            **SASL,
            "PLANSTREAM_KAFKA_SSL_CERTFILE": str(client.cert_file),
            "PLANSTREAM_KAFKA_SSL_KEYFILE": str(other.key_file),
        }
    )
    with pytest.raises(ConfigurationError, match="no matching PEM certificate and key"):
        client_options(settings)
