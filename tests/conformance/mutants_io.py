"""Broken stores, models, publishers, imaging and clocks, one fault each, for their suites."""

import io
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from planstream.domain.events import Event
from planstream.ports import (
    ChatAnswer,
    ImageAnswer,
    ImageFacts,
    ImageLimits,
    ImageUnreadable,
    ModelRefused,
    ModelUnavailable,
)
from tests.conformance.clock import ClockContract
from tests.conformance.fake_harnesses import (
    FakeClockHarness,
    FakeImagingHarness,
    FakeModelHarness,
    FakePublisherHarness,
    FakeStorageHarness,
)
from tests.conformance.imaging import ImagingContract
from tests.conformance.model import ModelClientContract
from tests.conformance.mutants import breaks
from tests.conformance.publisher import PublisherContract
from tests.conformance.storage import ArtifactStoreContract
from tests.fakes import FakeClock, FakeImaging, FakeModelClient, FakePublisher, FakeStorage
from tests.fakes.imaging import fake_image
from tests.fakes.publisher import Published
from topics import TopicSpec

__all__: list[str] = []

S, SH = ArtifactStoreContract, FakeStorageHarness


@breaks(S, SH, "test_the_configured_bucket_is_written")
class WritesTheDefaultBucket(FakeStorage):
    @property
    def bucket(self) -> str:
        return "planstream"


@breaks(S, SH, "test_production_keys_have_no_prefix")
class PrefixesProductionKeys(FakeStorage):
    @property
    def prefix(self) -> str:
        return "replays/rpl_0/"


@breaks(S, SH, "test_bytes_read_back_as_written")
class WritesOnce(FakeStorage):
    async def write(self, key: str, data: bytes, content_type: str) -> None:
        if key not in self.buckets[self._bucket]:
            await super().write(key, data, content_type)


@breaks(S, SH, "test_a_read_is_bounded")
class ReadsUnbounded(FakeStorage):
    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return await super().read(bucket, key, 1 << 40)


@breaks(S, SH, "test_a_missing_object_is_object_missing")
class ReadsMissingAsEmpty(FakeStorage):
    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        if key not in self.buckets.get(bucket, {}):
            return b""
        return await super().read(bucket, key, max_bytes)


@breaks(S, SH, "test_a_signed_url_reaches_the_object")
class SignsUrlsThatLeadNowhere(FakeStorage):
    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str:
        return f"http://storage.fake.invalid/{bucket}/{key}"


@breaks(S, SH, "test_a_signed_url_says_when_it_expires_and_nothing_else_does")
class TrustsAnySignedUrl(FakeStorage):
    def signed_until(self, url: str, bucket: str, key: str) -> datetime | None:
        return datetime.max.replace(tzinfo=UTC)  # a cached URL is reused whatever it is


M, MH = ModelClientContract, FakeModelHarness


@breaks(M, MH, "test_an_answer_carries_content_usage_and_raw_body")
class ReportsNoUsage(FakeModelClient):
    async def chat(self, **request: Any) -> ChatAnswer:
        return replace(await super().chat(**request), input_tokens=0, output_tokens=0)


_RELABELLED: Mapping[str, Any] = {
    "throttled": "failed",
    "failed": "timeout",
    "timeout": "unreachable",
    "unreachable": "throttled",
}


@breaks(
    M,
    MH,
    "test_a_429_is_unavailable_throttled_then_answered",
    "test_a_server_error_is_unavailable_failed",
    "test_a_hung_call_is_unavailable_timeout",
    "test_an_unreachable_server_is_unavailable",
    "test_a_refusal_is_permanent",
)
class MislabelsFailures(FakeModelClient):
    async def chat(self, **request: Any) -> ChatAnswer:
        try:
            return await super().chat(**request)
        except ModelUnavailable as exc:
            raise ModelUnavailable(str(exc), _RELABELLED[exc.outcome]) from None
        except ModelRefused as exc:
            raise ModelUnavailable(str(exc), "failed") from None


@breaks(M, MH, "test_an_image_edit_is_a_png_of_the_size_asked")
class EditsAtTheWrongSize(FakeModelClient):
    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        buffer = io.BytesIO()
        Image.new("RGB", (height, width)).save(buffer, "PNG")
        return ImageAnswer(buffer.getvalue(), 1, 1, 1)


