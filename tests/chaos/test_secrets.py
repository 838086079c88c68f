"""T27: canary secrets never in a log, a topic, a dead letter or a table.

Every process of the suite runs with canary credentials (model API key, S3 secret key; on the
private PostgreSQL the role's password too), and every other test already counts canary hits in
what it produced. This test adds the error paths that echo secrets — DEBUG logging with
OPENAI_LOG=debug, a model that answers 401 echoing the key (masked like OpenAI, and in full
like a careless server), a worker whose PostgreSQL password is wrong — then scans the whole
session: every log file, every record of every topic (dead letters included), every text
column.
"""

import asyncio
import time

import pytest

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.load import Ledger
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.modelfaults import ModelPlan
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.secrets import scan_database, scan_logs, scan_records
from planstream.dev.chaos.streams import namespace_topics, read_topics

# planstream's loggers and every library's (aiokafka, botocore, asyncpg, openai) at DEBUG.
DEBUG = {
    "PLANSTREAM_LOG_LEVEL": "DEBUG",
    "PLANSTREAM_LOG_LIBRARY_LEVEL": "DEBUG",
    "OPENAI_LOG": "debug",
}


@pytest.mark.timeout(1800)
async def test_t27_canary_secrets_never_leak(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    assert env.model is not None
    marks = await mark(env)
    debug = ("info_worker", "supervisor", "image_io")
    await asyncio.gather(*(asyncio.to_thread(env.restart, name, extra_env=DEBUG) for name in debug))
    ledger = Ledger()
    try:
        ledger.extend(await env.load(3, seed=seed, scenarios=("correct",)))
        await quiesce(env, ledger, profile.quiesce_s)
        for template in ("401_masked", "401_echo"):
            env.model.plan(
                ModelPlan(
                    weights={"template": 1.0}, schemas=frozenset({"spaces_v1"}), template=template
                )
            )
            part = await env.load(2, seed=seed, scenarios=("correct",))
            await quiesce(env, part, profile.quiesce_s)
            ledger.extend(part)
        env.model.heal()
        wrong = env.settings.dsn.replace(
            f":{env.settings.postgres_password}@", f":{env.canaries.postgres_password}@"
        )
        bad = await asyncio.to_thread(
            env.start_worker,
            "image_io-badpassword",
            "image_io",
            overrides={"postgres_dsn": wrong},
            wait=False,
        )
        deadline = time.monotonic() + 60
        while bad.alive() and "password authentication failed" not in env.rig.log_text(bad.name):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        pg_refused = (
            "password authentication failed" in env.rig.log_text(bad.name) or not bad.alive()
        )
        await asyncio.to_thread(env.rig.stop, bad.name)
    finally:
        env.model.heal()
        await asyncio.gather(*(asyncio.to_thread(env.restart, name) for name in debug))
    drained = await quiesce(env, ledger, profile.quiesce_s)
    canaries = env.canaries.values()
    whole_logs = scan_logs(env.rig.log_files(), canaries)
    whole_topics = scan_records(
        await read_topics(env.settings, namespace_topics(env.settings)), canaries
    )
    conn = await env.connect()
    try:
        whole_db = await scan_database(conn, canaries)
    finally:
        await conn.close()
    checks = []
    for where, scan in (("logs", whole_logs), ("topics", whole_topics), ("tables", whole_db)):
        if scan.canary_hits:
            checks.append(
                Check(
                    "I7",
                    f"canaries in the session's {where}",
                    scan.canary_hits,
                    tuple(scan.places[:5]),
                )
            )
        if scan.signatures:
            checks.append(
                Check(
                    "I7",
                    f"presigned signatures in the session's {where}",
                    scan.signatures,
                    tuple(scan.places[:5]),
                )
            )
    if not pg_refused:
        checks.append(Check("T27", "the wrong PostgreSQL password was not refused", 1))
    result = Result(
        "T27",
        "secrets in logs",
        "canary credentials, DEBUG + OPENAI_LOG=debug, 401 echoing the key, wrong DB password",
        profile.name,
        seed,
    )
    figures = {
        "whole_session_canary_hits": {
            "logs": whole_logs.canary_hits,
            "topics": whole_topics.canary_hits,
            "tables": whole_db.canary_hits,
        },
        "whole_session_signatures": {
            "logs": whole_logs.signatures,
            "topics": whole_topics.signatures,
            "tables": whole_db.signatures,
        },
        "raw_escapes_in_logs": whole_logs.escapes,
        "log_files": len(env.rig.log_files()),
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations
