"""The local Kafka: one KRaft node (broker and controller) run from the Maven Central jars."""

import asyncio
import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Final, NamedTuple

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from planstream.adapters.kafka.security import bootstrap_addresses, client_options
from planstream.dev.stack import jars
from planstream.dev.stack.processes import Launch, ServiceFiles, port_open, run_logged
from planstream.dev.stack.service import Service, ServiceDown, StackError, reason
from planstream.dev.stack.tools import MIN_JAVA, find_java, find_maven, java_major
from planstream.settings import Settings

__all__ = [
    "Kafka",
    "Listener",
    "bootstrap_addresses",
    "broker_address",
    "new_cluster_id",
    "render_server_properties",
    "scram_credential",
]

_PROBE_TIMEOUT_S: Final = 5.0
_SCRAM_HASHES: Final = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class Listener(NamedTuple):
    """A listener besides the broker's PLAINTEXT one, e.g. a test's SASL_SSL listener (its TLS
    and SASL properties go in the ``properties`` given with it)."""

    name: str
    protocol: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.name}://{self.host}:{self.port}"


def scram_credential(mechanism: str, name: str, password: str, salt: bytes) -> str:
    """A ``kafka-storage format --add-scram`` argument holding the salted password only, so that
    the password itself is in no command line and no log: RFC 5802's Hi() is PBKDF2-HMAC."""
    iterations = 4096
    salted = hashlib.pbkdf2_hmac(_SCRAM_HASHES[mechanism], password.encode(), salt, iterations)
    encoded = {key: base64.b64encode(value).decode() for key, value in (("s", salt), ("p", salted))}
    return (
        f'{mechanism}=[name={name},iterations={iterations},salt="{encoded["s"]}",'
        f'saltedpassword="{encoded["p"]}"]'
    )


def broker_address(bootstrap: str) -> tuple[str, int]:
    """The first host and port of a bootstrap list: where the local broker listens."""
    return bootstrap_addresses(bootstrap)[0]