P, PH = PublisherContract, FakePublisherHarness


@breaks(P, PH, "test_an_event_arrives_keyed_by_its_run")
class KeysByEventId(FakePublisher):
    async def publish(self, spec: TopicSpec, event: Event) -> None:
        await super().publish(spec, event)
        self.published[-1] = replace(self.published[-1], key=event.event_id.encode())


@breaks(P, PH, "test_a_runs_events_keep_their_order")
class PublishesNewestFirst(FakePublisher):
    async def publish(self, spec: TopicSpec, event: Event) -> None:
        await super().publish(spec, event)
        self.published.insert(0, self.published.pop())


@breaks(P, PH, "test_an_event_on_the_wrong_topic_is_refused")
class PublishesAnywhere(FakePublisher):
    async def publish(self, spec: TopicSpec, event: Event) -> None:
        self.published.append(Published(spec.name, event.run_id.encode(), event))


IM, IH = ImagingContract, FakeImagingHarness


@breaks(IM, IH, "test_a_png_is_measured")
class DigestsNothing(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return replace(super().inspect(data, limits), sha256="0" * 64)


@breaks(IM, IH, "test_a_turned_jpeg_is_measured_upright")
class IgnoresOrientation(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        facts = super().inspect(data, limits)
        return replace(facts, width_px=facts.stored_width_px, height_px=facts.stored_height_px)


@breaks(IM, IH, "test_bytes_that_are_no_image_are_unreadable")
class ReadsGarbageAsBlank(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        if not data.startswith(b"FAKEIMG1{") or not data.endswith(b"}"):
            return ImageFacts(0, 0, 0, 0, 1, "PNG", len(data), "")
        return super().inspect(data, limits)


@breaks(IM, IH, "test_a_format_not_accepted_is_unsupported")
class AcceptsAnyFormat(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return super().inspect(data.replace(b'"GIF"', b'"PNG"'), limits)


@breaks(IM, IH, "test_a_format_not_accepted_is_unsupported")
class CallsEveryFormatUnreadable(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        if b'"GIF"' in data:
            raise ImageUnreadable("the bytes are not a decodable image")
        return super().inspect(data, limits)


@breaks(IM, IH, "test_an_animated_image_is_refused_as_animated")
class ReadsTheFirstFrameOnly(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return super().inspect(data.replace(b', "frames": 2', b""), limits)


@breaks(IM, IH, "test_an_image_over_the_pixel_cap_is_refused")
class NoPixelCap(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return super().inspect(data, replace(limits, max_pixels=1 << 40))


@breaks(IM, IH, "test_a_size_over_the_limits_is_refused_with_its_header_size")
class NoSideLimit(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return super().inspect(data, replace(limits, max_side=1 << 20))


@breaks(IM, IH, "test_a_size_over_the_limits_is_refused_with_its_header_size")
class NoAspectLimit(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return super().inspect(data, replace(limits, max_aspect_ratio=1e9))


@breaks(IM, IH, "test_a_size_over_the_limits_is_refused_with_its_header_size")
class IgnoresTheBand(FakeImaging):
    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return super().inspect(data, replace(limits, long_edge=None))


@breaks(IM, IH, "test_as_png_keeps_a_png_and_converts_the_rest")
class ConvertsNothing(FakeImaging):
    def as_png(self, data: bytes) -> bytes:
        return data


@breaks(IM, IH, "test_conversions_of_bytes_that_are_no_image_are_unreadable")
class ConvertsGarbageToBlank(FakeImaging):
    def as_png(self, data: bytes) -> bytes:
        try:
            return super().as_png(data)
        except ImageUnreadable:
            return fake_image(1, 1)


@breaks(IM, IH, "test_resized_is_the_size_asked")
class ResizesNothing(FakeImaging):
    def resized(self, png: bytes, size: tuple[int, int]) -> bytes:
        return png


C, CH = ClockContract, FakeClockHarness


@breaks(C, CH, "test_now_is_aware_utc")
class NaiveClock(FakeClock):
    def __call__(self) -> datetime:
        return super().__call__().replace(tzinfo=None)


@breaks(C, CH, "test_time_moves_forward_only")
class StoppedClock(FakeClock):
    def advance(self, seconds: float) -> datetime:
        return self()
