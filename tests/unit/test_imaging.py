"""Image facts: real size with EXIF orientation, digest, format; corrupt input, other formats,
animations and bombs refused, the last three from the header before any pixel is decoded."""

import hashlib
import io
from dataclasses import replace

import pytest
from PIL import Image, ImageOps

from planstream.adapters.imaging import inspect_image, upright_size
from planstream.dev.chaos.bombs import animated_png, gif_plan, png_bomb
from planstream.ports import (
    ImageAnimated,
    ImageDimensionsRefused,
    ImageFormatUnsupported,
    ImageLimits,
    ImageUnreadable,
)
from tests.images import floor_plan_png

CAP = ImageLimits(max_pixels=48_000_000, max_side=8_192, max_aspect_ratio=8.0)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_png_size_digest_and_format() -> None:
    data = _encode(Image.new("RGB", (2400, 1800), "white"), "PNG")
    facts = inspect_image(data, CAP)
    assert (facts.width_px, facts.height_px, facts.format) == (2400, 1800, "PNG")
    assert facts.sha256 == hashlib.sha256(data).hexdigest()
    assert facts.byte_size == len(data)


@pytest.mark.parametrize(("orientation", "upright"), [(1, (2400, 1800)), (6, (1800, 2400))])
def test_jpeg_exif_orientation_is_applied(orientation: int, upright: tuple[int, int]) -> None:
    image = Image.new("RGB", (2400, 1800), "white")
    exif = image.getexif()
    exif[0x0112] = orientation
    facts = inspect_image(_encode(image, "JPEG", exif=exif.tobytes()), CAP)
    assert (facts.width_px, facts.height_px) == upright
    assert (facts.stored_width_px, facts.stored_height_px) == (2400, 1800)
    assert facts.exif_orientation == orientation


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a decodable image"),
        (b"GIF89a" + b"\x00" * 50, "not a decodable image"),
        (b"%PDF-1.7\n" + b"x" * 100, "not a decodable image"),
    ],
)
def test_non_images_are_unreadable(data: bytes, message: str) -> None:
    with pytest.raises(ImageUnreadable, match=message):
        inspect_image(data, CAP)


def test_truncated_png_is_unreadable() -> None:
    data = _encode(Image.effect_noise((1000, 800), 64).convert("RGB"), "PNG")
    with pytest.raises(ImageUnreadable, match="corrupt"):
        inspect_image(data[: len(data) // 2], CAP)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (_encode(Image.new("RGB", (10, 10)), "BMP"), "BMP"),
        (gif_plan(floor_plan_png()), "GIF"),  # a renamed plan.gif: the bytes decide, not the name
        (_encode(Image.new("RGB", (10, 10)), "TIFF"), "TIFF"),
    ],
)
def test_other_formats_are_refused_by_name(data: bytes, name: str) -> None:
    with pytest.raises(ImageFormatUnsupported, match=f"format {name} is not one of PNG"):
        inspect_image(data, CAP)


@pytest.mark.parametrize("rows", [None, 16], ids=["whole-49kb", "truncated-few-bytes"])
def test_a_20000_square_png_bomb_is_refused_from_its_header(rows: int | None) -> None:
    data = png_bomb(20_000, 20_000, rows)
    assert len(data) < 50_000
    with pytest.raises(ImageDimensionsRefused, match="48000000-pixel cap"):
        inspect_image(data, CAP)


def test_a_bomb_under_pillows_own_limit_is_refused_before_any_decoding() -> None:
    """8000 x 7000 px claimed by a PNG whose image data is no zlib stream: decoding it fails
    (ImageUnreadable), so the named refusal shows the header alone decided."""
    data = png_bomb(8_000, 7_000, idat=b"not a zlib stream" * 8)
    with pytest.raises(ImageDimensionsRefused, match="56000000 pixels") as refused:
        inspect_image(data, CAP)
    facts = refused.value.facts
    assert facts is not None
    assert (facts.stored_width_px, facts.stored_height_px, facts.format) == (8_000, 7_000, "PNG")
    with pytest.raises(ImageUnreadable, match="corrupt") as truncated:
        inspect_image(data, replace(CAP, max_pixels=60_000_000))
    assert not isinstance(truncated.value, ImageDimensionsRefused)


@pytest.mark.parametrize(
    ("width", "height", "named"),
    [(9_000, 2_000, "side of 9000 px"), (4_000, 400, "aspect ratio of 10.0:1")],
)
def test_a_side_or_an_aspect_ratio_over_the_limit_is_refused_from_the_header(
    width: int, height: int, named: str
) -> None:
    with pytest.raises(ImageDimensionsRefused, match=named):
        inspect_image(png_bomb(width, height, rows=4), CAP)


def test_the_quality_band_is_checked_from_the_header() -> None:
    banded = replace(CAP, long_edge=(1_900, 3_300))
    with pytest.raises(ImageDimensionsRefused, match="long edge outside 1900-3300"):
        inspect_image(png_bomb(4_096, 3_072, rows=4), banded)
    assert inspect_image(floor_plan_png(2_400, 1_800), banded).width_px == 2_400


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animated_image_is_refused(fmt: str) -> None:
    frames = [Image.new("RGB", (64, 48), (i, i, i)) for i in (0, 255)]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageAnimated, match="holds 2 frames"):
        inspect_image(data, CAP)


def test_an_animated_plan_of_the_tiers_size_is_refused() -> None:
    with pytest.raises(ImageAnimated):
        inspect_image(animated_png(floor_plan_png()), CAP)


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [
        (1, (2400, 1800)),
        (2, (2400, 1800)),
        (3, (2400, 1800)),
        (4, (2400, 1800)),
        (5, (1800, 2400)),
        (6, (1800, 2400)),
        (7, (1800, 2400)),
        (8, (1800, 2400)),
        (0, (2400, 1800)),
        (9, (2400, 1800)),
    ],
)
def test_orientations_5_to_8_swap_width_and_height(
    orientation: int, upright: tuple[int, int]
) -> None:
    assert upright_size(2400, 1800, orientation) == upright


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_size_matches_pillows_transpose(orientation: int) -> None:
    image = Image.new("RGB", (30, 20))
    exif = image.getexif()
    exif[0x0112] = orientation
    data = _encode(image, "JPEG", exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as opened:
        transposed = ImageOps.exif_transpose(opened).size
    facts = inspect_image(data, CAP)
    assert (facts.width_px, facts.height_px) == transposed


def test_truncated_jpeg_is_unreadable() -> None:
    data = _encode(Image.effect_noise((1000, 800), 64).convert("RGB"), "JPEG")
    with pytest.raises(ImageUnreadable, match="corrupt"):
        inspect_image(data[: len(data) // 2], CAP)
