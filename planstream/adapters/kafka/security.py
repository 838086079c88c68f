"""Kafka's security settings as aiokafka and Faust take them, read in one place.

Every producer, consumer and admin client planstream opens gets ``client_options(settings)``,
and every Faust app ``faust_options(settings)``: the bootstrap servers, the security protocol
(PLAINTEXT, SSL, SASL_SSL), the TLS context built from the PEM files, and the SASL mechanism
and credentials. aiokafka reports a refused login only as a log line and "Unable to bootstrap";
``check_access`` tells that apart from an outage and names the setting to fix.
"""

import asyncio
import ssl
from typing import Any, Final, NoReturn

import faust
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest
from faust.types.auth import CredentialsT

from planstream.domain.errors import ConfigurationError
from planstream.settings import ENV_PREFIX, Settings

__all__ = ["bootstrap_addresses", "check_access", "client_options", "faust_options"]

_CHECK_TIMEOUT_S: Final = 15.0
_SASL_REFUSED: Final = (SaslAuthenticationFailed, AuthenticationFailedError)


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """The hosts and ports of a bootstrap list (``"127.0.0.1:19092,[::1]:19094"``)."""
    addresses = []
    for entry in bootstrap.split(","):
        host, _, port = entry.strip().rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _encrypted_key() -> NoReturn:
    """Called by OpenSSL for a key's passphrase: refused rather than prompted for on a tty."""
    raise ConfigurationError(
        f"{ENV_PREFIX}KAFKA_SSL_KEYFILE is an encrypted key: give it unencrypted (a mounted secret)"
    )


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (None for PLAINTEXT): the brokers' certificates are
    checked against kafka_ssl_cafile (or the system's CAs), host names included."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"{ENV_PREFIX}KAFKA_SSL_CAFILE holds no usable PEM certificate: {exc}"
        ) from None
    if settings.kafka_ssl_certfile is not None:
        try:
            context.load_cert_chain(
                settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile, _encrypted_key
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(
                f"{ENV_PREFIX}KAFKA_SSL_CERTFILE and {ENV_PREFIX}KAFKA_SSL_KEYFILE are no "
                f"matching PEM certificate and key: {exc}"
            ) from None
    return context


def _security(settings: Settings) -> dict[str, Any]:
    """aiokafka's security keyword arguments (the password among them: never log them)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = _ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol == "SASL_SSL":
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def client_options(settings: Settings) -> dict[str, Any]:
    """``bootstrap_servers`` and the security options of an aiokafka producer, consumer or admin
    client: ``AIOKafkaProducer(**client_options(settings), acks="all")``."""
    return {"bootstrap_servers": settings.kafka_bootstrap, **_security(settings)}


def faust_options(settings: Settings) -> dict[str, Any]:
    """The same, as a Faust app's ``broker`` and ``broker_credentials`` (Faust hands the
    credentials to each aiokafka client it makes: consumer, producers, topic creation)."""
    credentials: CredentialsT | None = None
    context = _ssl_context(settings)
    if settings.kafka_security_protocol == "SASL_SSL":
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": f"kafka://{settings.kafka_bootstrap}", "broker_credentials": credentials}


def _refused(settings: Settings, exc: BaseException) -> ConfigurationError | None:
    """The setting to blame when a connection failed on TLS or SASL; None for anything else."""
    if isinstance(exc, _SASL_REFUSED):
        return ConfigurationError(
            f"Kafka refused the SASL login of {ENV_PREFIX}KAFKA_SASL_USERNAME="
            f"{settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): check "
            f"{ENV_PREFIX}KAFKA_SASL_PASSWORD ({exc})"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return ConfigurationError(
            f"Kafka does not offer {ENV_PREFIX}KAFKA_SASL_MECHANISM="
            f"{settings.kafka_sasl_mechanism} on this listener ({exc})"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigurationError(
            f"Kafka's TLS certificate was not accepted ({exc.verify_message}): check "
            f"{ENV_PREFIX}KAFKA_SSL_CAFILE and that {ENV_PREFIX}KAFKA_BOOTSTRAP names a host "
            "the certificate is for"
        )
    if isinstance(exc, KafkaConnectionError) and isinstance(exc.__cause__, ssl.SSLError):
        return ConfigurationError(
            f"Kafka ended the TLS session ({exc.__cause__.reason}): it wants a client certificate "
            f"it accepts, check {ENV_PREFIX}KAFKA_SSL_CERTFILE and {ENV_PREFIX}KAFKA_SSL_KEYFILE"
        )
    if isinstance(exc, ssl.SSLError):
        return ConfigurationError(
            f"the TLS handshake with Kafka failed ({exc.reason}): check "
            f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} against the "
            "listener's, and the client certificate if the broker asks for one"
        )
    return None


async def check_access(settings: Settings) -> None:
    """Raise ConfigurationError, naming the setting, when a broker refuses the TLS or SASL
    settings; return quietly when one takes them or none answers at all (an outage is not a
    setting to fix: the caller's own error stands)."""
    security = _security(settings)
    for host, port in bootstrap_addresses(settings.kafka_bootstrap):
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_S):
                conn = await create_conn(
                    host, port, request_timeout_ms=int(_CHECK_TIMEOUT_S * 1000), **security
                )
        except (OSError, KafkaError, TimeoutError) as exc:
            refused = _refused(settings, exc)
            if refused is not None:
                raise refused from None
            continue
        try:
            # A SASL listener answers ApiVersions before any login, and drops the connection
            # on the first other request of a client that sent none.
            async with asyncio.timeout(_CHECK_TIMEOUT_S):
                await conn.send(MetadataRequest([]))
        except KafkaConnectionError:
            if settings.kafka_security_protocol != "SASL_SSL":
                raise ConfigurationError(
                    f"Kafka dropped a request sent without a login: the listener at {host}:{port} "
                    f"wants SASL, not {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL="
                    f"{settings.kafka_security_protocol}"
                ) from None
        except (KafkaError, TimeoutError):
            pass  # an answer, or none: not a setting's fault
        finally:
            conn.close()
        return
