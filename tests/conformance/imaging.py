"""What Image I/O and the render worker rely on from imaging: the upright size and the digest
of an image, every unusable image refused as ImageUnreadable, PNG conversion and resizing."""

import hashlib
from typing import Protocol

import pytest

from planstream.domain.errors import PermanentError
from planstream.ports import ImageUnreadable, Imaging

__all__ = ["ImagingContract", "ImagingHarness"]

MAX_PIXELS = 1_000_000


class ImagingHarness(Protocol):
    @property
    def imaging(self) -> Imaging: ...

    def image(self, width: int, height: int, fmt: str = "PNG", orientation: int = 1) -> bytes:
        """An image of that stored size and format (``orientation`` its EXIF tag, for JPEG)."""


class ImagingContract:
    """The suite; subclass it with a ``harness`` fixture."""

    def test_a_png_is_measured(self, harness: ImagingHarness) -> None:
        data = harness.image(320, 200)
        facts = harness.imaging.inspect(data, MAX_PIXELS)
        assert (facts.width_px, facts.height_px, facts.format) == (320, 200, "PNG")
        assert (facts.stored_width_px, facts.stored_height_px, facts.exif_orientation) == (
            320,
            200,
            1,
        )
        assert (facts.byte_size, facts.sha256) == (len(data), hashlib.sha256(data).hexdigest())

    def test_a_turned_jpeg_is_measured_upright(self, harness: ImagingHarness) -> None:
        facts = harness.imaging.inspect(harness.image(320, 200, "JPEG", 6), MAX_PIXELS)
        assert (facts.width_px, facts.height_px, facts.format) == (200, 320, "JPEG")
        assert (facts.stored_width_px, facts.stored_height_px, facts.exif_orientation) == (
            320,
            200,
            6,
        )

    def test_bytes_that_are_no_image_are_unreadable(self, harness: ImagingHarness) -> None:
        for data in (b"", b"not an image at all", harness.image(320, 200)[:24]):
            with pytest.raises(ImageUnreadable) as refused:
                harness.imaging.inspect(data, MAX_PIXELS)
            assert isinstance(refused.value, PermanentError)

    def test_a_format_not_accepted_is_unreadable(self, harness: ImagingHarness) -> None:
        with pytest.raises(ImageUnreadable):
            harness.imaging.inspect(harness.image(32, 32, "GIF"), MAX_PIXELS)

    def test_an_image_over_the_pixel_cap_is_unreadable(self, harness: ImagingHarness) -> None:
        data = harness.image(1_001, 1_000)
        with pytest.raises(ImageUnreadable):
            harness.imaging.inspect(data, MAX_PIXELS)
        assert harness.imaging.inspect(data, 1_001_000).width_px == 1_001

    def test_as_png_keeps_a_png_and_converts_the_rest(self, harness: ImagingHarness) -> None:
        png = harness.image(320, 200)
        assert harness.imaging.as_png(png) == png
        converted = harness.imaging.as_png(harness.image(320, 200, "JPEG", 6))
        facts = harness.imaging.inspect(converted, MAX_PIXELS)
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
        facts = harness.imaging.inspect(harness.imaging.resized(png, (160, 100)), MAX_PIXELS)
        assert (facts.format, facts.width_px, facts.height_px) == ("PNG", 160, 100)
