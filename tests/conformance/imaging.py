"""What Image I/O and the render worker rely on from imaging: the upright size and the digest
of an image, every unusable image refused as ImageUnreadable (another format, an animation and
a size over the limits each by its own name), PNG conversion and resizing."""

import hashlib
from dataclasses import replace
from typing import Protocol

import pytest

from planstream.domain.errors import PermanentError
from planstream.ports import (
    ImageAnimated,
    ImageDimensionsRefused,
    ImageFormatUnsupported,
    ImageLimits,
    ImageUnreadable,
    Imaging,
)

__all__ = ["ImagingContract", "ImagingHarness"]

LIMITS = ImageLimits(max_pixels=1_000_000, max_side=2_000, max_aspect_ratio=8.0)


class ImagingHarness(Protocol):
    @property
    def imaging(self) -> Imaging: ...

    def image(
        self, width: int, height: int, fmt: str = "PNG", orientation: int = 1, frames: int = 1
    ) -> bytes:
        """An image of that stored size and format (``orientation`` its EXIF tag, for JPEG),
        of ``frames`` frames (an animated PNG when more than one)."""


class ImagingContract:
    """The suite; subclass it with a ``harness`` fixture."""

    def test_a_png_is_measured(self, harness: ImagingHarness) -> None:
        data = harness.image(320, 200)
        facts = harness.imaging.inspect(data, LIMITS)
        assert (facts.width_px, facts.height_px, facts.format) == (320, 200, "PNG")
        assert (facts.stored_width_px, facts.stored_height_px, facts.exif_orientation) == (
            320,
            200,
            1,
        )
        assert (facts.byte_size, facts.sha256) == (len(data), hashlib.sha256(data).hexdigest())

    def test_a_turned_jpeg_is_measured_upright(self, harness: ImagingHarness) -> None:
        facts = harness.imaging.inspect(harness.image(320, 200, "JPEG", 6), LIMITS)
        assert (facts.width_px, facts.height_px, facts.format) == (200, 320, "JPEG")
        assert (facts.stored_width_px, facts.stored_height_px, facts.exif_orientation) == (
            320,
            200,
            6,
        )

    def test_bytes_that_are_no_image_are_unreadable(self, harness: ImagingHarness) -> None:
        for data in (b"", b"not an image at all", harness.image(320, 200)[:24]):
            with pytest.raises(ImageUnreadable) as refused:
                harness.imaging.inspect(data, LIMITS)
            assert isinstance(refused.value, PermanentError)

    def test_a_format_not_accepted_is_unsupported(self, harness: ImagingHarness) -> None:
        with pytest.raises(ImageFormatUnsupported, match="GIF") as refused:
            harness.imaging.inspect(harness.image(32, 32, "GIF"), LIMITS)
        assert isinstance(refused.value, ImageUnreadable)

    def test_an_animated_image_is_refused_as_animated(self, harness: ImagingHarness) -> None:
        with pytest.raises(ImageAnimated) as refused:
            harness.imaging.inspect(harness.image(64, 48, frames=2), LIMITS)
        assert isinstance(refused.value, ImageUnreadable)
        assert harness.imaging.inspect(harness.image(64, 48, frames=1), LIMITS).width_px == 64

    def test_an_image_over_the_pixel_cap_is_refused(self, harness: ImagingHarness) -> None:
        data = harness.image(1_001, 1_000)
        with pytest.raises(ImageDimensionsRefused, match="pixel cap") as refused:
            harness.imaging.inspect(data, LIMITS)
        assert isinstance(refused.value, ImageUnreadable)
        bigger = replace(LIMITS, max_pixels=1_001_000)
        assert harness.imaging.inspect(data, bigger).width_px == 1_001

    def test_a_size_over_the_limits_is_refused_with_its_header_size(
        self, harness: ImagingHarness
    ) -> None:
        banded = replace(LIMITS, long_edge=(500, 900))
        cases = [
            (2_001, 100, LIMITS, "side"),
            (100, 2_001, LIMITS, "side"),
            (900, 100, LIMITS, "aspect ratio"),
            (400, 300, banded, "long edge"),
            (1_000, 300, banded, "long edge"),
        ]
        for width, height, limits, named in cases:
            with pytest.raises(ImageDimensionsRefused, match=named) as refused:
                harness.imaging.inspect(harness.image(width, height), limits)
            facts = refused.value.facts
            assert facts is not None
            assert (facts.stored_width_px, facts.stored_height_px) == (width, height)
        assert harness.imaging.inspect(harness.image(800, 100), LIMITS).width_px == 800

    def test_as_png_keeps_a_png_and_converts_the_rest(self, harness: ImagingHarness) -> None:
        png = harness.image(320, 200)
        assert harness.imaging.as_png(png) == png
        converted = harness.imaging.as_png(harness.image(320, 200, "JPEG", 6))
        facts = harness.imaging.inspect(converted, LIMITS)
        assert (facts.format, facts.width_px, facts.height_px) == ("PNG", 320, 200)

    def test_conversions_of_bytes_that_are_no_image_are_unreadable(
        self, harness: ImagingHarness
    ) -> None:
        for data in (b"", b"not an image at all", harness.image(320, 200)[:24]):
            with pytest.raises(ImageUnreadable):
                harness.imaging.as_png(data)
            with pytest.raises(ImageUnreadable):
                harness.imaging.resized(data, (32, 32))

    def test_resized_is_the_size_asked(self, harness: ImagingHarness) -> None:
        png = harness.image(320, 200)
        assert harness.imaging.resized(png, (320, 200)) == png
        facts = harness.imaging.inspect(harness.imaging.resized(png, (160, 100)), LIMITS)
        assert (facts.format, facts.width_px, facts.height_px) == ("PNG", 160, 100)
