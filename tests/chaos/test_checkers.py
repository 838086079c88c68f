"""Test the tests: every checker reports a deliberately broken history (a check that cannot
fail proves nothing). The product code on disk is never changed: each broken build is made
here, in a scratch database and a scratch topic namespace — the sink's own INSERT with its
ON CONFLICT cut off against a schema without the unique key, the lease's own FINISH without
its fence, a step whose outcome was dropped, a run ended failed with no reason, a fork the
table hides (two decisions on the topic), a canary written where it must not be.
"""

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from planstream.adapters.kafka import ensure_topics
from planstream.adapters.postgres import decision_log, leases
from planstream.adapters.postgres.db import connect, create_pool, migrate
from planstream.dev.chaos.checkers import check_database
from planstream.dev.chaos.conflicts import conflicting_decisions
from planstream.dev.chaos.inject import produce
from planstream.dev.chaos.secrets import Canaries, scan_database, scan_logs, scan_records
from planstream.dev.chaos.streams import (
    DeadLetter,
    Record,
    consumer_lag,
    dead_letter_counts,
    done_without_output,
    group_ids,
    read_topics,
)
from planstream.dev.isolation import (
    create_database,
    database_name,
    drop_database,
    isolated,
    new_tag,
)
from planstream.domain.events import DecisionMade, step_key
from planstream.domain.records import Lease, NewJob
from planstream.settings import Settings
from topics import DECISION_MADE, STEP_REQUESTED


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
async def scratch(base_settings: Settings) -> AsyncIterator[Settings]:
    """A database and topic namespace of this module's own."""
    settings = isolated(base_settings, new_tag("k"))
    await create_database(base_settings.dsn, database_name(settings))
    await migrate(settings.dsn)
    await ensure_topics(settings)
    yield settings
    await drop_database(base_settings.dsn, database_name(settings))


