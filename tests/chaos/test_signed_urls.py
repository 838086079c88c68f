"""T25: the presigned-URL lifecycle. A signed URL the model would fetch is a bearer credential
with an expiry; one that expired, was altered or names another object must never reach the
model, and one that expires inside a retry window is minted again: never a failed step.

Control first: through the environment's S3 (fault proxy, then the S3 gate, then moto), a URL
minted with ExpiresIn=1 and used after 2 s, one with a signature byte flipped and one re-pointed
at another key must answer 403, a fresh one 200 — else the test is void and fails saying so
(moto alone serves all of them; its answer to the expired URL is reported).

Then, with the Info Worker on a 30 s URL lifetime and a 5 s refresh margin:

- planted: while the Info Worker is paused, three runs' step 0 passes Image I/O; their image's
  cached URL is replaced by an expired one (its row still claiming an hour), an altered one
  and one for another object; the worker resumes. None may be sent to the model; each step
  completes in one attempt without a refused call.
- retry window: a run's cached URL is an honest one that outlives the margin by a few seconds;
  the model front answers 429 to every extraction until that URL has expired, then serves.
  The tries that follow must carry a fresh URL (the expired one passed to the model would make
  its download fail: a refused call, a second attempt). Staged again with more slack if the
  worker was too slow to see the planted URL while it was valid.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from planstream.adapters.presigned import parse
from planstream.adapters.storage import Storage
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import MadeRun, make_runs
from planstream.dev.chaos.load import Ledger, LedgerEntry
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.modelfaults import ModelPlan, url_digest
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.chaos.url_lifecycle import (
    Planted,
    UrlRun,
    control_void,
    stale_urls_given,
    url_steps_failed,
    window_missed,
)
from planstream.settings import Settings

SHORT_URLS = {"signed_url_ttl_s": 30, "signed_url_refresh_margin_s": 5}
WINDOW_SLACK_S = (8, 16, 24)  # the planted URL outlives the margin by this much; more if missed
_WAIT_S = 120.0


def _flip(url: str) -> str:
    return url[:-1] + ("0" if url[-1] != "0" else "1")


async def _status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as answer:
        await answer.read()
        return answer.status


async def _control(env: Harness, storage: Storage) -> tuple[dict[str, int], int]:
    """Each case's status through the environment's S3, and moto's own for an expired URL."""
    key, other = f"chaos-t25/{uuid.uuid4().hex}.png", f"chaos-t25/{uuid.uuid4().hex}.png"
    image = env.samples[0].path.read_bytes()
    await storage.write(key, image, "image/png")
    await storage.write(other, image, "image/png")
    bucket = storage.bucket
    fresh = await storage.presign_get(bucket, key, 60)
    expired = await storage.presign_get(bucket, key, 1)
    other_url = await storage.presign_get(bucket, other, 60)
    moto = Storage(env.settings.with_overrides(s3_endpoint=env.base.s3_endpoint))
    await moto.start()
    try:
        moto_expired = await moto.presign_get(bucket, key, 1)
    finally:
        await moto.stop()
    await asyncio.sleep(2.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        statuses = {
            "fresh": await _status(session, fresh),
            "expired": await _status(session, expired),
            "tampered": await _status(session, _flip(fresh)),
            "other_key": await _status(session, fresh.replace(key, other)),
            "other_key_own_url": await _status(session, other_url),
        }
        return statuses, await _status(session, moto_expired)


async def _request_step0(env: Harness, runs: list[MadeRun]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for run in runs:
            url = f"{env.ingress_url}/v1/runs/{run.run_id}/steps/0"
            headers = {**env.auth(), "Idempotency-Key": f"{run.run_id}-t25"}
            async with session.post(url, headers=headers) as answer:
                if answer.status not in (200, 202):
                    raise RuntimeError(f"step 0 of {run.run_id}: {answer.status}")


async def _images_checked(env: Harness, runs: list[MadeRun]) -> dict[str, dict[str, Any]]:
    """Wait until Image I/O finished step 0 of every run; each run's image artifact row."""
    ids = [r.run_id for r in runs]
    deadline = time.monotonic() + _WAIT_S
    conn = await env.connect()
    try:
        while time.monotonic() < deadline:
            done = await conn.fetchval(
                "SELECT count(*) FROM pipeline_jobs WHERE run_id = ANY($1) AND step_id = 0"
                " AND service = 'image_io' AND status = 'completed'",
                ids,
            )
            if done == len(ids):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"Image I/O did not finish step 0 of {ids} in {_WAIT_S:.0f} s")
        rows = await conn.fetch(
            "SELECT artifact_id, run_id, storage_bucket, storage_path FROM pipeline_artifacts"
            " WHERE artifact_id = ANY($1)",
            [r.source_artifact_id for r in runs],
        )
        return {row["run_id"]: dict(row) for row in rows}
    finally:
        await conn.close()


async def _plant(env: Harness, artifact_id: str, url: str, row_valid_s: float) -> None:
    conn = await env.connect()
    try:
        await conn.execute(
            "UPDATE pipeline_artifacts SET signed_url_cached = $2, signed_url_expires_at = $3"
            " WHERE artifact_id = $1",
            artifact_id,
            url,
            datetime.now(UTC) + timedelta(seconds=row_valid_s),
        )
    finally:
        await conn.close()


def _key(row: dict[str, Any]) -> str:
    return f"/{row['storage_bucket']}/{row['storage_path']}"


async def _planted_cases(env: Harness, storage: Storage, ledger: Ledger) -> list[Planted]:
    """Three runs whose cached URL is expired (row: an hour), altered, or for another object.
    The Info Worker is paused meanwhile (a few seconds: under its Kafka session timeout)."""
    runs = await make_runs(env.ingress_url, _correct(env, 3, first=0), env.token())
    env.rig.pause("info_worker")
    try:
        await _request_step0(env, runs)
        rows = await _images_checked(env, runs)
        expired_row, tampered_row, other_row = (rows[r.run_id] for r in runs)
        minted = time.monotonic()
        expired = await storage.presign_get(
            expired_row["storage_bucket"], expired_row["storage_path"], 1
        )
        altered = _flip(
            await storage.presign_get(
                tampered_row["storage_bucket"], tampered_row["storage_path"], 600
            )
        )
        other = await storage.presign_get(
            expired_row["storage_bucket"], expired_row["storage_path"], 600
        )
        planted = [
            Planted("expired", expired_row["run_id"], _key(expired_row), url_digest(expired), 0),
            Planted("tampered", tampered_row["run_id"], _key(tampered_row), url_digest(altered), 0),
            Planted("other_key", other_row["run_id"], _key(other_row), url_digest(other), 0),
        ]
        for row, url in ((expired_row, expired), (tampered_row, altered), (other_row, other)):
            await _plant(env, row["artifact_id"], url, 3_600)
        await asyncio.sleep(max(0.0, minted + 2.0 - time.monotonic()))  # used after 2 s
    finally:
        env.rig.resume("info_worker")
    for run in runs:
        ledger.add(LedgerEntry(run.run_id, "correct", f"{run.run_id}-t25", "acked", time.time()))
    return planted


async def _window_case(
    env: Harness, storage: Storage, ledger: Ledger, slack_s: float
) -> tuple[Planted, list[Any]]:
    """A run whose honest cached URL expires while the model front answers 429."""
    assert env.model is not None
    since = time.time()
    # Another plan than the planted cases': their calls never count as this image's.
    [run] = await make_runs(env.ingress_url, _correct(env, 1, first=3), env.token())
    margin = SHORT_URLS["signed_url_refresh_margin_s"]
    env.model.plan(ModelPlan(weights={"429": 1.0}, schemas=frozenset({"spaces_v1"})))
    try:
        env.rig.pause("info_worker")
        try:
            await _request_step0(env, [run])
            row = (await _images_checked(env, [run]))[run.run_id]
            lifetime = margin + slack_s
            url = await storage.presign_get(
                row["storage_bucket"], row["storage_path"], int(lifetime)
            )
            signed = parse(urlsplit(url).query)
            assert signed is not None
            expires_at = signed.expires_at.timestamp()
            await _plant(env, row["artifact_id"], url, expires_at - time.time())
        finally:
            env.rig.resume("info_worker")
        await asyncio.sleep(max(0.0, expires_at + 1.5 - time.time()))
    finally:
        env.model.heal()
    ledger.add(LedgerEntry(run.run_id, "correct", f"{run.run_id}-t25", "acked", time.time()))
    window = Planted("window", run.run_id, _key(row), url_digest(url), expires_at)
    return window, env.model.seen(since)


def _correct(env: Harness, count: int, first: int) -> list[Any]:
    pool = [s for s in env.samples if s.scenario == "correct"]
    return [pool[(first + i) % len(pool)] for i in range(count)]


async def _runs(env: Harness, ledger: Ledger) -> tuple[list[UrlRun], dict[str, str]]:
    """How step 0 of each run went, and each run's status."""
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT r.run_id,"
            " (SELECT d.decision FROM pipeline_decisions d WHERE d.run_id = r.run_id"
            "  AND d.step_id = 0 AND d.attempt = 1 AND d.decided_by = 'supervisor') AS first,"
            " (SELECT coalesce(max(attempt), 0) FROM pipeline_jobs j WHERE j.run_id = r.run_id"
            "  AND j.step_id = 0 AND j.service = 'info_worker') AS attempts,"
            " (SELECT count(*) FROM pipeline_model_calls c WHERE c.run_id = r.run_id"
            "  AND c.outcome = 'refused') AS refused"
            " FROM pipeline_runs r WHERE r.run_id = ANY($1)",
            ledger.run_ids,
        )
        statuses = await conn.fetch(
            "SELECT run_id, status FROM pipeline_runs WHERE run_id = ANY($1)", ledger.run_ids
        )
    finally:
        await conn.close()
    runs = [UrlRun(r["run_id"], r["first"], int(r["attempts"]), int(r["refused"])) for r in rows]
    return runs, {r["run_id"]: r["status"] for r in statuses}


