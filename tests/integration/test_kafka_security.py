"""planstream's own Kafka clients over TLS and SASL: a private throwaway broker (the local
stack's Kafka, on its own ports and folder) with a SASL_SSL listener taking SCRAM-SHA-512 logins
and an SSL listener that requires a client certificate, both with certificates made here.

The admin (topic creation), the publisher, the consumer that reads a topic whole and a Faust
producer each carry an event through them; a wrong password, a CA that did not sign the broker's
certificate, a missing client certificate and TLS without SASL are each refused naming the
setting to fix. About 10-20 s, most of it the broker's start.
"""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import faust
import pytest

from planstream.adapters.kafka import EventPublisher, ensure_topics, read_all
from planstream.adapters.kafka.security import faust_options
from planstream.dev.isolation import free_port
from planstream.dev.stack.kafka import Kafka, Listener, scram_credential
from planstream.dev.stack.processes import ServiceFiles, signal_and_wait, spawn, tail
from planstream.dev.stack.service import ServiceDown
from planstream.domain.errors import ConfigurationError
from planstream.domain.wire import decode_event
from planstream.settings import Settings
from tests.factories import make_step_requested
from tests.tlskit import Authority
from topics import STEP_REQUESTED

USER = "planstream-test"
_READY_S = 120.0  # a JVM start on a loaded two-core machine


@dataclass(frozen=True)
class Broker:
    """The private broker's client settings: SASL_SSL, and SSL with a client certificate."""

    sasl: Settings
    mtls: Settings
    other_ca: Path


def _pem(text: str) -> str:
    """PEM text as one server.properties value (Java's properties read ``\\n`` as a newline)."""
    return text.strip().replace("\n", "\\n")


@pytest.fixture(scope="module")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Broker]:
    root = tmp_path_factory.mktemp("secure-kafka")
    authority = Authority(root / "tls")
    server = authority.issue("broker", server=True)
    client = authority.issue("client", server=False)
    other_ca = Authority(root / "other", name="another CA").ca.cert_file
    password = os.urandom(12).hex()
    base = Settings(
        work_dir=root,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        topic_namespace="secure.",
    )
    sasl_port, ssl_port = free_port(), free_port()
    kafka = Kafka(
        base,
        ServiceFiles("kafka", root / "kafka"),
        listeners=[
            Listener("SASL_SSL", "SASL_SSL", "127.0.0.1", sasl_port),
            Listener("SSL", "SSL", "127.0.0.1", ssl_port),
        ],
        properties={
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": _pem(server.key_pem),
            "ssl.keystore.certificate.chain": _pem(server.cert_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.certificates": _pem(authority.ca.cert_pem),
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.ssl.ssl.client.auth": "required",
        },
        scram=[scram_credential("SCRAM-SHA-512", USER, password, os.urandom(16))],
    )
    missing = kafka.missing_prerequisite()
    if missing is not None:
        pytest.fail(missing)
    kafka.files.folder.mkdir(parents=True)
    await kafka.prepare()
    process, record = spawn(kafka.launch(), kafka.files)
    try:
        await _ready(kafka)
        yield Broker(
            sasl=base.with_overrides(
                kafka_bootstrap=f"127.0.0.1:{sasl_port}",
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_username=USER,
                kafka_sasl_password=password,
                kafka_ssl_cafile=authority.ca.cert_file,
            ),
            mtls=base.with_overrides(
                kafka_bootstrap=f"127.0.0.1:{ssl_port}",
                kafka_security_protocol="SSL",
                kafka_ssl_cafile=authority.ca.cert_file,
                kafka_ssl_certfile=client.cert_file,
                kafka_ssl_keyfile=client.key_file,
            ),
            other_ca=other_ca,
        )
    finally:
        await asyncio.to_thread(signal_and_wait, {record: (signal.SIGTERM, 20.0)})
        process.wait()


async def _ready(kafka: Kafka) -> None:
    deadline = time.monotonic() + _READY_S
    while True:
        try:
            await kafka.ready()
            return
        except ServiceDown as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"the private Kafka did not start: {exc}\n{tail(kafka.files.log_file)}")
            await asyncio.sleep(0.5)


