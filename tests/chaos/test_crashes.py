"""Worker deaths: T01 kill -9 at named crash points and at random, T02 dedup mark vs effect,
T03 a paused worker resuming after its lease expired, T07 a rebalance storm.

T03 also checks the dashboards panels that are empty on a healthy system (lease take-overs, stale
writes, dead letters): after its fault and one poison event, each panel's own query, for this
environment's namespace, must return series on the local stack's Prometheus.

Every process signalled here was started by the harness (by name, pid files in run/); every
loop is bounded; the invariants are checked offline afterwards (planstream.dev.chaos.measure).
"""

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from planstream.dev.chaos import faults
from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.inject import produce
from planstream.dev.chaos.load import Ledger
from planstream.dev.chaos.measure import first_progress_after, mark, measure, quiesce
from planstream.dev.chaos.modelfaults import ModelPlan
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result
from planstream.dev.dashboards.evaluation import fault_filled, unfilled_on
from planstream.dev.dashboards.files import DASHBOARDS_DIR
from planstream.dev.dashboards.queries import panel_queries
from topics import STEP_REQUESTED

# Each wave arms at most one point per service, so one load reaches them all in parallel.
WAVES = (
    (
        "image_io.after_emit",
        "info_worker.after_model_call",
        "comparison_worker.after_emit",
        "supervisor.after_decision",
        "render_worker.after_store",
        "decisions_sink.after_write",
    ),
    ("info_worker.after_emit", "supervisor.after_follow"),
)
FULL_RUNS = ("correct", "flawed_then_correct")
PANEL_FILL_TIMEOUT_S = 120.0  # a dead letter, then two scrapes of every counter


async def _recovery(env: Harness, watch: faults.CrashWatch) -> float | None:
    """The slowest time from a crash to the next job finished anywhere after it."""
    times = [await first_progress_after(env, crash.at) for crash in watch.crashes]
    known = [t for t in times if t is not None]
    return round(max(known), 1) if known else None


def _unreached(watch: faults.CrashWatch) -> list[Check]:
    return [
        Check("T01", f"crash point not reached: {','.join(watch.armed[name])}", 1)
        for name in watch.pending
    ]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("wave", range(len(WAVES)), ids=["wave1", "wave2"])
async def test_t01_kill_at_named_crash_points(
    env: Harness, profile: Profile, seed: int, record, wave: int
) -> None:
    points = WAVES[wave]
    for repeat in range(1, profile.crash_rounds + 1):
        marks = await mark(env)
        watch = await faults.arm(env, points)
        ledger = await env.load(3, seed=seed + repeat, scenarios=FULL_RUNS)
        ledger.extend(await env.load(2, seed=seed + repeat, scenarios=("flawed_then_correct",)))
        await faults.watch(env, watch, timeout_s=profile.quiesce_s / 2)
        await faults.disarm(env, watch)
        drained = await quiesce(env, ledger, profile.quiesce_s)
        result = Result(
            "T01", "worker kill -9", f"crash points {', '.join(points)}", profile.name, seed, repeat
        )
        figures = {
            "crashes": len(watch.crashes),
            "exit_codes": sorted({c.code for c in watch.crashes if c.code is not None}),
            "drain_s": round(drained, 1),
        }
        result.recovery_s = await _recovery(env, watch)
        await measure(env, marks, ledger, result, extra_checks=_unreached(watch), figures=figures)
        record(result)
        assert result.verdict == "PASS", result.violations


