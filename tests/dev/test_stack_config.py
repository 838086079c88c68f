"""The local stack's pure helpers: Kafka and Prometheus config, binaries, DSN display, pids."""

import json
import os
from pathlib import Path

import pytest

from planstream.dev.stack import commands, processes
from planstream.dev.stack.kafka import (
    Listener,
    bootstrap_addresses,
    new_cluster_id,
    render_server_properties,
    scram_credential,
)
from planstream.dev.stack.postgres import display_dsn
from planstream.dev.stack.prometheus import duration, render_config
from planstream.dev.stack.tools import parse_java_major, pick_highest
from planstream.settings import Settings


def _properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", "1@127.0.0.1:19093"),
        ("listeners", "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"),
        ("advertised.listeners", "PLAINTEXT://127.0.0.1:19092"),
        ("controller.listener.names", "CONTROLLER"),
        ("inter.broker.listener.name", "PLAINTEXT"),
        ("log.dirs", "/work/kafka/data"),
        ("num.partitions", "4"),
        ("auto.create.topics.enable", "false"),
        ("offsets.topic.replication.factor", "1"),
        ("offsets.topic.num.partitions", "1"),
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("transaction.state.log.num.partitions", "1"),
        ("share.coordinator.state.topic.replication.factor", "1"),
        ("share.coordinator.state.topic.min.isr", "1"),
        ("group.initial.rebalance.delay.ms", "0"),
    ],
)
def test_server_properties_for_one_combined_node(key: str, expected: str) -> None:
    rendered = render_server_properties(Settings(), Path("/work/kafka/data"))
    assert _properties(rendered)[key] == expected


def test_server_properties_follow_the_settings_addresses() -> None:
    settings = Settings(
        kafka_bootstrap="127.0.0.2:29092", kafka_controller_port=29093, topic_partitions=8
    )
    properties = _properties(render_server_properties(settings, Path("/data")))
    assert properties["listeners"] == "PLAINTEXT://127.0.0.2:29092,CONTROLLER://127.0.0.2:29093"
    assert properties["controller.quorum.voters"] == "1@127.0.0.2:29093"
    assert properties["num.partitions"] == "8"


def test_more_listeners_and_properties_join_the_plaintext_one() -> None:
    listener = Listener("SASL_SSL", "SASL_SSL", "127.0.0.1", 29094)
    extra = {"sasl.enabled.mechanisms": "SCRAM-SHA-512", "num.io.threads": "4"}
    properties = _properties(render_server_properties(Settings(), Path("/d"), [listener], extra))
    assert properties["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_SSL://127.0.0.1:29094"
    )
    assert properties["advertised.listeners"].endswith(",SASL_SSL://127.0.0.1:29094")
    assert properties["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert properties["inter.broker.listener.name"] == "PLAINTEXT"
    assert (properties["sasl.enabled.mechanisms"], properties["num.io.threads"]) == (
        "SCRAM-SHA-512",
        "4",
    )


def test_a_scram_credential_holds_the_salted_password_only() -> None:
    credential = scram_credential("SCRAM-SHA-512", "ana", "hunter2-secret", b"0123456789abcdef")
    assert credential.startswith('SCRAM-SHA-512=[name=ana,iterations=4096,salt="MDEyMzQ1Njc4')
    assert "hunter2-secret" not in credential


@pytest.mark.parametrize(
    ("bootstrap", "expected"),
    [
        ("127.0.0.1:19092", [("127.0.0.1", 19092)]),
        ("a:9092, b:9093", [("a", 9092), ("b", 9093)]),
        ("[::1]:19092", [("::1", 19092)]),
    ],
)
def test_bootstrap_addresses(bootstrap: str, expected: list[tuple[str, int]]) -> None:
    assert bootstrap_addresses(bootstrap) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (bytes(16), "AAAAAAAAAAAAAAAAAAAAAA"),
        (bytes(range(16)), "AAECAwQFBgcICQoLDA0ODw"),
        # Found in a test run: base64url "-4kf..." made kafka-storage take it for an option.
        (bytes([0xFB, 0x89, 0x1F]) + bytes(13), "A4kfAAAAAAAAAAAAAAAAAA"),
    ],
)
def test_cluster_id_is_22_url_safe_characters(raw: bytes, expected: str) -> None:
    assert new_cluster_id(raw) == expected


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["15", "16", "13"], "16"),
        (["9.6", "10"], "10"),  # numeric, not lexical
        (["9.5", "9.6"], "9.6"),
        (["14"], "14"),
    ],
)
def test_pick_highest_postgres_version(versions: list[str], expected: str) -> None:
    initdbs = [Path(f"/usr/lib/postgresql/{version}/bin/initdb") for version in versions]
    assert pick_highest(initdbs) == Path(f"/usr/lib/postgresql/{expected}/bin/initdb")


