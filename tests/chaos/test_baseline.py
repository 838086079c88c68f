"""T00: the same load with no fault, the control every other row is read against."""

import pytest

from planstream.dev.chaos.harness import Harness
from planstream.dev.chaos.measure import mark, measure, quiesce
from planstream.dev.chaos.profiles import Profile
from planstream.dev.chaos.report import Result

# What the load's scenarios may legitimately end with (see docs/samples-and-model-server.md).
EXPECTED_BLOCKS = {"NOT_A_FLOOR_PLAN", "retry_budget_exhausted"}


@pytest.mark.timeout(1800)
async def test_t00_baseline_without_faults(
    env: Harness, profile: Profile, seed: int, record
) -> None:
    marks = await mark(env)
    ledger = await env.load(profile.runs, seed=seed)
    drained = await quiesce(env, ledger, profile.quiesce_s)
    result = Result("T00", "baseline", "none", profile.name, seed)
    await measure(env, marks, ledger, result, figures={"drain_s": round(drained, 1)})
    record(result)
    assert result.verdict == "PASS", result.violations
    assert result.figures["completed"] > 0, result.figures
    assert set(result.figures["not_completed_by_reason"]) <= EXPECTED_BLOCKS, result.figures