@pytest.fixture
async def conn(scratch: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(scratch.dsn)
    yield connection
    await connection.close()


async def _run(conn: asyncpg.Connection, status: str = "running") -> str:
    upload, run = _id("upl"), _id("run")
    await conn.execute(
        "INSERT INTO uploads (upload_id, storage_bucket, storage_path, content_type,"
        " put_expires_at) VALUES ($1, 'b', $2, 'image/png', now())",
        upload,
        f"uploads/{upload}",
    )
    await conn.execute(
        "INSERT INTO pipeline_runs (run_id, upload_id, ratio, quality_post_step4, status)"
        " VALUES ($1, $2, '4:3', '2K', $3)",
        run,
        upload,
        status,
    )
    return run


async def _job(
    conn: asyncpg.Connection, run: str, service: str = "image_io", status: str = "completed", **more
) -> str:
    job = _id("job")
    columns = {
        "job_id": job,
        "run_id": run,
        "step_id": more.pop("step_id", 0),
        "attempt": more.pop("attempt", 1),
        "service": service,
        "status": status,
        "idempotency_key": f"{service}:{step_key(run, 0, 1)}:{job[-6:]}",
        "lease_epoch": 1,
        "result_epoch": 1 if status == "completed" else None,
        **more,
    }
    names = ", ".join(columns)
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await conn.execute(f"INSERT INTO pipeline_jobs ({names}) VALUES ({marks})", *columns.values())
    return job


def _decision(run: str, step: int = 0, attempt: int = 1, decision: str = "proceed") -> DecisionMade:
    return DecisionMade(
        event_id=_id("evt"),
        run_id=run,
        occurred_at=datetime.now(UTC),
        step_id=step,
        attempt=attempt,
        idempotency_key=step_key(run, step, attempt),
        decision=decision,
        block_reason="NOT_A_FLOOR_PLAN" if decision == "block" else None,
        schema_valid=True,
        failure_count=0,
        retry_budget_remaining=2,
    )


async def _decide(conn: asyncpg.Connection, event: DecisionMade) -> None:
    await conn.execute(decision_log._INSERT, *decision_log.decision_row(event))


async def test_i1_lost_step_is_reported(conn: asyncpg.Connection) -> None:
    healthy, lost = await _run(conn, "blocked"), await _run(conn)
    await _decide(conn, _decision(healthy, decision="block"))
    await _job(conn, lost)  # the step ran, but its outcome was dropped: no decision
    figures = await check_database(conn, [healthy, lost])
    assert figures.value("lost_steps") == 1
    assert lost in figures.checks[0].evidence[0]


async def test_i1_proceed_without_the_next_step_is_reported(conn: asyncpg.Connection) -> None:
    run = await _run(conn)
    await _decide(conn, _decision(run, step=0, decision="proceed"))
    figures = await check_database(conn, [run])
    assert figures.value("lost_steps") == 1  # step 1 was asked for and never decided


def test_i1_job_done_without_output_is_reported() -> None:
    run = _id("run")
    key = f"info_worker:{step_key(run, 0, 1)}"
    assert done_without_output([("info_worker", key, "completed")], {}).value == 1
    found = {("planstream.info.extracted.v1", step_key(run, 0, 1)): 1}
    assert done_without_output([("info_worker", key, "completed")], found).value == 0


async def test_i2_duplicate_decisions_with_on_conflict_removed(conn: asyncpg.Connection) -> None:
    """The sink's own INSERT without its ON CONFLICT, against a schema without the unique key."""
    await conn.execute(
        "ALTER TABLE pipeline_decisions DROP CONSTRAINT pipeline_decisions_idempotency_key_key"
    )
    try:
        broken = re.sub(r"ON CONFLICT.*", "", decision_log._INSERT, flags=re.S)
        run = await _run(conn, "blocked")
        first = _decision(run, decision="block")
        again = first.model_copy(update={"event_id": _id("evt")})  # the redelivered event
        for event in (first, again):
            row = list(decision_log.decision_row(event))
            await conn.execute(broken, *row)
        figures = await check_database(conn, [run])
        assert figures.value("dup_decisions_physical") == 1
        assert figures.value("dup_decisions_logical") == 1
    finally:
        await conn.execute("DELETE FROM pipeline_decisions")
        await conn.execute(
            "ALTER TABLE pipeline_decisions ADD CONSTRAINT pipeline_decisions_idempotency_key_key"
            " UNIQUE (idempotency_key)"
        )


async def test_i2_logical_duplicate_is_reported(conn: asyncpg.Connection) -> None:
    run = await _run(conn, "blocked")
    first = _decision(run, decision="block")
    await _decide(conn, first)
    row = list(decision_log.decision_row(first))
    row[0], row[4] = _id("evt"), f"{first.idempotency_key}:again"  # another key, same attempt
    await conn.execute(decision_log._INSERT, *row)
    figures = await check_database(conn, [run])
    assert figures.value("dup_decisions_physical") == 0
    assert figures.value("dup_decisions_logical") == 1


async def test_i2_a_step_attempt_on_both_paths_is_reported(conn: asyncpg.Connection) -> None:
    """The same step attempt run by a planstream service and the old function, and decided by
    the Supervisor and the legacy bridge: a flip that let it through on both paths."""
    run, clean = await _run(conn, "completed"), await _run(conn, "completed")
    for service in ("render_worker", "legacy"):
        await _job(conn, run, service, step_id=2)
    supervisor = _decision(run, step=2)
    await _decide(conn, supervisor)
    legacy = supervisor.model_copy(
        update={
            "event_id": _id("evt"),
            "decided_by": "legacy",
            "idempotency_key": f"{supervisor.idempotency_key}:legacy",
        }
    )
    await _decide(conn, legacy)
    await _job(conn, clean, "legacy", step_id=2)  # one path, decided by the Supervisor after
    await _job(conn, clean, "supervisor", step_id=2)  # the sweeper gave its job up: fine
    await _decide(conn, _decision(clean, step=2))
    figures = await check_database(conn, [run, clean])
    assert figures.value("decided_on_both_paths") == 1
    assert figures.value("done_on_both_paths") == 1
    assert all(run in row for check in figures.checks[4:6] for row in check.evidence)


async def test_i3_run_not_terminal_and_contradicting_status(conn: asyncpg.Connection) -> None:
    stuck = await _run(conn, "running")
    await _decide(conn, _decision(stuck, decision="retry"))
    liar = await _run(conn, "completed")  # completed without step 6 proceeding
    await _decide(conn, _decision(liar, decision="block"))
    figures = await check_database(conn, [stuck, liar])
    assert figures.value("runs_not_terminal") == 1
    assert figures.value("status_contradicts_decisions") == 1
    assert figures.runs_terminal == 1


async def test_i1_failed_run_without_an_expected_reason_is_lost(conn: asyncpg.Connection) -> None:
    """A run the pipeline gave up is lost work, not an ending, unless the test expects why."""
    silent, gave_up = await _run(conn, "failed"), await _run(conn, "failed")
    reason = "the Supervisor's job the lease expired on all 3 deliveries"
    await conn.execute(
        "UPDATE pipeline_runs SET last_error = $2 WHERE run_id = $1", gave_up, reason
    )
    figures = await check_database(conn, [silent, gave_up])
    assert figures.value("failed_runs_unexplained") == 2
    assert figures.value("lost_steps") == 2  # step 0 of each was asked for, never decided
    assert figures.runs_terminal == 0 and figures.info["failed"] == 2
    expected = await check_database(conn, [silent, gave_up], expected_failures=[re.escape(reason)])
    assert expected.value("failed_runs_unexplained") == 1 and expected.value("lost_steps") == 1
    assert expected.runs_terminal == 1
    assert expected.info["failed_by_reason"] == {"(no reason recorded)": 1, reason: 1}


async def test_i2_a_fork_the_table_hides_is_on_the_topic(
    scratch: Settings, conn: asyncpg.Connection
) -> None:
    """An approve and a retry of one blocked step, both published: the sink's own INSERT keeps
    one row (one key), so only the decisions topic shows the second decision. (The topic is
    one of its own: nothing consumes it, and I8's lag stays the module's own.)"""
    run = await _run(conn, "blocked")
    await _decide(conn, _decision(run, decision="block"))
    review = {"decided_by": "reviewer", "idempotency_key": f"{step_key(run, 0, 1)}:review"}
    forks = [
        _decision(run, decision=action).model_copy(update=review) for action in ("proceed", "retry")
    ]
    for event in forks:
        await _decide(conn, event)
    figures = await check_database(conn, [run])
    assert [figures.value(f"dup_decisions_{kind}") for kind in ("physical", "logical")] == [0, 0]
    own = scratch.with_overrides(topic_namespace=f"{new_tag('f')}.")
    await ensure_topics(own, [DECISION_MADE])
    topic = DECISION_MADE.full_name(own.topic_namespace)
    sent = [(e.event_id, run.encode(), e.model_dump_json().encode(), 0) for e in forks]
    await produce(own, topic, sent)
    records = await read_topics(own, [topic])
    check = conflicting_decisions(records, own.topic_namespace, {run})
    assert check.value == 1 and "proceed" in check.evidence[0] and "retry" in check.evidence[0]


async def test_i4_attempts_and_model_calls_over_budget(conn: asyncpg.Connection) -> None:
    run = await _run(conn, "blocked")
    await _decide(conn, _decision(run, decision="block"))
    await _job(conn, run, attempts=4, max_attempts=3)
    for _ in range(4):
        await conn.execute(
            "INSERT INTO pipeline_model_calls (call_id, run_id, step_id, attempt, service, purpose,"
            " model, prompt_version, outcome, latency_ms) VALUES ($1, $2, 0, 1, 'info_worker',"
            " 'extract', 'm', 'p', 'failed', 1)",
            _id("evt"),
            run,
        )
    figures = await check_database(conn, [run])
    assert figures.value("steps_over_attempt_budget") == 1
    assert figures.value("steps_over_model_call_budget") == 1
    assert figures.info["max_attempts"] == 4
    assert figures.info["max_llm_calls_per_key"] == 4


async def test_i5_stale_write_without_the_fence_is_reported(
    scratch: Settings, conn: asyncpg.Connection
) -> None:
    """A zombie (epoch 1) writes after a take-over (epoch 2) with FINISH's fence cut off."""
    run = await _run(conn, "blocked")
    await _decide(conn, _decision(run, decision="block"))
    pool = await create_pool(scratch.dsn, max_size=2)
    try:
        jobs = leases.JobLeases(pool)
        key = f"info_worker:{step_key(run, 0, 1)}"
        job = NewJob(_id("job"), run, 0, 1, "info_worker", key, {}, 3)
        zombie = await jobs.acquire(job, worker_id="zombie", lease_s=0.01)
        assert isinstance(zombie, Lease)
        await conn.execute("SELECT pg_sleep(0.05)")
        heir = await jobs.acquire(replace(job, job_id=_id("job")), worker_id="heir", lease_s=30)
        assert isinstance(heir, Lease) and heir.epoch == zombie.epoch + 1
        # The product's fenced write refuses the zombie and records it: nothing accepted.
        assert not await jobs.finish(
            zombie, "zombie", status="completed", result_ref={}, processing_time_ms=1
        )
        assert (await check_database(conn, [run])).value("stale_epoch_writes_accepted") == 0
        assert (await check_database(conn, [run])).info["stale_writes_refused"] == 1
        # The broken build: the same FINISH without "AND lease_epoch = $2".
        unfenced = leases._FINISH.replace("AND lease_epoch = $2 ", "")
        await conn.execute(
            unfenced,
            *(zombie.job_id, zombie.epoch, "completed", {}, 1, None, None),
            *("zombie", "finish:completed"),
        )
        figures = await check_database(conn, [run])
        assert figures.value("stale_epoch_writes_accepted") == 1
    finally:
        await pool.close()


async def test_i6_double_render_is_reported(conn: asyncpg.Connection) -> None:
    run = await _run(conn, "blocked")
    await _decide(conn, _decision(run, decision="block"))
    for digest in ("aa", "bb"):  # two different contents stored for one step
        await conn.execute(
            "INSERT INTO pipeline_artifacts (artifact_id, run_id, step_id, kind, storage_bucket,"
            " storage_path) VALUES ($1, $2, 1, 'render_image', 'b', $3)",
            _id("art"),
            run,
            f"runs/{run}/step-1/render-{digest}.png",
        )
    assert (await check_database(conn, [run])).value("double_renders") == 1


async def test_i8_lease_held_and_lag_are_reported(
    scratch: Settings, conn: asyncpg.Connection
) -> None:
    run = await _run(conn, "blocked")
    await _decide(conn, _decision(run, decision="block"))
    await _job(conn, run, status="running")
    assert (await check_database(conn, [run])).value("leases_held_after_quiesce") == 1
    topic = STEP_REQUESTED.full_name(scratch.topic_namespace)
    sent = await produce(scratch, topic, [(f"m{i}", b"k", b"{}", 0) for i in range(3)])
    assert (await consumer_lag(scratch)).value == 3  # nobody consumed them
    group = group_ids(scratch, ["image_io"])["image_io"]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=scratch.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: sent[-1].offset + 1})
    finally:
        await consumer.stop()
    assert (await consumer_lag(scratch)).value == 0


