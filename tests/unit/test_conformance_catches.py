"""The conformance suites can fail: each deliberately broken fake fails the tests it names, and
every test of every suite is named by at least one broken fake."""

import inspect

import pytest

from tests.conformance import (
    mutants_io,
    mutants_leases,
    mutants_legacy,
    mutants_limiter,
    mutants_records,
    mutants_routes,
)
from tests.conformance.clock import ClockContract
from tests.conformance.imaging import ImagingContract
from tests.conformance.leases import JobLeasesContract
from tests.conformance.legacy import LegacyFunctionContract
from tests.conformance.model import ModelClientContract
from tests.conformance.model_calls import ModelCallLogContract
from tests.conformance.mutants import MUTANTS, Mutant
from tests.conformance.publisher import PublisherContract
from tests.conformance.rate_limiter import RateLimiterContract
from tests.conformance.repository import RepositoryContract
from tests.conformance.routes import RoutesContract
from tests.conformance.storage import ArtifactStoreContract

SUITES = (
    JobLeasesContract,
    RepositoryContract,
    ArtifactStoreContract,
    ModelCallLogContract,
    ModelClientContract,
    PublisherContract,
    ImagingContract,
    ClockContract,
    RateLimiterContract,
    RoutesContract,
    LegacyFunctionContract,
)

# Importing them registers the broken fakes.
REGISTERS = (
    mutants_leases,
    mutants_records,
    mutants_io,
    mutants_limiter,
    mutants_routes,
    mutants_legacy,
)

CASES = [
    pytest.param(mutant, test, id=f"{mutant.name}-{test}")
    for mutant in MUTANTS
    for test in mutant.catches
]


async def _run(mutant: Mutant, test: str) -> None:
    outcome = getattr(mutant.suite(), test)(mutant.harness())
    if inspect.isawaitable(outcome):
        await outcome


@pytest.mark.parametrize(("mutant", "test"), CASES)
async def test_a_broken_fake_fails_the_suite(mutant: Mutant, test: str) -> None:
    try:
        await _run(mutant, test)
    except (NameError, AttributeError, TypeError, ImportError):
        raise  # a mistake in the broken fake itself, not the fault it was made to show
    except (Exception, pytest.fail.Exception):  # any failure: the suite caught the fault
        return
    pytest.fail(f"{mutant.suite.__name__}.{test} passed {mutant.name}, a broken fake")


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.__name__)
def test_every_conformance_test_catches_some_broken_fake(suite: type) -> None:
    tests = {name for name in dir(suite) if name.startswith("test_")}
    caught = {test for m in MUTANTS if m.suite is suite for test in m.catches}
    assert caught <= tests, f"broken fakes name tests {suite.__name__} lacks: {caught - tests}"
    assert tests <= caught, f"no broken fake shows these can fail: {sorted(tests - caught)}"
