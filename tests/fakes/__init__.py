"""In-memory fakes of every port in ``planstream.ports``, for tests that run in milliseconds.

Each fake behaves as its real adapter does where the services can tell (the conformance suites
in ``tests/conformance`` hold both to the same tests); ``Fakes`` wires them into a ``Runtime``.
"""

from tests.fakes.clock import FakeClock
from tests.fakes.database import FakeDatabase, FakeIntegrityError
from tests.fakes.imaging import FakeImaging, fake_image
from tests.fakes.leases import FakeJobLeases
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
from tests.fakes.repository import FakeRepository
from tests.fakes.storage import FakeStorage

__all__ = [
    "FakeClock",
    "FakeDatabase",
    "FakeImaging",
    "FakeIntegrityError",
    "FakeJobLeases",
    "FakeModelCallLog",
    "FakeModelClient",
    "FakePublisher",
    "FakeRepository",
    "FakeStorage",
    "chat_answer",
    "fake_image",
    "refused",
    "server_error",
    "throttled",
    "timed_out",
    "unreachable",
]