async def test_i7_canaries_are_found_everywhere(tmp_path: Path, conn: asyncpg.Connection) -> None:
    canaries = Canaries.new()
    log = tmp_path / "worker.log"
    log.write_text(
        f"INFO connecting with key {canaries.model_api_key}\n"
        "GET http://127.0.0.1:1/b/k?X-Amz-Signature=abc\n\x1b[31mred\x1b[0m\n"
    )
    scan = scan_logs([log], canaries.values())
    assert scan.canary_hits == 1 and scan.signatures == 1 and scan.escapes == 2
    # The services' JSON lines: found plain, and found escaped as an encoder may write them.
    escaped = "".join(f"\\u{ord(c):04x}" for c in canaries.s3_secret_access_key)
    json_log = tmp_path / "service.log"
    json_log.write_text(
        json.dumps({"msg": f"dsn {canaries.postgres_password}", "url": "/k?X-Amz-Signature=ab"})
        + "\n"
        + f'{{"msg": "secret {escaped}", "url": "/k?X-Amz-Signature\\u003dab \\u001b[31m"}}\n'
    )
    json_scan = scan_logs([json_log], canaries.values())
    assert json_scan.canary_hits == 2 and json_scan.signatures == 2 and json_scan.escapes == 0
    record = Record(
        "t", 0, 7, b"k", b"{}", (("planstream-error", canaries.s3_secret_access_key.encode()),), 0
    )
    assert scan_records([record], canaries.values()).canary_hits == 1
    run = await _run(conn, "failed")
    await conn.execute(
        "UPDATE pipeline_runs SET last_error = $2 WHERE run_id = $1",
        run,
        f"dsn {canaries.postgres_password}",
    )
    assert (await scan_database(conn, canaries.values())).canary_hits == 1
    assert scan_logs([log], Canaries.new().values()).canary_hits == 0