async def _published_and_read(settings: Settings) -> None:
    """Topics made by the admin client, one event sent by the publisher, read back whole."""
    await ensure_topics(settings, [STEP_REQUESTED])
    event = make_step_requested()
    publisher = EventPublisher(settings, "ingress")
    await publisher.start()
    try:
        await publisher.publish(STEP_REQUESTED, event)
    finally:
        await publisher.stop()
    records = await read_all(settings, STEP_REQUESTED.full_name(settings.topic_namespace))
    assert STEP_REQUESTED.value_model is not None
    found = [
        decode_event(STEP_REQUESTED.value_model, record.value, settings.max_event_bytes)
        for record in records
        if record.key == event.run_id.encode() and record.value is not None
    ]
    assert found == [event]


async def test_events_pass_a_sasl_ssl_listener_with_scram(broker: Broker) -> None:
    await _published_and_read(broker.sasl)


async def test_a_faust_app_produces_with_the_same_credentials(broker: Broker) -> None:
    app = faust.App("planstream-secure-test", **faust_options(broker.sasl))
    topic = STEP_REQUESTED.full_name(broker.sasl.topic_namespace)
    await ensure_topics(broker.sasl, [STEP_REQUESTED])
    producer = app.producer
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, b"faust", b"{}", partition=None, timestamp=None, headers=None
        )
    finally:
        await producer.stop()
    records = await read_all(broker.sasl, topic)
    assert any(record.key == b"faust" for record in records)


async def test_a_wrong_password_is_refused_naming_the_setting(broker: Broker) -> None:
    wrong = broker.sasl.with_overrides(kafka_sasl_password="not-the-password")
    with pytest.raises(ConfigurationError, match="PLANSTREAM_KAFKA_SASL_PASSWORD") as refused:
        await ensure_topics(wrong, [STEP_REQUESTED])
    assert "refused the SASL login of PLANSTREAM_KAFKA_SASL_USERNAME='planstream-test'" in str(
        refused.value
    )
    assert "not-the-password" not in str(refused.value)
    with pytest.raises(ConfigurationError, match="PLANSTREAM_KAFKA_SASL_PASSWORD"):
        await EventPublisher(wrong, "ingress").start()


async def test_a_certificate_from_another_ca_is_refused_naming_the_setting(
    broker: Broker,
) -> None:
    untrusting = broker.sasl.with_overrides(kafka_ssl_cafile=broker.other_ca)
    with pytest.raises(ConfigurationError, match="PLANSTREAM_KAFKA_SSL_CAFILE"):
        await ensure_topics(untrusting, [STEP_REQUESTED])


async def test_events_pass_an_ssl_listener_with_a_client_certificate(broker: Broker) -> None:
    await _published_and_read(broker.mtls)


async def test_the_ssl_listener_refuses_a_client_without_a_certificate(broker: Broker) -> None:
    anonymous = broker.mtls.with_overrides(kafka_ssl_certfile=None, kafka_ssl_keyfile=None)
    with pytest.raises(ConfigurationError, match="PLANSTREAM_KAFKA_SSL_CERTFILE"):
        await ensure_topics(anonymous, [STEP_REQUESTED])


async def test_tls_without_sasl_on_a_sasl_listener_is_refused_naming_the_setting(
    broker: Broker,
) -> None:
    no_login = broker.sasl.with_overrides(
        kafka_security_protocol="SSL", kafka_sasl_username=None, kafka_sasl_password=None
    )
    with pytest.raises(
        ConfigurationError, match="wants SASL, not PLANSTREAM_KAFKA_SECURITY_PROTOCOL"
    ):
        await ensure_topics(no_login, [STEP_REQUESTED])
