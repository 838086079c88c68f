"""planstream's model client judged by an outside chaos server: llmock (a dev dependency) serves
OpenAI's API on loopback with requests and tokens per minute limits and injected 429s and 500s,
a batch of runs goes through the pipeline against it, then ``llmock report --strict`` must find
no error and no warning in how the client behaved, and no run may end MODEL_UNAVAILABLE.

llmock's answers are generated from the schemas, so runs may still block for their content
(a generated plan is no plan): that is correct, and not judged here. llmock's limits are per API
key (every model together), so the limiter's limits of the two models add up to less.
"""

import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from planstream.dev.isolation import free_port
from planstream.dev.launcher import Service
from planstream.dev.samples.generator import generate
from planstream.dev.samples.manifest import Manifest
from planstream.settings import Settings
from tests.system.limited_stack import Finished, failed_rules, follow_all, own_stack

pytestmark = pytest.mark.timeout(1_200)  # a batch of runs at the limit

LLMOCK = Path(sys.executable).with_name("llmock")
LLMOCK_RPM, LLMOCK_TPM = 120, 600_000
ERROR_RATES = ("429=0.2", "500=0.1")
"""A fault on three calls in ten: every run meets several."""
RUNS = 10
VISION, IMAGE = "gpt-4o", "gpt-image-1"


@pytest.fixture(scope="module")
def samples(settings: Settings) -> tuple[Path, Manifest]:
    seed = random.randrange(1, 2**31)
    folder = settings.model_samples_dir / f"test-llmock-{seed}"
    manifest = generate(folder, seed=seed, scenarios=("correct",), count=RUNS, max_attempts=3)
    return folder, manifest


@pytest.fixture(scope="module")
async def llmock_stack(base_settings: Settings, logs: Path) -> AsyncIterator[tuple[Settings, str]]:
    """llmock serving on a free loopback port, and the pipeline pointed at it."""
    if not LLMOCK.exists():
        pytest.fail(f"{LLMOCK} is missing: install the dev extra (pip install -e '.[dev]')")
    port = free_port()
    rates = [arg for rate in ERROR_RATES for arg in ("--error-rate", rate)]
    args = (str(LLMOCK), "serve", "--host", "127.0.0.1", "--port", str(port))
    limits = ("--rpm", str(LLMOCK_RPM), "--tpm", str(LLMOCK_TPM), "--log-level", "warning")
    server = Service("llmock", (*args, *limits, *rates), "Listening")
    async with own_stack(
        base_settings,
        logs / "llmock",
        server,
        model_base_url=f"http://127.0.0.1:{port}/v1",
        model_vision=VISION,
        model_text=VISION,
        model_image=IMAGE,
        model_rate_limits={VISION: (100, 500_000), IMAGE: (10, 50_000)},
        model_max_output_tokens=2_000,
        # llmock's Retry-After is the real wait for its quota: honour it whole.
        model_retry_after_cap_s=60.0,
        lease_s=300,
    ) as settings:
        yield settings, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def finished(
    llmock_stack: tuple[Settings, str], samples: tuple[Path, Manifest]
) -> list[Finished]:
    settings, _ = llmock_stack
    folder, manifest = samples
    runs, _ = await follow_all(settings, folder, manifest.samples, timeout_s=900)
    return runs


def test_no_run_ends_model_unavailable(finished: list[Finished]) -> None:
    ends = [(run.view["status"], run.view["block_reason"]) for run in finished]
    print(f"llmock runs ended: {sorted(ends, key=str)}")
    assert len(finished) == RUNS
    for run in finished:
        assert run.view["status"] in ("completed", "blocked"), run.view
        assert "MODEL_UNAVAILABLE" not in failed_rules(run), run.view["decisions"]


def test_llmock_s_strict_verdict_is_clean(
    finished: list[Finished], llmock_stack: tuple[Settings, str], logs: Path
) -> None:
    _, url = llmock_stack
    report = [str(LLMOCK), "report", "--url", url, "--strict"]
    verdict = subprocess.run(report, capture_output=True, text=True, timeout=60, check=False)
    figures = subprocess.run(
        [*report[:-1], "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    (logs / "llmock" / "verdict.json").write_text(figures.stdout)
    print(f"llmock verdict: {figures.stdout}")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    judged = json.loads(figures.stdout)
    assert judged["faults_injected"] > 0, "llmock injected no fault: the test proved nothing"
