"""In-memory fakes of every port in ``planstream.ports``, for tests that run in milliseconds.

Each fake behaves as its real adapter does where the services can tell (the conformance
suites in ``tests/conformance`` hold both to the same tests); ``make_world()`` wires them into
a ``Runtime`` per service.
"""

from tests.fakes.clock import FakeClock
from tests.fakes.database import FakeDatabase, FakeIntegrityError
from tests.fakes.imaging import FakeImaging, fake_image
from tests.fakes.leases import FakeJobLeases
from tests.fakes.legacy import FakeLegacyFunction, legacy_error
from tests.fakes.model import (
    FakeModelClient,
    chat_answer,
    refused,
    server_error,
    throttled,
    timed_out,
    unreachable,
)
from tests.fakes.model_calls import FakeModelCallLog
from tests.fakes.publisher import FakePublisher
from tests.fakes.rate_limiter import FakeRateLimiter
from tests.fakes.repository import FakeRepository
from tests.fakes.routes import FakeRoutes
from tests.fakes.storage import FakeStorage
from tests.fakes.world import FakeWorld, make_world

__all__ = [
    "FakeClock",
    "FakeDatabase",
    "FakeImaging",
    "FakeIntegrityError",
    "FakeJobLeases",
    "FakeLegacyFunction",
    "FakeModelCallLog",
    "FakeModelClient",
    "FakePublisher",
    "FakeRateLimiter",
    "FakeRepository",
    "FakeRoutes",
    "FakeStorage",
    "FakeWorld",
    "chat_answer",
    "fake_image",
    "legacy_error",
    "make_world",
    "refused",
    "server_error",
    "throttled",
    "timed_out",
    "unreachable",
]
