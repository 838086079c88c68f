"""ReplayStore and the replay pool against real PostgreSQL: a replay's schema holds copies of the
step tables and the selected runs' rows; production's statements, run through the replay pool,
write there and nowhere in public (every public table's rows and every sequence unchanged)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from planstream.adapters.postgres.decision_log import DecisionLog
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.model_calls import ModelCallLog
from planstream.adapters.postgres.replays import (
    REPLAY_TABLES,
    ReplayGone,
    ReplayStore,
    ReplayUnset,
    Selection,
    create_replay_pool,
    replay_scope,
    schema_name,
)
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.routes import Routes
from planstream.domain.errors import Conflict
from planstream.domain.events import DecisionMade, step_key
from planstream.domain.ids import new_id
from planstream.domain.records import Artifact, Lease, NewJob, Run, Upload
from planstream.ports import ModelCall
from planstream.settings import Settings
from tests.replaykit import differences, fingerprint

_FAILURE = {
    "rule": "LOW_CONFIDENCE_RATIO",
    "severity": "medium",
    "space_id": "3",
    "detail": "4 of 6 spaces are below the confidence floor",
}
_VERSIONS = {"spaces_schema": "spaces-v1", "prompt": "p-1", "model": "m-1", "rules": "rules-v1"}


@dataclass(frozen=True)
class Recorded:
    """A run production decided: its image and Spaces artifacts."""

    run_id: str
    image_id: str
    spaces_id: str


def _decision(run_id: str, step: int, attempt: int, decision: str, **extra: Any) -> DecisionMade:
    reviewer = extra.get("decided_by") == "reviewer"
    return DecisionMade.model_validate(
        {
            "event_id": new_id("evt"),
            "run_id": run_id,
            "occurred_at": datetime.now(UTC),
            "step_id": step,
            "attempt": attempt,
            "idempotency_key": step_key(run_id, step, attempt) + (":review" if reviewer else ""),
            "decision": decision,
            "block_reason": "LOW_CONFIDENCE_RATIO" if decision == "block" else None,
            "failure_count": len(extra.get("failures", [])),
            "schema_valid": True,
            "retry_budget_remaining": 2,
            "versions": _VERSIONS,
            **extra,
        }
    )


async def _recorded(
    repo: Repository, pool: asyncpg.Pool, settings: Settings, decisions: list[DecisionMade]
) -> Recorded:
    """A run with its upload, source and Spaces artifacts, a Supervisor job keeping the event
    each decision was made on, and the decisions (``run_id`` in them is replaced)."""
    upload_id, run_id, image_id = new_id("upl"), new_id("run"), new_id("art")
    upload = Upload(
        upload_id, settings.s3_bucket, f"uploads/{upload_id}", "image/png", datetime.now(UTC)
    )
    await repo.create_upload(upload)
    await repo.create_run(
        Run(run_id, upload_id, "4:3", "2K", None, "pending", 0), upload, image_id, 9
    )
    spaces = Artifact(new_id("art"), run_id, 0, "spaces_json", settings.s3_bucket, f"{run_id}/s")
    spaces_id = await repo.store_artifact(spaces)
    mine = [
        d.model_copy(
            update={
                "run_id": run_id,
                "idempotency_key": d.idempotency_key.replace(d.run_id, run_id),
            }
        )
        for d in decisions
    ]
    leases = JobLeases(pool)
    for d in mine:
        if d.decided_by != "supervisor":
            continue
        event = {
            "kind": "comparison.completed",
            "image_artifact_id": image_id,
            "spaces_artifact_id": spaces_id,
        }
        job = NewJob(
            new_id("job"),
            run_id,
            d.step_id,
            d.attempt,
            "supervisor",
            f"supervisor:{d.idempotency_key}",
            {"topic": "planstream.comparison.completed.v1", "event": event},
            3,
        )
        assert await leases.receive(job)
    await DecisionLog(pool).write(mine)
    return Recorded(run_id, image_id, spaces_id)


_PLACEHOLDER = "run_" + "0" * 32


@pytest.fixture(scope="module")
async def runs(repo: Repository, pool: asyncpg.Pool, settings: Settings) -> list[Recorded]:
    """Three decided runs, oldest first: A retried then proceeded, B blocked, C blocked and a
    reviewer approved it."""
    a = await _recorded(
        repo,
        pool,
        settings,
        [
            _decision(_PLACEHOLDER, 0, 1, "retry", failures=[_FAILURE], consistency_score=0.55),
            _decision(_PLACEHOLDER, 0, 2, "proceed", consistency_score=0.9),
        ],
    )
    b = await _recorded(repo, pool, settings, [_decision(_PLACEHOLDER, 0, 1, "block")])
    c = await _recorded(
        repo,
        pool,
        settings,
        [
            _decision(_PLACEHOLDER, 0, 1, "block"),
            _decision(_PLACEHOLDER, 0, 1, "proceed", decided_by="reviewer"),
        ],
    )
    return [a, b, c]


@pytest.fixture(scope="module")
async def replay_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    replay = await create_replay_pool(settings, min_size=0, max_size=3)
    yield replay
    await replay.close()


async def _start(store: ReplayStore, run_ids: list[str], **kw: Any) -> tuple[str, list[Any]]:
    replay_id = new_id("rpl")
    attempts = await store.select_attempts(Selection(run_ids=tuple(run_ids)))
    versions = {"rules": "rules-v1", "prompts": {"audit": "a-1"}, "models": {"vision": "m-1"}}
    mode, max_usd = kw.get("mode", "frozen"), kw.get("max_usd")
    selection = {"run_ids": run_ids}
    await store.create(replay_id, "tester", mode, selection, versions, max_usd, attempts)
    return replay_id, attempts


async def test_selects_the_supervisors_decisions_newest_run_first(
    pool: asyncpg.Pool, runs: list[Recorded]
) -> None:
    a, b, c = runs
    store = ReplayStore(pool)
    every = (a.run_id, b.run_id, c.run_id)
    chosen = await store.select_attempts(Selection(run_ids=every))
    assert [x.key for x in chosen] == [
        (c.run_id, 0, 1),
        (b.run_id, 0, 1),
        (a.run_id, 0, 1),
        (a.run_id, 0, 2),
    ]
    retried = chosen[2]
    assert (retried.decision, retried.block_reason) == ("retry", None)
    assert [f.model_dump(exclude_none=True) for f in retried.failures] == [_FAILURE]
    assert (retried.failure_count, retried.consistency_score) == (1, 0.55)
    assert (retried.image_artifact_id, retried.spaces_artifact_id) == (a.image_id, a.spaces_id)
    assert retried.decided_on == "comparison.completed"
    assert retried.versions["rules"] == "rules-v1"
    assert chosen[1].block_reason == "LOW_CONFIDENCE_RATIO"
    assert await store.skipped(Selection(run_ids=every)) == {"reviewer": 1}

    blocked = await store.select_attempts(Selection(run_ids=every, decision="block"))
    assert [x.key for x in blocked] == [(c.run_id, 0, 1), (b.run_id, 0, 1)]
    by_reason = Selection(run_ids=every, block_reason="TOO_FEW_SPACES")
    assert await store.select_attempts(by_reason) == []
    newest = await store.select_attempts(Selection(run_ids=every, limit=3))
    assert [x.key for x in newest] == [x.key for x in chosen[:3]]  # at most 3, newest runs first
    assert await store.skipped(Selection(run_ids=(a.run_id, b.run_id))) == {}
    with pytest.raises(ValueError, match="run ids"):
        await store.select_attempts(Selection(run_ids=("run_1'; DROP TABLE x; --",)))
    later = Selection(run_ids=every, since=datetime.now(UTC) + timedelta(hours=1))
    assert await store.select_attempts(later) == []
    earlier = Selection(run_ids=every, until=chosen[-1].decided_at)
    assert (a.run_id, 0, 2) not in [x.key for x in await store.select_attempts(earlier)]


async def test_a_replay_starts_with_its_schema_and_only_the_selected_runs(
    pool: asyncpg.Pool, runs: list[Recorded]
) -> None:
    a, b, _ = runs
    store = ReplayStore(pool)
    replay_id, attempts = await _start(store, [a.run_id, b.run_id])
    schema = schema_name(replay_id)

    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
    )
    assert {t["table_name"] for t in tables} == {*REPLAY_TABLES, "replay_attempts"}
    for table, key in (("pipeline_runs", "run_id"), ("pipeline_artifacts", "run_id")):
        held = await pool.fetch(f'SELECT DISTINCT {key} FROM "{schema}".{table}')
        assert {r[key] for r in held} == {a.run_id, b.run_id}
    uploads = await pool.fetchval(f'SELECT count(*) FROM "{schema}".uploads')
    assert uploads == 2
    for empty in set(REPLAY_TABLES) - {"uploads", "pipeline_runs", "pipeline_artifacts"}:
        assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".{empty}') == 0, empty
    # Its keys refer to its own tables, and its serial draws from its own sequence.
    refers = await pool.fetch(
        "SELECT DISTINCT f.relnamespace::regnamespace::text AS ns FROM pg_constraint c"
        " JOIN pg_class f ON f.oid = c.confrelid"
        " WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace",
        schema,
    )
    assert [r["ns"] for r in refers] == [schema]
    sequence = await pool.fetchval(
        "SELECT pg_get_serial_sequence($1, 'id')", f'"{schema}".pipeline_stale_writes'
    )
    assert sequence == f"{schema}.pipeline_stale_writes_id_seq"
    answer = await pool.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'answer'"
        " AND table_name = 'pipeline_model_calls' AND table_schema IN ('public', $1)",
        schema,
    )
    assert answer == 2

    record = await store.progress(replay_id)
    assert record is not None
    assert (record.status, record.mode, record.started_by) == ("running", "frozen", "tester")
    assert (record.attempts_total, record.attempts_done, record.cost_usd) == (3, 0, 0.0)
    assert record.versions["models"] == {"vision": "m-1"}
    assert await store.attempts(replay_id) == attempts
    assert all(r.status == "pending" for r in await store.replayed(replay_id))
    assert [o.decision_id for o in await store.originals(replay_id)] == [
        x.decision_id for x in attempts
    ]
    with pytest.raises(Conflict):
        await store.create(replay_id, "tester", "frozen", {}, {}, None, attempts)


async def test_production_statements_through_the_replay_pool_write_only_the_replay(
    pool: asyncpg.Pool, replay_pool: asyncpg.Pool, runs: list[Recorded], settings: Settings
) -> None:
    a, b, _ = runs
    store = ReplayStore(pool)
    untouched = await fingerprint(pool)
    replay_id, _ = await _start(store, [a.run_id, b.run_id])
    started = await fingerprint(pool)
    changed = differences(untouched, started)
    assert [line.split(":")[0] for line in changed] == ["table pipeline_replays"]
    schema = schema_name(replay_id)

    with replay_scope(replay_id):
        leases, repo = JobLeases(replay_pool), Repository(replay_pool)
        key = step_key(a.run_id, 0, 1)
        job = NewJob(new_id("job"), a.run_id, 0, 1, "supervisor", f"supervisor:{key}", {}, 3)
        lease = await leases.acquire(job, worker_id="replay-w", lease_s=60)
        assert isinstance(lease, Lease)
        stale = Lease(lease.job_id, lease.epoch + 5, lease.deliveries)
        finished = await leases.finish(
            stale, "zombie", status="completed", result_ref=None, processing_time_ms=1
        )
        assert not finished  # refused, and recorded in the replay's pipeline_stale_writes
        artifact = Artifact(
            new_id("art"), a.run_id, 0, "spaces_json", settings.s3_bucket, f"replays/{a.run_id}"
        )
        assert await repo.store_artifact(artifact) == artifact.artifact_id
        call = ModelCall(
            call_id=f"call-{lease.job_id}",
            run_id=a.run_id,
            step_id=0,
            attempt=1,
            job_id=lease.job_id,
            service="supervisor",
            purpose="audit",
            model="m-1",
            prompt_version="a-1",
            outcome="answered",
            input_tokens=100,
            output_tokens=20,
            cost_usd=0.0125,
            latency_ms=30,
            finish_reason="stop",
            error=None,
        )
        await ModelCallLog(replay_pool).record(call)
        assert await Routes(replay_pool).claim(b.run_id, 1, 1, "new") == "new"
        again = _decision(a.run_id, 0, 1, "block", failures=[_FAILURE], consistency_score=0.4)
        onward = _decision(b.run_id, 1, 1, "proceed")
        stored = await DecisionLog(replay_pool).write([again, onward])
        assert len(stored) == 2  # new in the replay, though production decided (A, 0, 1)
        moved = await repo.get_run(b.run_id)
        assert moved is not None and moved.current_step == 2  # the replay's copy of B moved

    assert differences(started, await fingerprint(pool)) == []
    production = await Repository(pool).get_run(b.run_id)
    assert production is not None and production.current_step != 2
    for table, count in (
        ("pipeline_jobs", 1),
        ("pipeline_stale_writes", 1),
        ("pipeline_model_calls", 1),
        ("pipeline_decisions", 2),
        ("pipeline_step_routes", 1),
        ("pipeline_artifacts", 5),  # two runs' source and Spaces artifacts, and the new one
    ):
        assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".{table}') == count, table

    replayed = {(r.run_id, r.step_id, r.attempt): r for r in await store.replayed(replay_id)}
    first = replayed[(a.run_id, 0, 1)]
    assert first.decision is not None and first.decision.decision == "block"
    assert (first.cost_usd, first.model_calls) == (0.0125, 1)
    side = first.side()
    assert side is not None and side.consistency_score == 0.4
    assert replayed[(a.run_id, 0, 2)].decision is None
    originals = {(o.run_id, o.step_id, o.attempt): o for o in await store.originals(replay_id)}
    assert originals[(a.run_id, 0, 1)].decision == "retry"

    assert await store.mark_attempt(replay_id, a.run_id, 0, 1, "decided")
    assert not await store.mark_attempt(replay_id, a.run_id, 0, 1, "failed")  # first stays
    assert await store.mark_attempt(replay_id, a.run_id, 0, 2, "failed", "x" * 5000)
    assert (await store.status(replay_id)) == "running"
    assert await store.mark_attempt(replay_id, b.run_id, 0, 1, "decided", reconstructed=True)
    record = await store.progress(replay_id)
    assert record is not None
    assert (record.status, record.attempts_done, record.attempts_failed) == ("completed", 2, 1)
    assert record.finished_at is not None
    errors = {r.attempt: r.error for r in await store.replayed(replay_id) if r.run_id == a.run_id}
    assert errors[1] is None and errors[2] is not None and len(errors[2]) == 2000


async def test_an_acquire_outside_a_replay_is_refused(
    replay_pool: asyncpg.Pool, runs: list[Recorded], pool: asyncpg.Pool
) -> None:
    with pytest.raises(ReplayUnset):
        await replay_pool.fetchval("SELECT count(*) FROM pipeline_runs")
    with pytest.raises(ReplayUnset):
        async with replay_pool.acquire():
            pass
    replay_id, _ = await _start(ReplayStore(pool), [runs[1].run_id])
    with replay_scope(replay_id):  # the pool goes on working for a replay
        assert await replay_pool.fetchval("SELECT count(*) FROM pipeline_runs") == 1
        path = await replay_pool.fetchval("SHOW search_path")
        assert path.replace('"', "") == f"{schema_name(replay_id)}, public"


async def test_two_replays_of_the_same_attempts_do_not_collide(
    pool: asyncpg.Pool, replay_pool: asyncpg.Pool, runs: list[Recorded]
) -> None:
    a = runs[0]
    store = ReplayStore(pool)
    first, _ = await _start(store, [a.run_id])
    second, _ = await _start(store, [a.run_id])
    decision = _decision(a.run_id, 0, 1, "proceed")
    for replay_id in (first, second):
        with replay_scope(replay_id):
            assert len(await DecisionLog(replay_pool).write([decision])) == 1
    for replay_id in (first, second):
        schema = schema_name(replay_id)
        assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".pipeline_decisions') == 1


async def test_cancel_and_cost(pool: asyncpg.Pool, runs: list[Recorded]) -> None:
    a = runs[0]
    store = ReplayStore(pool)
    replay_id, _ = await _start(store, [a.run_id], mode="live", max_usd=0.05)
    assert await store.reserve(replay_id, 0.03)
    assert not await store.reserve(replay_id, 0.03)  # would pass the cap
    assert await store.add_cost(replay_id, -0.01) == pytest.approx(0.02)
    assert await store.spent(replay_id) == pytest.approx(0.02)
    assert await store.mark_attempt(replay_id, a.run_id, 0, 1, "decided")
    assert await store.cancel(replay_id)
    assert not await store.cancel(replay_id)
    assert not await store.mark_attempt(replay_id, a.run_id, 0, 2, "decided")
    record = await store.progress(replay_id)
    assert record is not None
    assert (record.status, record.attempts_done, record.max_usd) == ("cancelled", 1, 0.05)
    statuses = [r.status for r in await store.replayed(replay_id)]
    assert sorted(statuses) == ["cancelled", "decided"]


async def test_purge_drops_the_schema_once_no_connection_uses_it(
    pool: asyncpg.Pool, replay_pool: asyncpg.Pool, runs: list[Recorded]
) -> None:
    store = ReplayStore(pool)
    replay_id, _ = await _start(store, [runs[1].run_id])
    schema = schema_name(replay_id)
    with pytest.raises(Conflict, match="running"):
        await store.purge(replay_id)
    assert await store.cancel(replay_id)
    with replay_scope(replay_id):
        async with replay_pool.acquire():  # a worker inside the replay holds its lock
            with pytest.raises(Conflict, match="in use"):
                await store.purge(replay_id)
    assert replay_id in await store.expired(timedelta(0))
    await store.purge(replay_id)

    assert await pool.fetchval("SELECT to_regnamespace($1)", schema) is None
    assert await store.status(replay_id) == "purged"
    assert replay_id not in await store.expired(timedelta(0))
    with replay_scope(replay_id), pytest.raises(ReplayGone):
        await replay_pool.fetchval("SELECT count(*) FROM pipeline_runs")
    with pytest.raises(ReplayGone):
        await store.replayed(replay_id)


async def test_the_isolation_checker_sees_a_write_to_public(
    pool: asyncpg.Pool, repo: Repository, runs: list[Recorded], settings: Settings
) -> None:
    """Self-test: the fingerprint that proves a replay wrote nothing can see a write."""
    before = await fingerprint(pool)
    unlisted = await fingerprint(pool, skip=("uploads",))
    upload_id = new_id("upl")
    await repo.create_upload(
        Upload(
            upload_id, settings.s3_bucket, f"uploads/{upload_id}", "image/png", datetime.now(UTC)
        )
    )
    added = await fingerprint(pool)
    assert [line.split(":")[0] for line in differences(before, added)] == ["table uploads"]
    assert differences(unlisted, await fingerprint(pool, skip=("uploads",))) == []

    await pool.execute(
        "UPDATE pipeline_runs SET request_text = 'changed' WHERE run_id = $1", runs[0].run_id
    )
    edited = await fingerprint(pool)
    assert [line.split(":")[0] for line in differences(added, edited)] == ["table pipeline_runs"]

    await pool.fetchval("SELECT nextval('public.pipeline_stale_writes_id_seq')")
    drawn = differences(edited, await fingerprint(pool))
    assert [line.split(":")[0] for line in drawn] == ["sequence pipeline_stale_writes_id_seq"]
