"""The running local stack: every service answers a real request, and `stack up` is idempotent."""

import os
import subprocess
import sys
import time
import uuid

import aioboto3
import aiohttp
import asyncpg
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError

from planstream.dev.stack import commands, processes
from planstream.dev.stack.prometheus import RULES_DIR
from planstream.settings import Settings

pytestmark = pytest.mark.integration

SETTINGS = Settings.from_env(os.environ)
START_HINT = "start the local stack with `make stack-up` (or `planstream stack up`)"
WARM_UP_LIMIT_S = 15.0  # a second `up` only probes: no JVM, initdb or Maven run


def _stack(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planstream.cli", "stack", action],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _local_pids() -> dict[str, int | None]:
    pids: dict[str, int | None] = {}
    for service in commands.build(SETTINGS):
        if service.name in SETTINGS.stack_services.split(","):
            record = processes.live_record(service.files.pid_file)
            pids[service.name] = record.pid if record else None
    return pids


def _openai_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {SETTINGS.model_api_key}"}


def test_status_reports_every_service_healthy() -> None:
    result = _stack("status")
    assert result.returncode == 0, f"{START_HINT}:\n{result.stdout}{result.stderr}"
    states = [line.split()[1] for line in result.stdout.splitlines()]
    assert states == ["healthy"] * len(commands.SERVICE_TYPES)


def test_a_second_up_is_fast_and_keeps_the_same_processes() -> None:
    before = _local_pids()
    assert None not in before.values(), f"services not running {before}: {START_HINT}"
    began = time.monotonic()
    result = _stack("up")
    took = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    assert _local_pids() == before
    assert "started" not in result.stdout
    assert took < WARM_UP_LIMIT_S


async def test_kafka_answers_a_metadata_call() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=SETTINGS.kafka_bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except KafkaError as exc:
        pytest.fail(f"Kafka at {SETTINGS.kafka_bootstrap} did not answer ({exc}): {START_HINT}")
    finally:
        await admin.close()
    assert cluster["brokers"], cluster
    assert cluster["controller_id"] in {broker["node_id"] for broker in cluster["brokers"]}


async def test_postgres_answers_select_1_as_the_settings_role() -> None:
    try:
        connection = await asyncpg.connect(SETTINGS.dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL did not accept the settings' DSN ({exc}): {START_HINT}")
    try:
        assert await connection.fetchval("SELECT 1") == 1
        assert await connection.fetchval("SELECT current_user") == SETTINGS.postgres_user
        assert await connection.fetchval("SELECT current_database()") == SETTINGS.postgres_db
    finally:
        await connection.close()


async def test_s3_bucket_exists_and_round_trips_an_object() -> None:
    session = aioboto3.Session()
    key = f"test-stack/{uuid.uuid4().hex}"
    async with session.client(
        "s3",
        endpoint_url=SETTINGS.s3_endpoint,
        region_name=SETTINGS.s3_region,
        aws_access_key_id=SETTINGS.s3_access_key_id,
        aws_secret_access_key=SETTINGS.s3_secret_access_key,
    ) as s3:
        try:
            await s3.head_bucket(Bucket=SETTINGS.s3_bucket)
        except (BotoCoreError, ClientError) as exc:
            pytest.fail(f"bucket {SETTINGS.s3_bucket} unreachable ({exc}): {START_HINT}")
        await s3.put_object(Bucket=SETTINGS.s3_bucket, Key=key, Body=b"plan")
        try:
            stored = await s3.get_object(Bucket=SETTINGS.s3_bucket, Key=key)
            assert await stored["Body"].read() == b"plan"
        finally:
            await s3.delete_object(Bucket=SETTINGS.s3_bucket, Key=key)


def _model_url(path: str) -> str:
    return SETTINGS.model_base_url.rstrip("/") + path


async def _get(url: str, headers: dict[str, str]) -> tuple[int, object]:
    try:
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
            return reply.status, await reply.json()
    except aiohttp.ClientConnectionError as exc:
        pytest.fail(f"the model server at {url} is unreachable ({exc}): {START_HINT}")


async def test_model_server_lists_models_the_openai_way() -> None:
    status, body = await _get(_model_url("/models"), _openai_headers())
    assert status == 200
    assert isinstance(body, dict)
    assert body["object"] == "list"
    assert {model["id"] for model in body["data"]} >= {"planstream-scripted-vision"}
    for model in body["data"]:
        assert model == {
            "id": model["id"],
            "object": "model",
            "created": 0,
            "owned_by": "planstream",
        }


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/no-such-route", _openai_headers(), 404, "not_found"),
        ("/models", {}, 401, "invalid_api_key"),
        ("/models", {"Authorization": "Bearer wrong"}, 401, "invalid_api_key"),
    ],
)
async def test_model_server_errors_have_openais_shape(
    path: str, headers: dict[str, str], status: int, code: str
) -> None:
    got_status, body = await _get(_model_url(path), headers)
    assert got_status == status
    assert isinstance(body, dict)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code


async def test_model_server_health_needs_no_key() -> None:
    root = SETTINGS.model_base_url.rstrip("/").removesuffix("/v1")
    assert await _get(root + "/healthz", {}) == (200, {"status": "ok"})


async def test_prometheus_has_loaded_every_alert_rule() -> None:
    rules_file = RULES_DIR / "planstream.rules.yml"
    names = {
        rule["alert"]
        for group in yaml.safe_load(rules_file.read_text())["groups"]
        for rule in group["rules"]
    }
    status, body = await _get(SETTINGS.prometheus_url.rstrip("/") + "/api/v1/rules", {})
    assert status == 200, body
    assert isinstance(body, dict)
    loaded = {rule["name"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert loaded >= names
