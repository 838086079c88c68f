"""The whole pipeline on the real stack, with the scripted model server behind the openai client.

Each scenario's run is submitted through the ingress like a user's and followed to its end;
then PostgreSQL must hold exactly one audited decision per step attempt and a record of every
model call.
"""

import asyncio
import random
from pathlib import Path

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest, SampleEntry
from planstream.settings import Settings
from tests.system.runs import sample_run, view_when

SCENARIOS = ("correct", "flawed_then_correct", "not_a_floor_plan", "invalid_json", "hang")


@pytest.fixture(scope="module")
def samples(settings: Settings) -> tuple[Path, Manifest]:
    """A fresh sample set the stack's model server can find (a new seed: new images)."""
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"test-{seed}"
    manifest = generate(
        folder, seed=seed, scenarios=SCENARIOS, count=len(SCENARIOS), max_attempts=3
    )
    return folder, manifest


@pytest.fixture(scope="module")
async def finished_runs(
    ingress_url: str, samples, user_token: str
) -> dict[str, tuple[SampleEntry, dict]]:
    """Every sample's run, followed until it completes or blocks (3 minutes at most)."""
    folder, manifest = samples
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)

        async def follow(sample: SampleEntry) -> tuple[str, tuple[SampleEntry, dict]]:
            run_id = await sample_run(client, folder, sample)
            return sample.scenario, (sample, await view_when(client, run_id, timeout_s=180))

        return dict(await asyncio.gather(*(follow(s) for s in manifest.samples)))


def _extraction_calls(view: dict, step: int = 0) -> list[dict]:
    return [c for c in view["model_calls"] if c["step_id"] == step and c["purpose"] == "extract"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_ends_as_expected(finished_runs, scenario: str) -> None:
    sample, view = finished_runs[scenario]
    expected = sample.expected
    assert view["status"] == expected.outcome, view["decisions"]
    assert view["block_reason"] == expected.block_reason
    assert len(_extraction_calls(view)) == expected.step0_attempts


def test_a_completed_run_went_through_all_seven_steps(finished_runs) -> None:
    _, view = finished_runs["correct"]
    proceeded = [d["step_id"] for d in view["decisions"] if d["decision"] == "proceed"]
    assert proceeded == list(range(7))
    renders = [a for a in view["artifacts"] if a["kind"] == "render_image"]
    assert sorted(a["step_id"] for a in renders) == list(range(1, 7))
    for render in renders:  # Image I/O measured every render, inside its tier's band
        assert render["metadata"]["within_band"] is True


def test_every_decision_is_audited_once(finished_runs, pool) -> None:
    for scenario, (_, view) in finished_runs.items():
        keys = [(d["step_id"], d["attempt"]) for d in view["decisions"]]
        assert len(keys) == len(set(keys)), scenario
        for decision in view["decisions"]:
            audit = decision["llm_audit"]
            assert "consistency_score" in audit
            assert audit["consistency_score"] is not None or audit.get("skipped"), scenario
            assert decision["versions"]["rules"] == "rules-v1"


def test_a_flawed_answer_is_retried_once(finished_runs) -> None:
    _, view = finished_runs["flawed_then_correct"]
    step0 = [(d["attempt"], d["decision"]) for d in view["decisions"] if d["step_id"] == 0]
    assert step0 == [(1, "retry"), (2, "proceed")]


def test_a_persistently_invalid_answer_blocks_after_three_attempts(finished_runs) -> None:
    _, view = finished_runs["invalid_json"]
    step0 = [(d["attempt"], d["decision"]) for d in view["decisions"] if d["step_id"] == 0]
    assert step0 == [(1, "retry"), (2, "retry"), (3, "block")]
    assert not [a for a in view["artifacts"] if a["kind"] == "spaces_json"]


def test_a_hanging_call_is_abandoned_before_the_lease_expires(
    finished_runs, settings: Settings
) -> None:
    _, view = finished_runs["hang"]
    first, second = _extraction_calls(view)[:2]
    assert first["outcome"] == "timeout"
    assert first["latency_ms"] < settings.lease_s * 1000
    assert settings.model_timeout_s * 1000 <= first["latency_ms"] < settings.model_timeout_s * 2000
    assert second["outcome"] == "answered"
    info_jobs = [j for j in view["jobs"] if j["service"] == "info_worker" and j["step_id"] == 0]
    assert [j["lease_epoch"] for j in info_jobs] == [1]  # the lease was never taken over


def test_every_model_call_is_priced(finished_runs) -> None:
    _, view = finished_runs["correct"]
    answered = [c for c in view["model_calls"] if c["outcome"] == "answered"]
    assert {c["purpose"] for c in answered} == {"extract", "compare", "audit", "render"}
    assert all(c["input_tokens"] > 0 and float(c["cost_usd"]) > 0 for c in answered)
    assert view["cost"]["total_usd"] > 0