@pytest.mark.timeout(3600)
async def test_t01_random_kill_minus_9_under_load(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    for repeat in range(1, profile.kill_repeats + 1):
        marks = await mark(env)
        span_s = profile.kills * profile.kill_every_s
        count = profile.runs * 2
        load = asyncio.create_task(
            env.load(count, seed=seed + repeat, rate_per_s=count / span_s, scenarios=FULL_RUNS)
        )
        kills = await faults.kill_loop(
            env,
            faults.STEP_SERVICES,
            kills=profile.kills,
            every_s=profile.kill_every_s,
            seed=seed + repeat,
        )
        ledger = await load
        drained = await quiesce(env, ledger, profile.quiesce_s)
        result = Result(
            "T01", "worker kill -9", "random kill -9 every ~15 s", profile.name, seed, repeat
        )
        watch = faults.CrashWatch({}, kills)
        result.recovery_s = await _recovery(env, watch)
        figures = {"kills": [c.name for c in kills], "drain_s": round(drained, 1)}
        await measure(env, marks, ledger, result, figures=figures)
        record(result)
        assert result.verdict == "PASS", result.violations


@pytest.mark.timeout(3600)
async def test_t02_dedup_mark_after_effect(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    """Crash after the effect and its output, before the dedup mark: the step runs again on
    redelivery and its duplicate output is absorbed; nothing is marked done without output."""
    for repeat in range(1, profile.dedup_repeats + 1):
        marks = await mark(env)
        watch = await faults.arm(env, ("dedup.after_emit_before_mark",))
        ledger = await env.load(2, seed=seed + repeat, scenarios=FULL_RUNS)
        await faults.watch(env, watch, timeout_s=profile.quiesce_s / 2)
        await faults.disarm(env, watch)
        drained = await quiesce(env, ledger, profile.quiesce_s)
        result = Result(
            "T02",
            "dedup mark vs effect",
            "crash point dedup.after_emit_before_mark",
            profile.name,
            seed,
            repeat,
        )
        result.recovery_s = await _recovery(env, watch)
        figures = {"crashes": len(watch.crashes), "drain_s": round(drained, 1)}
        extra = (
            [Check("T02", "no service reached dedup.after_emit_before_mark", 1)]
            if not watch.crashes
            else []
        )
        await measure(env, marks, ledger, result, extra_checks=extra, figures=figures)
        record(result)
        assert result.verdict == "PASS", result.violations


async def _unfilled_panels(env: Harness) -> list[str]:
    """Dead-letter one undecodable step request, then evaluate every panel that is empty on a
    healthy system for this environment: the panels still without series (or refused)."""
    topic = STEP_REQUESTED.full_name(env.settings.topic_namespace)
    [sent] = await produce(env.settings, topic, [("poison", b"t03-poison", b"\x00\xff{", None)])
    assert sent.refused is None, f"the poison event was not sent: {sent}"
    queries = fault_filled(
        [
            query
            for path in sorted(DASHBOARDS_DIR.glob("*.json"))
            for query in panel_queries(json.loads(path.read_text()))
        ]
    )
    assert queries, "no dashboard panel says it is empty on a healthy system"
    return await unfilled_on(
        env.base.prometheus_url, env.settings, queries, timeout_s=PANEL_FILL_TIMEOUT_S
    )


async def _held_jobs(env: Harness, service: str) -> list[dict]:
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT job_id, lease_epoch, lease_expires_at, locked_by FROM pipeline_jobs"
            " WHERE service = $1 AND status = 'running'",
            service,
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def _epochs(env: Harness, job_ids: list[str]) -> dict[str, int]:
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT job_id, lease_epoch FROM pipeline_jobs WHERE job_id = ANY($1)", job_ids
        )
        return {r["job_id"]: int(r["lease_epoch"]) for r in rows}
    finally:
        await conn.close()


@pytest.mark.timeout(3600)
async def test_t03_paused_worker_resumes_after_its_lease_expired(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    """SIGSTOP the Info Worker while it holds leases, for lease + 10 s; a second Info Worker
    takes over through the sweeper; SIGCONT: every write of the zombie is refused. Then (once)
    the dashboards panels of take-overs, stale writes and dead letters show series."""
    service = "info_worker"
    unfilled: list[str] = []
    for repeat in range(1, profile.repeats + 1):
        marks = await mark(env)
        assert env.model is not None
        env.model.plan(
            ModelPlan(weights={"delay": 1.0}, schemas=frozenset({"spaces_v1"}), delay_s=1.5)
        )
        load = asyncio.create_task(env.load(profile.runs, seed=seed + repeat, scenarios=FULL_RUNS))
        held: list[dict] = []
        deadline = time.monotonic() + 120
        while not held and time.monotonic() < deadline:
            held = await _held_jobs(env, service)
            await asyncio.sleep(0.1)
        assert held, "the Info Worker never held a lease"
        paused_at = datetime.now(UTC)
        env.rig.pause(service)
        env.model.heal()
        second = await asyncio.to_thread(env.start_worker, f"{service}-b", service)
        takeover: dict[str, float] = {}
        first_epochs = {job["job_id"]: job["lease_epoch"] for job in held}
        pause_s = profile.lease_s + profile.pause_extra_s
        until = time.monotonic() + pause_s
        while time.monotonic() < until:
            for job_id, epoch in (await _epochs(env, list(first_epochs))).items():
                if job_id not in takeover and epoch > first_epochs[job_id]:
                    expired = next(j["lease_expires_at"] for j in held if j["job_id"] == job_id)
                    takeover[job_id] = (datetime.now(UTC) - expired).total_seconds()
            await asyncio.sleep(0.5)
        env.rig.resume(service)
        ledger: Ledger = await load
        drained = await quiesce(env, ledger, profile.quiesce_s)
        if repeat == 1:  # while the second worker, which counted the take-overs, still runs
            unfilled = await _unfilled_panels(env)
        await asyncio.to_thread(env.rig.stop, second.name)
        conn = await env.connect()
        try:
            fenced = await conn.fetchval(
                "SELECT count(*) FROM pipeline_stale_writes WHERE job_id = ANY($1)",
                list(first_epochs),
            )
        finally:
            await conn.close()
        result = Result(
            "T03",
            "zombie after lease expiry",
            f"SIGSTOP {service} for {pause_s:.0f} s (lease {profile.lease_s} s)",
            profile.name,
            seed,
            repeat,
        )
        result.recovery_s = round(max(takeover.values()), 1) if takeover else None
        figures = {
            "held_at_pause": len(held),
            "taken_over": len(takeover),
            "takeover_after_expiry_s": sorted(round(v, 1) for v in takeover.values()),
            "zombie_writes_refused": int(fenced),
            "paused_at": paused_at.isoformat(timespec="seconds"),
            "drain_s": round(drained, 1),
        }
        extra = []
        if len(takeover) < len(held):
            extra.append(
                Check("I5", "leases of the paused worker not taken over", len(held) - len(takeover))
            )
        await measure(env, marks, ledger, result, extra_checks=extra, figures=figures)
        record(result)
        assert result.verdict == "PASS", result.violations
        assert not unfilled, "dashboard panels empty after the faults that fill them:\n" + (
            "\n".join(unfilled)
        )


@pytest.mark.timeout(3600)
async def test_t07_rebalance_storm(env: Harness, profile: Profile, seed: int, record) -> None:
    """Extra workers join and leave (SIGTERM on odd cycles, kill -9 on even) under load."""
    marks = await mark(env)
    count = profile.runs * 2  # spread over the whole storm, so events arrive mid-rebalance
    span_s = profile.rebalance_cycles * (profile.rebalance_wait_s + 8.0)
    load = asyncio.create_task(
        env.load(count, seed=seed, rate_per_s=count / span_s, scenarios=FULL_RUNS)
    )
    cycles = []
    for cycle in range(1, profile.rebalance_cycles + 1):
        service = faults.STEP_SERVICES[cycle % len(faults.STEP_SERVICES)]
        name = f"{service}-storm"
        began = time.monotonic()
        await asyncio.to_thread(env.start_worker, name, service)
        await asyncio.sleep(profile.rebalance_wait_s)
        if cycle % 2:
            await asyncio.to_thread(env.rig.stop, name)
            how = "SIGTERM"
        else:
            await asyncio.to_thread(env.rig.kill, name)
            how = "SIGKILL"
        cycles.append(f"{service}:{how}:{time.monotonic() - began:.0f}s")
    ledger = await load
    drained = await quiesce(env, ledger, profile.quiesce_s)
    result = Result(
        "T07",
        "rebalance storm",
        f"{profile.rebalance_cycles} join/leave cycles",
        profile.name,
        seed,
    )
    await measure(
        env, marks, ledger, result, figures={"cycles": cycles, "drain_s": round(drained, 1)}
    )
    record(result)
    assert result.verdict == "PASS", result.violations
