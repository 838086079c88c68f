"""The model misbehaving: T17 a 500/429 storm, T18 a hang and a slow drip against the lease,
T19 malformed answers, T20 huge answers. The fault front sits between the workers and the
scripted model server; the workers run with the profile's production client settings.
"""

import asyncio
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from planstream.dev.chaos.attacks import peak_rss_bytes
from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.load import Ledger
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.modelfaults import ModelCallSeen, ModelPlan
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result

CHAT = frozenset({"spaces_v1", "request_comparison_v1", "decision_audit_v1"})


def _retry_after_gaps(calls: list[ModelCallSeen]) -> list[float]:
    """For each 429 the front sent, the seconds until the same image and schema came back."""
    by_key: dict[tuple[str, str], list[ModelCallSeen]] = defaultdict(list)
    for call in calls:
        if call.image_key is not None:
            by_key[(call.image_key, call.schema)].append(call)
    gaps = []
    for sequence in by_key.values():
        for before, after in itertools.pairwise(sequence):
            if before.fault == "429":
                gaps.append(after.at - before.at)
    return gaps


async def _model_calls(env: Harness, ledger: Ledger) -> dict:
    conn = await env.connect()
    try:
        rows = await conn.fetch(
            "SELECT outcome, count(*) AS n, max(latency_ms) AS slowest FROM pipeline_model_calls"
            " WHERE run_id = ANY($1) GROUP BY 1",
            ledger.run_ids,
        )
        steps = await conn.fetchrow(
            "SELECT max(processing_time_ms) AS slowest_job FROM pipeline_jobs"
            " WHERE run_id = ANY($1)",
            ledger.run_ids,
        )
        return {
            "calls": {r["outcome"]: int(r["n"]) for r in rows},
            "slowest_call_ms": {r["outcome"]: int(r["slowest"]) for r in rows},
            "slowest_job_ms": int(steps["slowest_job"] or 0),
        }
    finally:
        await conn.close()


