"""Image facts: real size with EXIF orientation, digest, format; corrupt input and bombs refused."""

import hashlib
import io

import pytest
from PIL import Image, ImageOps

from planstream.adapters.imaging import inspect_image, upright_size
from planstream.ports import ImageUnreadable

CAP = 48_000_000


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


def test_other_formats_are_refused_by_name() -> None:
    data = _encode(Image.new("RGB", (10, 10)), "BMP")
    with pytest.raises(ImageUnreadable, match="format BMP is not one of"):
        inspect_image(data, CAP)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = _encode(Image.new("1", (10_000, 10_000)), "PNG")
    with pytest.raises(ImageUnreadable, match="decompression cap"):
        inspect_image(data, CAP)


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
