"""The Info Worker, Comparison Worker, Supervisor and decisions sink in replay mode, as
processes on the real stack, each replay started by an ``InfoRequested`` on the replay topic
(what ``planstream replay start`` publishes): a frozen replay re-decides a recorded attempt
with no model call, every row and object under the replay, production's rows and topics as
they were; a live replay's calls over its cap are refused unmade (REPLAY_COST_CAP); a
cancelled replay's events are dropped."""

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from planstream.adapters.kafka import EventPublisher
from planstream.adapters.postgres.decision_log import DecisionLog
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.model_calls import ModelCallLog
from planstream.adapters.postgres.replays import ReplayStore, Selection, schema_name
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.storage import Storage
from planstream.dev.launcher import log_holds, replay_workers, running
from planstream.domain.events import (
    ComparisonCompleted,
    DecisionMade,
    InfoRequested,
    step_key,
)
from planstream.domain.ids import new_id
from planstream.domain.records import Artifact, NewJob
from planstream.ports import ModelCall
from planstream.settings import Settings
from tests.conformance.repository import make_run
from tests.replaykit import differences, fingerprint
from tests.stackkit import read_topic, wait_for
from tests.unit.services.steps import WHEN, clean_plan
from topics import CATALOGUE, INFO_EXTRACTED, INFO_REQUESTED, REPLAY_FAMILY, replay_twin

_AUDIT = {"consistency_score": 0.9, "contradictions": ["S4 may be a WC"]}