async def _storage(settings: Settings) -> Storage:
    storage = Storage(settings)
    await storage.start()
    return storage


@pytest.mark.timeout(1800)
async def test_t25_presigned_url_lifecycle(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    assert env.model is not None and env.s3_gate is not None
    marks = await mark(env)
    storage = await _storage(env.settings)
    result = Result(
        "T25",
        "presigned-URL lifecycle",
        "cached URL expired (ExpiresIn=1, used after 2 s), altered, for another key; an honest"
        " URL expiring inside a 429 retry window",
        profile.name,
        seed,
    )
    ledger = Ledger()
    try:
        statuses, moto_expired = await _control(env, storage)
        void = control_void(statuses)
        if void.value:
            result.verdict = "FAIL"
            why = f"VOID: the S3 emulator does not refuse as S3 does: {void.evidence}"
            result.violations = [why]
            result.figures = {"control": statuses, "moto_alone_expired_status": moto_expired}
            record(result)
            pytest.fail(result.violations[0])
        env.restart("info_worker", overrides=SHORT_URLS)
        try:
            planted = await _planted_cases(env, storage, ledger)
            await quiesce(env, ledger, profile.quiesce_s)
            window, calls, staged = None, [], []
            for slack in WINDOW_SLACK_S:
                window, calls = await _window_case(env, storage, ledger, slack)
                staged.append(window.run_id)
                await quiesce(env, ledger, profile.quiesce_s)
                if not window_missed(env.model.seen(marks.model_calls_since), window).value:
                    break
            drained = await quiesce(env, ledger, profile.quiesce_s)
        finally:
            env.restart("info_worker")  # back to the session's settings
    finally:
        await storage.stop()
    assert window is not None
    seen = env.model.seen(marks.model_calls_since)
    refusals = env.s3_gate.refusals(marks.model_calls_since)
    runs, statuses_by_run = await _runs(env, ledger)
    checks = [
        stale_urls_given(seen, [*planted, window]),
        window_missed(seen, window),
        url_steps_failed(runs),
    ]
    figures = {
        "control": statuses,
        "moto_alone_expired_status": moto_expired,
        "gate_refusals": len(refusals),
        "window_stagings": len(staged),
        "window_calls_held": sum(
            1 for c in calls if c.url_digest == window.digest and c.fault == "429"
        ),
        "runs": [f"{r.run_id[:12]}:{statuses_by_run[r.run_id]}:a{r.step0_attempts}" for r in runs],
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations
