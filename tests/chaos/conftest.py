"""Fixtures of the fault suite: the profile, one shared environment, the results file.

Run with ``make chaos`` (full profile) or ``make chaos-short`` (CI): ``pytest tests/chaos -m
chaos``. Without ``-m chaos`` nothing here is collected, so a plain ``pytest`` never starts it.
"""

import os
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from planstream.dev.chaos.harness import Harness, make_samples
from planstream.dev.chaos.load import Sample
from planstream.dev.chaos.profiles import Profile, from_environment
from planstream.dev.chaos.report import Result, append
from planstream.settings import Settings
from tests.stackkit import ROOT

SCENARIOS = ("correct", "not_a_floor_plan", "flawed_then_correct", "missing_room", "invalid_json")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect the fault suite only when asked for by marker (``-m chaos``)."""
    if "chaos" in (config.getoption("markexpr", "") or "") and "not chaos" not in (
        config.getoption("markexpr", "") or ""
    ):
        return None
    return collection_path.suffix == ".py" and collection_path.name.startswith("test_")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos" in str(item.path):
            item.add_marker(pytest.mark.chaos)


@pytest.fixture(scope="session")
def profile() -> Profile:
    return from_environment()


@pytest.fixture(scope="session")
def chaos_root(base_settings: Settings) -> Path:
    root = (ROOT / base_settings.work_dir / "chaos" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def results_file(base_settings: Settings) -> Path:
    default = ROOT / base_settings.work_dir / "chaos" / "results.jsonl"
    return Path(os.environ.get("PLANSTREAM_CHAOS_RESULTS", str(default)))


@pytest.fixture(scope="session")
def seed() -> int:
    value = int(os.environ.get("PLANSTREAM_CHAOS_SEED", "0")) or random.randrange(1, 2**31)
    print(f"chaos seed {value}")
    return value


@pytest.fixture(scope="session")
def samples(chaos_root: Path, seed: int) -> list[Sample]:
    """One plan of each load scenario, and a few more clean ones."""
    return make_samples(chaos_root / "samples" / f"s{seed}", seed, SCENARIOS, len(SCENARIOS) + 3)


@pytest.fixture(scope="session")
async def env(
    base_settings: Settings, profile: Profile, chaos_root: Path, samples: list[Sample], seed: int
) -> AsyncIterator[Harness]:
    """The shared environment: the shared Kafka, PostgreSQL and S3 with a namespace of its own."""
    harness = Harness(base_settings, profile, chaos_root / "main", seed=seed)
    try:
        await harness.start(samples)
        yield harness
    finally:
        await harness.stop()


@pytest.fixture(scope="session")
def record(results_file: Path) -> Callable[[Result], Result]:
    """Append a Result to the session's results file at once (the report is built from it)."""

    def save(result: Result) -> Result:
        append(results_file, result)
        return result

    return save