def test_pick_highest_of_nothing_is_none() -> None:
    assert pick_highest([]) is None


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("no java here", None),
    ],
)
def test_parse_java_major(output: str, expected: int | None) -> None:
    assert parse_java_major(output) == expected


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:secret@127.0.0.1:15432/db", "postgresql://u@127.0.0.1:15432/db"),
        ("postgresql://u:p%40ss@h:5432/db?sslmode=off", "postgresql://u@h:5432/db?sslmode=off"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_display_dsn_drops_the_password(dsn: str, shown: str) -> None:
    assert display_dsn(dsn) == shown


def test_services_keep_their_files_under_the_resolved_work_dir(tmp_path: Path) -> None:
    services = commands.build(Settings(work_dir=tmp_path / "w" / ".." / "stack"))
    names = [service.name for service in services]
    assert names == ["kafka", "postgres", "s3", "model", "prometheus", "legacy"]
    folder = (tmp_path / "stack" / "kafka").resolve()
    assert services[0].files.pid_file == folder / "kafka.pid"
    assert services[0].files.log_file == folder / "kafka.log"


def test_a_pid_record_matches_only_its_own_process() -> None:
    ticks = processes.start_ticks(os.getpid())
    assert ticks is not None
    assert processes.is_alive(processes.PidRecord(os.getpid(), ticks))
    assert not processes.is_alive(processes.PidRecord(os.getpid(), ticks + 1))


def test_tail_shows_only_the_latest_command(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("=== first\nold line\n=== second\nnew 1\nnew 2\n")
    assert processes.tail(log) == "new 1\nnew 2\n"
    assert processes.tail(log, lines=1) == "new 2\n"
    assert processes.tail(tmp_path / "missing.log") == ""


@pytest.mark.parametrize(
    ("seconds", "expected"), [(2.0, "2s"), (0.5, "500ms"), (15, "15s"), (1.25, "1250ms")]
)
def test_prometheus_durations(seconds: float, expected: str) -> None:
    assert duration(seconds) == expected


def test_prometheus_config_scrapes_the_target_files_and_loads_the_rules() -> None:
    targets, rules = Path("/w/prometheus/targets"), Path("/repo/deploy/prometheus")
    settings = Settings(prometheus_scrape_interval_s=2)
    config = json.loads(render_config(settings, targets, rules).partition("\n")[2])
    assert config["global"] == {
        "scrape_interval": "2s",
        "scrape_timeout": "2s",
        "evaluation_interval": "2s",
    }
    assert config["rule_files"] == ["/repo/deploy/prometheus/*.rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "planstream"
    assert job["file_sd_configs"][0]["files"] == ["/w/prometheus/targets/*.json"]


def test_prometheus_config_quotes_a_hostile_path() -> None:
    odd = Path('/w/"x": 1, y\n#/targets')
    config = json.loads(render_config(Settings(), odd, Path("/r")).partition("\n")[2])
    assert config["scrape_configs"][0]["file_sd_configs"][0]["files"] == [f"{odd}/*.json"]
