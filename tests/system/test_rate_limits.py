"""The demo's scenarios through a rate-limited scripted model server, with limits below the
offered load: every run ends as its scenario expects, the limiter (set a little under the
server's limits) keeps the server's 429s rare, the waits are recorded and shown, and the pace
is the limit's (the figures go to ``.planstream/test-logs/rate-limits/figures.json`` and
docs/model-protocol.md).
"""

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from planstream.dev.isolation import free_port
from planstream.dev.launcher import Service, planstream_argv
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest
from planstream.dev.samples.scenarios import SCENARIOS
from planstream.settings import Settings
from tests.system.limited_stack import Finished, failed_rules, follow_all, own_stack

pytestmark = pytest.mark.timeout(1_200)  # a batch of runs at the limit

SERVER_RPM = 120
"""The scripted server's requests a minute, per model."""
SERVER_TPM = 3_000_000
CLIENT_RPM = 108
"""The limiter's: 90 % of the server's, the headroom docs/model-protocol.md recommends."""
CLIENT_TPM = 2_700_000
BURST_S = 10.0
"""Both hold ten seconds of their limit: the pace shows within a test's minutes."""
SCRIPTED_FAULTS = {"rate_limited": 1, "server_error": 1}
"""The transport failures a scenario scripts on its first extraction call (RULES: not calls of
the step's budget, so the step's count of calls is one less than the manifest's rows)."""
VISION, IMAGE = "planstream-scripted-vision", "planstream-scripted-image"


@pytest.fixture(scope="module")
def samples(settings: Settings) -> tuple[Path, Manifest]:
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"test-limits-{seed}"
    manifest = generate(
        folder, seed=seed, scenarios=SCENARIOS, count=len(SCENARIOS), max_attempts=3
    )
    return folder, manifest


@pytest.fixture(scope="module")
async def limited(base_settings: Settings, logs: Path) -> AsyncIterator[Settings]:
    """The pipeline and a scripted server of its own, limited to SERVER_RPM and SERVER_TPM."""
    port = free_port()
    server = Service("model-server", planstream_argv("model-server"), "model server on")
    async with own_stack(
        base_settings,
        logs / "rate-limits",
        server,
        model_server_port=port,
        model_base_url=f"http://127.0.0.1:{port}/v1",
        model_server_rpm=SERVER_RPM,
        model_server_tpm=SERVER_TPM,
        model_server_burst_s=BURST_S,
        model_rate_limits={VISION: (CLIENT_RPM, CLIENT_TPM), IMAGE: (CLIENT_RPM, CLIENT_TPM)},
        model_limiter_burst_s=BURST_S,
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
async def finished(
    limited: Settings, samples: tuple[Path, Manifest], logs: Path
) -> dict[str, Finished]:
    folder, manifest = samples
    runs, seconds = await follow_all(limited, folder, manifest.samples, timeout_s=900)
    _write_figures(runs, seconds, logs / "rate-limits" / "figures.json")
    return {run.sample.scenario: run for run in runs}


def _calls(run: Finished, **match: object) -> list[dict]:
    calls = run.view["model_calls"]
    return [c for c in calls if all(c[key] == value for key, value in match.items())]


def _write_figures(runs: list[Finished], seconds: float, path: Path) -> None:
    """What the batch measured: runs and calls a minute against the limit."""
    calls = [c for run in runs for c in run.view["model_calls"]]
    vision = [c for c in calls if c["model"] == VISION]
    figures = {
        "runs": len(runs),
        "seconds": round(seconds, 1),
        "runs_per_minute": round(len(runs) / seconds * 60, 2),
        "server_rpm": SERVER_RPM,
        "client_rpm": CLIENT_RPM,
        "burst_s": BURST_S,
        "vision_calls": len(vision),
        "vision_calls_per_minute": round(len(vision) / seconds * 60, 1),
        "image_calls": len(calls) - len(vision),
        "throttled": sum(1 for c in calls if c["outcome"] == "throttled"),
        "calls_that_waited": sum(1 for c in calls if c["waited_ms"] > 0),
        "longest_wait_s": max((c["waited_ms"] for c in calls), default=0) / 1000,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rate-limit figures: {json.dumps(figures)}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_ends_as_expected_under_the_limit(
    finished: dict[str, Finished], scenario: str
) -> None:
    run = finished[scenario]
    expected = run.sample.expected
    assert (run.view["status"], run.view["block_reason"]) == (
        expected.outcome,
        expected.block_reason,
    ), run.view["decisions"]
    step0 = _calls(run, step_id=0, purpose="extract", transport_attempt=1)
    assert len(step0) == expected.step0_attempts - SCRIPTED_FAULTS.get(scenario, 0)


def test_no_run_waited_itself_into_model_unavailable(finished: dict[str, Finished]) -> None:
    for scenario, run in finished.items():
        assert "MODEL_UNAVAILABLE" not in failed_rules(run), (scenario, run.view["decisions"])


def test_the_limiter_keeps_the_server_s_429s_rare(finished: dict[str, Finished]) -> None:
    calls = [c for run in finished.values() for c in run.view["model_calls"]]
    throttled = sum(1 for c in calls if c["outcome"] == "throttled")
    refused_by_the_limit = throttled - SCRIPTED_FAULTS["rate_limited"]
    assert refused_by_the_limit <= len(calls) // 20, f"{refused_by_the_limit} of {len(calls)}"


def test_the_waits_are_recorded_and_shown(finished: dict[str, Finished]) -> None:
    calls = [c for run in finished.values() for c in run.view["model_calls"]]
    waited = [c for c in calls if c["waited_ms"] >= 1_000]
    assert waited, "the offered load is above the limit: some calls must have queued"
    for call in waited:
        seconds = round(call["waited_ms"] / 1000)
        assert call["note"] == f"waited {seconds} s for the model's rate limit"
    steps = [run.view["cost"]["by_step"] for run in finished.values()]
    assert sum(step["waited_ms"] for by_step in steps for step in by_step.values()) > 0