async def test_i9_refused_input_without_a_dead_letter_is_reported(scratch: Settings) -> None:
    topic = STEP_REQUESTED.full_name(scratch.topic_namespace)
    poison = (await produce(scratch, topic, [("poison", b"k", b"\x00", 1)]))[0]
    coordinates = [(poison.topic, poison.partition, poison.offset)]
    assert dead_letter_counts([], coordinates) == {(topic, 1, poison.offset): 0}
    headers = (
        ("planstream-source-topic", topic.encode()),
        ("planstream-source-partition", b"1"),
        ("planstream-source-offset", str(poison.offset).encode()),
    )
    letter = DeadLetter(Record("dlq", 0, 0, b"k", b"\x00", headers, 0))
    assert dead_letter_counts([letter, letter], coordinates) == {(topic, 1, poison.offset): 2}
    assert dead_letter_counts([letter], coordinates) == {(topic, 1, poison.offset): 1}
    # and the topic reader sees what was produced
    assert any(r.offset == poison.offset for r in await read_topics(scratch, [topic]))


def test_json_of_records_is_lenient() -> None:
    assert Record("t", 0, 0, None, b"not json", (), 0).json() is None
    assert Record("t", 0, 0, None, json.dumps({"a": 1}).encode(), (), 0).json() == {"a": 1}