@pytest.mark.timeout(1800)
async def test_t17_model_500_429_storm(env: Harness, profile: Profile, seed: int, record) -> None:
    assert env.model is not None
    marks = await mark(env)
    env.model.plan(
        ModelPlan(weights={"500": 0.5, "429": 0.3, "reset": 0.05}, seed=seed, retry_after_s=2)
    )
    try:
        load = asyncio.create_task(env.load(profile.runs, seed=seed))
        await asyncio.sleep(profile.model_storm_s)
        ledger = await load
    finally:
        env.model.heal()
    drained = await quiesce(env, ledger, profile.quiesce_s)
    calls = env.model.seen(marks.model_calls_since)
    gaps = _retry_after_gaps(calls)
    honoured = min(2.0, env.settings.model_retry_after_cap_s)
    result = Result(
        "T17",
        "model 500/429 storm",
        "500 on 50%, 429 Retry-After 2 on 30%, resets on 5%",
        profile.name,
        seed,
    )
    model = await _model_calls(env, ledger)
    checks = []
    short = [round(g, 2) for g in gaps if g < honoured - 0.05]
    if short:
        checks.append(
            Check(
                "T17", "calls repeated before Retry-After", len(short), tuple(map(str, short[:5]))
            )
        )
    figures = {
        "faults_sent": {
            f: sum(1 for c in calls if c.fault == f) for f in ("500", "429", "reset", "pass")
        },
        "min_gap_after_429_s": round(min(gaps), 2) if gaps else None,
        "retry_after_honoured": not short,
        **model,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    record(result)
    assert result.verdict == "PASS", result.violations


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("fault", ["hang", "drip"])
async def test_t18_model_hang_and_drip_vs_lease(
    env: Harness, profile: Profile, seed: int, record, fault: str
) -> None:
    """Every extraction call hangs (or drips one byte a second) for longer than the lease: the
    per-call timeout must end it well inside the lease, and no live worker is taken over."""
    assert env.model is not None
    marks = await mark(env)
    hold_s = profile.lease_s * 2.0
    env.model.plan(
        ModelPlan(
            weights={fault: 1.0},
            schemas=frozenset({"spaces_v1"}),
            hang_s=hold_s,
            drip_s=1.0,
            drip_for_s=hold_s,
        )
    )
    try:
        ledger = await env.load(max(2, profile.runs // 2), seed=seed, scenarios=("correct",))
        await asyncio.sleep(hold_s)
    finally:
        env.model.heal()
    drained = await quiesce(env, ledger, profile.quiesce_s)
    model = await _model_calls(env, ledger)
    timeout_ms = env.settings.model_timeout_s * 1000
    slowest = max(model["slowest_call_ms"].values(), default=0)
    checks = []
    if slowest > timeout_ms * 1.5 + 1000:
        checks.append(
            Check("T18", f"a model call lasted {slowest} ms, timeout {timeout_ms:.0f} ms", 1)
        )
    if model["slowest_job_ms"] >= env.settings.lease_s * 1000:
        checks.append(
            Check("T18", f"a step ran {model['slowest_job_ms']} ms, longer than the lease", 1)
        )
    result = Result(
        "T18",
        "model hang vs lease",
        f"extraction {'hangs' if fault == 'hang' else 'drips 1 byte/s'} for {hold_s:.0f} s"
        f" (lease {profile.lease_s} s)",
        profile.name,
        seed,
    )
    figures = {
        **model,
        "per_call_timeout_s": env.settings.model_timeout_s,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    taken = result.figures.get("jobs_taken_over", 0)
    if taken:
        result.violations.append(f"T18 live workers taken over: {taken}")
        result.verdict = "FAIL"
    record(result)
    assert result.verdict == "PASS", result.violations


MALFORMED = (
    ("invalid_json", frozenset({"spaces_v1"})),
    ("length", frozenset({"spaces_v1"})),
    ("refusal", frozenset({"spaces_v1"})),
    ("out_of_enum", CHAT),
    ("ansi", frozenset({"spaces_v1"})),
)


async def _documents(env: Harness, ledger: Ledger) -> int:
    conn = await env.connect()
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pipeline_artifacts"
                " WHERE run_id = ANY($1) AND kind = 'spaces_json'",
                ledger.run_ids,
            )
        )
    finally:
        await conn.close()


def _forged_lines(paths: list[Path]) -> int:
    """Log lines that start with the forged entry an answer carried (a CR/LF reached a log)."""
    count = 0
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        count += sum(1 for line in text.splitlines() if line.startswith("2026-01-01 INFO forged"))
    return count


@pytest.mark.timeout(1800)
async def test_t19_malformed_model_output(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    assert env.model is not None
    marks = await mark(env)
    ledger = Ledger()
    persisted: dict[str, int] = {}
    outcomes: dict[str, dict] = {}
    try:
        for template, schemas in MALFORMED:
            env.model.plan(ModelPlan(weights={"template": 1.0}, schemas=schemas, template=template))
            part = await env.load(profile.malformed_each, seed=seed, scenarios=("correct",))
            await quiesce(env, part, profile.quiesce_s)
            persisted[template] = await _documents(env, part)
            outcomes[template] = (await _model_calls(env, part))["calls"]
            ledger.extend(part)
    finally:
        env.model.heal()
    drained = await quiesce(env, ledger, profile.quiesce_s)
    checks = [
        Check("T19", f"{template}: spaces documents persisted from invalid answers", n)
        for template, n in persisted.items()
        if template != "ansi" and n
    ]
    forged = _forged_lines(env.rig.log_files())
    if forged:
        checks.append(Check("T19", "CR/LF from a model answer forged a log line", forged))
    result = Result(
        "T19",
        "malformed model output",
        "invalid JSON, cut, refusal, out of enum, ANSI",
        profile.name,
        seed,
    )
    figures = {
        "spaces_persisted": persisted,
        "calls_by_template": outcomes,
        "forged_log_lines": forged,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    if result.figures.get("raw_escapes_in_logs"):
        result.violations.append(
            f"raw ANSI escapes in logs: {result.figures['raw_escapes_in_logs']}"
        )
        result.verdict = "FAIL"
    not_blocked = result.figures["completed"]
    if not_blocked > persisted.get("ansi", 0) and not_blocked > profile.malformed_each:
        result.violations.append(f"{not_blocked} runs completed on malformed answers")
        result.verdict = "FAIL"
    record(result)
    assert result.verdict == "PASS", result.violations


def _peak_rss_mb(pid: int) -> float:
    try:
        return peak_rss_bytes(pid) / 2**20
    except (OSError, LookupError):  # the process is gone
        return 0.0


@pytest.mark.timeout(1800)
async def test_t20_huge_model_output(env: Harness, profile: Profile, seed: int, record) -> None:
    assert env.model is not None
    marks = await mark(env)
    ledger = Ledger()
    persisted = {}
    try:
        for template in ("huge_body", "big_json", "million_tokens"):
            env.model.plan(
                ModelPlan(
                    weights={"template": 1.0}, schemas=frozenset({"spaces_v1"}), template=template
                )
            )
            part = await env.load(
                max(1, profile.malformed_each // 2), seed=seed, scenarios=("correct",)
            )
            await quiesce(env, part, profile.quiesce_s)
            persisted[template] = await _documents(env, part)
            ledger.extend(part)
    finally:
        env.model.heal()
    drained = await quiesce(env, ledger, profile.quiesce_s)
    rss = {
        name: round(_peak_rss_mb(env.rig.procs[name].pid), 1)
        for name in ("info_worker",)
        if env.rig.procs[name].alive()
    }
    conn = await env.connect()
    try:
        biggest = await conn.fetchval(
            "SELECT max((metadata_json->>'byte_size')::bigint) FROM pipeline_artifacts"
            " WHERE run_id = ANY($1) AND kind = 'model_response'",
            ledger.run_ids,
        )
    finally:
        await conn.close()
    checks = [
        Check("T20", f"{t}: oversized answers persisted as spaces", n)
        for t, n in persisted.items()
        if n
    ]
    if biggest and biggest > env.settings.model_max_response_bytes:
        checks.append(Check("T20", f"a stored raw answer has {biggest} bytes", 1))
    result = Result(
        "T20",
        "huge model output",
        "10 MB body, 200 KB JSON, 1M completion tokens",
        profile.name,
        seed,
    )
    figures = {
        "spaces_persisted": persisted,
        "largest_raw_answer_stored_bytes": int(biggest or 0),
        "peak_rss_mb": rss,
        "drain_s": round(drained, 1),
    }
    await measure(env, marks, ledger, result, extra_checks=checks, figures=figures)
    if result.figures["max_record_bytes"] >= env.settings.max_event_bytes:
        result.violations.append(f"a {result.figures['max_record_bytes']}-byte record was produced")
        result.verdict = "FAIL"
    if any(v > 1024 for v in rss.values()):
        result.violations.append(f"peak RSS over 1 GB: {rss}")
        result.verdict = "FAIL"
    record(result)
    assert result.verdict == "PASS", result.violations