@pytest.fixture(scope="module")
def replay_logs(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The four replay workers, running for the module; their logs' folder."""
    logs = tmp_path_factory.mktemp("replay-workers")
    with running(settings, replay_workers(), logs):
        yield logs


@pytest.fixture(scope="module")
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    store = Storage(settings)
    await store.start()
    try:
        yield store
    finally:
        await store.stop()


async def _recorded_attempt(
    settings: Settings, pool: asyncpg.Pool, storage: Storage
) -> tuple[str, str, str]:
    """A step attempt production decided (proceed, audit 0.9) whose audit answer is recorded
    and whose extraction (made before answers were kept) is not; (run, image, spaces)."""
    repo = Repository(pool)
    run, image = await make_run(repo, settings.s3_bucket)
    await repo.merge_artifact_metadata(image, {"width_px": 2400, "height_px": 1800})
    path = f"runs/{run.run_id}/step-0/spaces_json-{new_id('art')[4:]}.json"
    await storage.write(path, json.dumps(clean_plan(), sort_keys=True).encode(), "application/json")
    spaces = await repo.store_artifact(
        Artifact(new_id("art"), run.run_id, 0, "spaces_json", settings.s3_bucket, path, {})
    )
    key = step_key(run.run_id, 0, 1)
    common: dict[str, Any] = {
        "run_id": run.run_id,
        "occurred_at": WHEN,
        "step_id": 0,
        "attempt": 1,
        "idempotency_key": key,
    }
    compared = ComparisonCompleted(
        **common,
        event_id=new_id("evt"),
        job_id=new_id("job"),
        image_artifact_id=image,
        spaces_artifact_id=spaces,
        schema_valid=True,
        passed=True,
        failure_count=0,
        model_calls=1,
    )
    job = NewJob(
        new_id("job"),
        run.run_id,
        0,
        1,
        "supervisor",
        f"supervisor:{key}",
        {"topic": "planstream.comparison.completed.v1", "event": compared.model_dump(mode="json")},
        3,
    )
    await JobLeases(pool).receive(job)
    await ModelCallLog(pool).record(
        ModelCall(
            call_id=new_id("evt"),
            run_id=run.run_id,
            step_id=0,
            attempt=1,
            job_id=job.job_id,
            service="supervisor",
            purpose="audit",
            model=settings.model_vision,
            prompt_version="audit-v1",
            outcome="answered",
            input_tokens=900,
            output_tokens=40,
            cost_usd=0.003,
            latency_ms=800,
            finish_reason="stop",
            error=None,
            answer=json.dumps(_AUDIT),
        )
    )
    decided = DecisionMade(
        **common,
        event_id=new_id("evt"),
        decision="proceed",
        block_reason=None,
        failure_count=0,
        schema_valid=True,
        consistency_score=0.9,
        contradictions=["S4 may be a WC"],
        retry_budget_remaining=2,
        image_artifact_id=image,
        spaces_artifact_id=spaces,
    )
    await DecisionLog(pool).write([decided])
    return run.run_id, image, spaces


async def _production(settings: Settings, pool: asyncpg.Pool) -> dict[str, Any]:
    """Every production table and sequence (rows and their digest; not the registry, whose
    progress the replay keeps), and the messages on every production topic."""
    counts = await fingerprint(pool, skip=("pipeline_replays",))
    replay_topics = {spec.name for spec in REPLAY_FAMILY}
    for spec in CATALOGUE:
        if spec.name not in replay_topics:
            counts[spec.name] = len(await read_topic(settings, spec))
    return counts


async def _start(
    pool: asyncpg.Pool, run_id: str, image: str, mode: Any, max_usd: float | None = None
) -> tuple[str, InfoRequested]:
    """A replay of the run's recorded attempt; its id and the request that starts it (what
    ``planstream replay start`` publishes for the attempt)."""
    store = ReplayStore(pool)
    selection = Selection(run_ids=(run_id,))
    attempts = await store.select_attempts(selection)
    replay_id = new_id("rpl")
    await store.create(replay_id, "test", mode, selection.as_json(), {}, max_usd, attempts)
    requested = InfoRequested(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=WHEN,
        step_id=0,
        attempt=1,
        idempotency_key=step_key(run_id, 0, 1),
        artifact_ids=[image],
        quality="2K",
        replay_id=replay_id,
    )
    return replay_id, requested


async def _publish(settings: Settings, requested: InfoRequested) -> None:
    publisher = EventPublisher(settings, "test")
    await publisher.start()
    try:
        await publisher.publish(replay_twin(INFO_REQUESTED), requested)
    finally:
        await publisher.stop()


async def _completed(store: ReplayStore, replay_id: str) -> None:
    async def done() -> bool:
        record = await store.progress(replay_id)
        return record is not None and record.status == "completed"

    await wait_for(done, timeout_s=120)


async def test_a_frozen_replay_re_decides_an_attempt_inside_the_replay_only(
    settings: Settings, pool: asyncpg.Pool, storage: Storage, replay_logs: Path
) -> None:
    run_id, image, spaces = await _recorded_attempt(settings, pool, storage)
    store = ReplayStore(pool)
    [attempt] = await store.select_attempts(Selection(run_ids=(run_id,)))
    assert (attempt.image_artifact_id, attempt.spaces_artifact_id) == (image, spaces)
    replay_id, requested = await _start(pool, run_id, image, "frozen")
    before = await _production(settings, pool)

    await _publish(settings, requested)
    await _completed(store, replay_id)

    [replayed] = await store.replayed(replay_id)
    assert (replayed.status, replayed.error, replayed.reconstructed) == ("decided", None, True)
    assert replayed.decision is not None
    assert (replayed.decision.decision, replayed.decision.consistency_score) == ("proceed", 0.9)
    assert replayed.cost_usd == 0

    schema = schema_name(replay_id)
    calls = await pool.fetch(
        f"SELECT purpose, outcome, cost_usd, answer FROM {schema}.pipeline_model_calls"
        " WHERE outcome <> 'started' ORDER BY created_at"
    )
    assert [(c["purpose"], c["outcome"], float(c["cost_usd"])) for c in calls] == [
        ("extract", "answered", 0.0),
        ("audit", "answered", 0.0),
    ]
    assert json.loads(calls[1]["answer"]) == _AUDIT
    made = await pool.fetch(
        f"SELECT storage_path FROM {schema}.pipeline_artifacts WHERE run_id = $1"
        " AND kind IN ('spaces_json', 'model_response') AND artifact_id <> $2",
        run_id,
        spaces,
    )
    assert len(made) == 2
    assert all(row["storage_path"].startswith(f"replays/{replay_id}/runs/") for row in made)

    assert differences(before, await _production(settings, pool)) == []
    twins = {spec.name: await _of(settings, spec, replay_id) for spec in REPLAY_FAMILY}
    assert twins == {
        "planstream.replay.info.requested.v1": 1,
        "planstream.replay.step.failed.v1": 0,
        "planstream.replay.info.extracted.v1": 1,
        "planstream.replay.comparison.completed.v1": 1,
        "planstream.replay.decision.made.v1": 1,
    }


async def _of(settings: Settings, spec: Any, replay_id: str) -> int:
    """How many messages of the replay the topic holds."""
    records = await read_topic(settings, spec)
    return sum(json.loads(r.value or b"{}").get("replay_id") == replay_id for r in records)


async def test_a_live_replay_over_its_cap_calls_no_model_and_blocks_on_the_cap(
    settings: Settings, pool: asyncpg.Pool, storage: Storage, replay_logs: Path
) -> None:
    run_id, image, _ = await _recorded_attempt(settings, pool, storage)
    store = ReplayStore(pool)
    replay_id, requested = await _start(pool, run_id, image, "live", max_usd=0.0001)

    await _publish(settings, requested)
    await _completed(store, replay_id)

    [replayed] = await store.replayed(replay_id)
    assert replayed.decision is not None
    assert (replayed.decision.decision, replayed.decision.block_reason) == (
        "block",
        "REPLAY_COST_CAP",
    )
    assert replayed.decision.failures[0].rule == "REPLAY_COST_CAP"
    schema = schema_name(replay_id)
    calls = await pool.fetch(
        f"SELECT purpose, outcome, cost_usd FROM {schema}.pipeline_model_calls"
        " WHERE outcome <> 'started' ORDER BY created_at"
    )
    assert [(c["purpose"], c["outcome"], float(c["cost_usd"])) for c in calls] == [
        ("extract", "refused", 0.0),  # a refusal ends the calls of its purpose: one each
        ("audit", "refused", 0.0),
    ]
    record = await store.progress(replay_id)
    assert record is not None and record.cost_usd == 0


async def test_a_cancelled_replays_events_are_dropped(
    settings: Settings, pool: asyncpg.Pool, storage: Storage, replay_logs: Path
) -> None:
    run_id, image, _ = await _recorded_attempt(settings, pool, storage)
    store = ReplayStore(pool)
    replay_id, requested = await _start(pool, run_id, image, "frozen")
    assert await store.cancel(replay_id)

    await _publish(settings, requested)

    line = f"info_worker dropped InfoRequested of replay {replay_id}: the replay is cancelled"

    async def dropped() -> bool:
        return log_holds(replay_logs / "info_worker-replay.log", line)

    await wait_for(dropped, timeout_s=60)
    [replayed] = await store.replayed(replay_id)
    assert (replayed.status, replayed.decision) == ("cancelled", None)
    assert await _of(settings, replay_twin(INFO_EXTRACTED), replay_id) == 0
