"""Every in-memory fake passes its port's conformance suite (the real adapters pass the same
suites in tests/integration); imaging and the clock need no service, so their real adapters
are held to the suites here too."""

import asyncio
import io

import pytest
from PIL import Image

from planstream.adapters.imaging import PillowImaging
from planstream.ports import Clock
from planstream.services.runtime import utc_now
from tests.conformance.clock import ClockContract
from tests.conformance.fake_harnesses import (
    FakeClockHarness,
    FakeImagingHarness,
    FakeLeasesHarness,
    FakeLegacyHarness,
    FakeModelCallsHarness,
    FakeModelHarness,
    FakePublisherHarness,
    FakeRateLimiterHarness,
    FakeRepositoryHarness,
    FakeRoutesHarness,
    FakeStorageHarness,
)
from tests.conformance.imaging import ImagingContract
from tests.conformance.leases import JobLeasesContract
from tests.conformance.legacy import LegacyFunctionContract
from tests.conformance.model import ModelClientContract
from tests.conformance.model_calls import ModelCallLogContract
from tests.conformance.publisher import PublisherContract
from tests.conformance.rate_limiter import RateLimiterContract
from tests.conformance.repository import RepositoryContract
from tests.conformance.routes import RoutesContract
from tests.conformance.storage import ArtifactStoreContract


class TestFakeJobLeases(JobLeasesContract):
    @pytest.fixture
    def harness(self) -> FakeLeasesHarness:
        return FakeLeasesHarness()


class TestFakeRepository(RepositoryContract):
    @pytest.fixture
    def harness(self) -> FakeRepositoryHarness:
        return FakeRepositoryHarness()


class TestFakeStorage(ArtifactStoreContract):
    @pytest.fixture
    def harness(self) -> FakeStorageHarness:
        return FakeStorageHarness()


class TestFakeModelCallLog(ModelCallLogContract):
    @pytest.fixture
    def harness(self) -> FakeModelCallsHarness:
        return FakeModelCallsHarness()


class TestFakeModelClient(ModelClientContract):
    @pytest.fixture
    def harness(self) -> FakeModelHarness:
        return FakeModelHarness()


class TestFakePublisher(PublisherContract):
    @pytest.fixture
    def harness(self) -> FakePublisherHarness:
        return FakePublisherHarness()


class TestFakeRateLimiter(RateLimiterContract):
    @pytest.fixture
    def harness(self) -> FakeRateLimiterHarness:
        return FakeRateLimiterHarness()


class TestFakeLegacyFunction(LegacyFunctionContract):
    @pytest.fixture
    def harness(self) -> FakeLegacyHarness:
        return FakeLegacyHarness()


class TestFakeRoutes(RoutesContract):
    @pytest.fixture
    def harness(self) -> FakeRoutesHarness:
        return FakeRoutesHarness()


class TestFakeImaging(ImagingContract):
    @pytest.fixture
    def harness(self) -> FakeImagingHarness:
        return FakeImagingHarness()


class TestFakeClock(ClockContract):
    @pytest.fixture
    def harness(self) -> FakeClockHarness:
        return FakeClockHarness()


class _PillowHarness:
    imaging = PillowImaging()

    def image(
        self, width: int, height: int, fmt: str = "PNG", orientation: int = 1, frames: int = 1
    ) -> bytes:
        image = Image.new("RGB", (width, height), "white")
        buffer = io.BytesIO()
        if frames > 1:
            more = [Image.new("RGB", (width, height), (i, i, i)) for i in range(1, frames)]
            image.save(buffer, fmt, save_all=True, append_images=more)
        elif fmt == "JPEG":
            exif = image.getexif()
            exif[0x0112] = orientation
            image.save(buffer, fmt, exif=exif.tobytes())
        else:
            image.save(buffer, fmt)
        return buffer.getvalue()


class TestPillowImaging(ImagingContract):
    @pytest.fixture
    def harness(self) -> _PillowHarness:
        return _PillowHarness()


class _WallClockHarness:
    clock: Clock = staticmethod(utc_now)

    async def elapse(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class TestWallClock(ClockContract):
    @pytest.fixture
    def harness(self) -> _WallClockHarness:
        return _WallClockHarness()