def render_server_properties(
    settings: Settings,
    data_dir: Path,
    listeners: Sequence[Listener] = (),
    extra: Mapping[str, str] | None = None,
) -> str:
    """server.properties of a single combined node, with FAUST-NOTES §4's one-node overrides;
    ``listeners`` are added to the PLAINTEXT one (which stays the inter-broker listener) and
    ``extra`` properties are set last."""
    host, port = broker_address(settings.kafka_bootstrap)
    controller = f"{host}:{settings.kafka_controller_port}"
    more = "".join(f",{listener.address}" for listener in listeners)
    protocols = "".join(f",{listener.name}:{listener.protocol}" for listener in listeners)
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{controller}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{controller}{more}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}{more}",
        "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{protocols}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(settings.topic_partitions),
        # Undeclared topics are a bug: the catalogue creates every topic explicitly.
        "auto.create.topics.enable": "false",
        # Internal topics default to 3 replicas and 50 partitions: impossible or slow on one node.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # The default 3 s delay is paid on every join of an empty consumer group.
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        **(extra or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def new_cluster_id(raw: bytes) -> str:
    """A Kafka cluster id from 16 random bytes: URL-safe base64 without padding, 22 characters,
    never starting with ``-`` (the storage tool would read it as an option, as Kafka's own
    ``Uuid.randomUuid`` avoids too): a leading ``-`` becomes ``A``."""
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return "A" + encoded[1:] if encoded.startswith("-") else encoded


class Kafka(Service):
    """Apache Kafka in KRaft mode, formatted on first start, ``java … kafka.Kafka``."""

    name = "kafka"
    ready_timeout_s = 90.0
    stop_grace_s = 30.0  # a controlled shutdown flushes and closes every partition

    def __init__(
        self,
        settings: Settings,
        files: ServiceFiles,
        *,
        listeners: Sequence[Listener] = (),
        properties: Mapping[str, str] | None = None,
        scram: Sequence[str] = (),
    ) -> None:
        """``listeners`` and ``properties`` go into server.properties; ``scram`` credentials
        (``scram_credential``) are written into the metadata log when the storage is formatted."""
        super().__init__(settings, files)
        self._listeners = tuple(listeners)
        self._properties = dict(properties or {})
        self._scram = tuple(scram)

    @property
    def _version(self) -> str:
        return self.settings.kafka_version

    @property
    def _config(self) -> Path:
        return self.files.folder / "server.properties"

    @property
    def _data_dir(self) -> Path:
        return self.files.folder / "data"

    def address(self) -> str:
        """The bootstrap address and the controller's port."""
        host, _ = broker_address(self.settings.kafka_bootstrap)
        controller = f"{host}:{self.settings.kafka_controller_port}"
        return f"{self.settings.kafka_bootstrap} (KRaft {self._version}, controller {controller})"

    def ports(self) -> tuple[tuple[str, int], ...]:
        """The broker's and the controller's listeners."""
        host, port = broker_address(self.settings.kafka_bootstrap)
        more = tuple((listener.host, listener.port) for listener in self._listeners)
        return (host, port), (host, self.settings.kafka_controller_port), *more

    def missing_prerequisite(self) -> str | None:
        """Java 17+ always; Maven only while the jars are not cached yet."""
        java = find_java()
        if java is None:
            return (
                f"The local Kafka needs Java {MIN_JAVA}+ and no java was found: install one "
                "(apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME."
            )
        major = java_major(java)
        if major is None or major < MIN_JAVA:
            found = f"Java {major}" if major else "of an unknown version"
            return f"Kafka {self._version} needs Java {MIN_JAVA}+ but {java} is {found}."
        if find_maven() is None and not jars.is_cached(self._version):
            return (
                f"Maven (mvn) is needed once to fetch the Kafka {self._version} jars into "
                f"{jars.cache_dir(self._version)} and was not found: apt-get install -y maven."
            )
        return None

    def _java_argv(self, main_class: str, *args: str) -> list[str]:
        """A java command line on the cached jars, logging with our log4j2 config."""
        return [
            str(find_java()),
            f"-Xmx{self.settings.kafka_heap}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.files.folder / 'log4j2.xml'}",
            "-cp",
            str(jars.libs_dir(self._version) / "*"),
            main_class,
            *args,
        ]

    async def prepare(self) -> None:
        """Fetch the jars, write the configuration, format the storage on first start."""
        await jars.fetch(self._version, find_maven(), self.files)
        self._config.write_text(
            render_server_properties(
                self.settings, self._data_dir, self._listeners, self._properties
            )
        )
        log4j = resources.files("planstream.dev.stack").joinpath("log4j2.xml").read_text()
        (self.files.folder / "log4j2.xml").write_text(log4j)
        if (self._data_dir / "meta.properties").is_file():
            return
        # A static controller.quorum.voters is formatted without --standalone (StorageTool refuses).
        cluster_id = new_cluster_id(os.urandom(16))
        format_argv = ["format", "--cluster-id", cluster_id, "--config", str(self._config)]
        for credential in self._scram:
            format_argv += ["--add-scram", credential]
        code = await run_logged(
            self._java_argv("kafka.tools.StorageTool", *format_argv), self.files
        )
        if code != 0:
            raise StackError(f"formatting the Kafka storage failed (exit code {code})")

    def launch(self) -> Launch:
        """``java -Xmx<heap> -cp 'libs/*' kafka.Kafka server.properties``."""
        return Launch(self._java_argv("kafka.Kafka", str(self._config)), cwd=self.files.folder)

    async def healthy(self) -> None:
        """A metadata call (describe cluster) succeeds and names at least one broker."""
        bootstrap = bootstrap_addresses(self.settings.kafka_bootstrap)
        # Checked first so that a closed port is one line here, not aiokafka's logged errors.
        if not any([await asyncio.to_thread(port_open, *address) for address in bootstrap]):
            raise ServiceDown(f"nothing listens on {self.settings.kafka_bootstrap}")
        admin = AIOKafkaAdminClient(
            **client_options(self.settings), request_timeout_ms=int(_PROBE_TIMEOUT_S * 1000)
        )
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                await admin.start()
                cluster = await admin.describe_cluster()
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ServiceDown(
                f"no metadata from {self.settings.kafka_bootstrap}: {reason(exc)}"
            ) from exc
        finally:
            await admin.close()
        if not cluster.get("brokers"):
            raise ServiceDown(f"the metadata from {self.settings.kafka_bootstrap} lists no broker")
