"""The PNG integrity check without a pixel decode: every well-formed PNG (each colour type and
bit depth, interlaced or not, the data split over many chunks) is accepted, as Pillow's full
decode accepts it; a cut, a changed byte, a broken or short or long image data stream under
valid CRCs, a bad filter type and a broken chunk order are each refused."""

import io
import random
import struct
import zlib
from collections.abc import Sequence

import pytest
from PIL import Image

from planstream.adapters.imaging import inspect_image
from planstream.adapters.png import PngCorrupt, verify_png
from planstream.ports import ImageLimits, ImageUnreadable

CAP = ImageLimits(max_pixels=48_000_000, max_side=8_192, max_aspect_ratio=8.0)
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # samples per pixel by colour type
ALLOWED = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
DEPTHS = [(colour, depth) for colour, depths in ALLOWED.items() for depth in depths]
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def scanlines(width: int, height: int, depth: int, colour: int, interlaced: bool) -> list[int]:
    """Bytes per filtered row of every row, pass by pass (the test's own Adam7 arithmetic)."""

    def row(columns: int) -> int:
        return 1 + (columns * SAMPLES[colour] * depth + 7) // 8

    if not interlaced:
        return [row(width)] * height
    rows = []
    for x0, y0, dx, dy in ADAM7:
        columns, count = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if columns > 0 and count > 0:
            rows += [row(columns)] * count
    return rows


def raw_data(rows: Sequence[int], seed: int = 1, filter_type: int = 0) -> bytes:
    rng = random.Random(seed)
    return b"".join(bytes([filter_type]) + rng.randbytes(size - 1) for size in rows)


def png(
    width: int = 24,
    height: int = 18,
    depth: int = 8,
    colour: int = 2,
    *,
    interlaced: bool = False,
    data: bytes | None = None,
    stream: bytes | None = None,
    split: int = 1,
    before: Sequence[bytes] = (),
    after: Sequence[bytes] = (),
    end: bytes | None = None,
) -> bytes:
    """A PNG built byte by byte: ``data`` the filtered rows (random pixels of the right size by
    default), ``stream`` the compressed stream in place of ``data``'s, cut into ``split``
    IDAT chunks, with ``before`` and ``after`` chunks around them, ``end`` in place of IEND."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, int(interlaced))
    if data is None:
        data = raw_data(scanlines(width, height, depth, colour, interlaced))
    if stream is None:
        stream = zlib.compress(data, 6)
    size = -(-len(stream) // split)
    idats = [chunk(b"IDAT", stream[i : i + size]) for i in range(0, len(stream), size)]
    palette = [chunk(b"PLTE", bytes(range(256)) * 3)] if colour == 3 else []
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join([*palette, *before, *idats, *after])
        + (chunk(b"IEND", b"") if end is None else end)
    )


def pillow_decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError):
        return False
    return True


def _saved(mode: str, size: tuple[int, int] = (37, 23)) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 64).convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        *(_saved(mode) for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")),
        *(png(depth=depth, colour=colour) for colour, depth in DEPTHS),
        *(png(w, h, interlaced=True) for w, h in [(1, 1), (3, 2), (9, 9), (24, 18), (33, 7)]),
        png(depth=1, colour=0, interlaced=True),
        png(split=17),
        png(after=[chunk(b"tEXt", b"Comment\x00after the data")]),
        png() + b"trailing bytes after IEND are ignored, as decoders ignore them",
    ],
)
def test_a_well_formed_png_is_accepted_as_pillow_accepts_it(data: bytes) -> None:
    assert pillow_decodes(data)
    verify_png(data)


def test_the_check_refuses_a_cut_at_every_length() -> None:
    data = png(7, 5)
    for length in range(len(data)):
        with pytest.raises(PngCorrupt, match="corrupt"):
            verify_png(data[:length])


def test_the_check_refuses_every_changed_byte() -> None:
    data = bytearray(png(7, 5))
    for index in range(len(data)):
        changed = data.copy()
        changed[index] ^= 0x10
        with pytest.raises(PngCorrupt):
            verify_png(bytes(changed))


def _rows(width: int = 24, height: int = 18) -> list[int]:
    return scanlines(width, height, 8, 2, False)


@pytest.mark.parametrize(
    ("data", "named", "pillow_refuses"),
    [
        (png(stream=b"not a zlib stream at all, under a valid CRC"), "stream is broken", True),
        (png(stream=zlib.compress(raw_data(_rows())[:-1])), "the header's size needs", True),
        (png(stream=zlib.compress(raw_data(_rows()))[:-6]), "truncated", True),
        (png(stream=zlib.compress(raw_data(_rows()))[:-1] + b"\x00"), "stream is broken", True),
        (png(stream=zlib.compress(raw_data(_rows(), filter_type=5))), "filter type", True),
        (png(interlaced=True, data=bytes(sum(_rows()))), "the header's size needs", True),
        (
            png(3, 2, interlaced=True, data=bytes(sum(scanlines(3, 2, 8, 2, True)) - 1)),
            "needs",
            True,
        ),
        # Pillow's decoder stops at the stream's end or the last row, whichever comes first.
        (png(stream=zlib.compress(raw_data(_rows(height=17)))), "the header's size needs", False),
        (png(stream=zlib.compress(raw_data(_rows(height=19)))), "more image data", False),
    ],
    ids=[
        "broken",
        "byte-short",
        "cut-stream",
        "bad-adler32",
        "filter-5",
        "interlace-size",
        "interlace-byte-short",
        "row-short",
        "row-long",
    ],
)
def test_a_broken_image_data_stream_is_refused_under_valid_crcs(
    data: bytes, named: str, pillow_refuses: bool
) -> None:
    assert pillow_decodes(data) is not pillow_refuses
    with pytest.raises(PngCorrupt, match=named):
        verify_png(data)


def _between_idats() -> bytes:
    data = png(split=2)
    first_end = data.index(b"IDAT") - 4
    first_end += 12 + struct.unpack(">I", data[first_end : first_end + 4])[0]
    return data[:first_end] + chunk(b"tEXt", b"k\x00v") + data[first_end:]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"\x89PNG\r\n\x1a\x00" + png()[8:], "no PNG signature"),
        (png()[: -len(chunk(b"IEND", b""))], "truncated before IEND"),
        (png(end=chunk(b"IEND", b"x")), "non-empty IEND"),
        (png(before=[chunk(b"IHDR", png()[16:29])]), "second IHDR"),
        (b"\x89PNG\r\n\x1a\n" + chunk(b"tEXt", b"k\x00v") + png()[8:], "first chunk is not IHDR"),
        (png()[:33] + chunk(b"IEND", b""), "no image data"),
        (_between_idats(), "not consecutive"),
        (png(colour=3).replace(chunk(b"PLTE", bytes(range(256)) * 3), b""), "without PLTE"),
        (png(depth=16, colour=3), "colour type 3 at bit depth 16"),
        (png(0, 5), "size 0 x 5"),
        (png()[:8] + b"\x00\x00\x00\x00\x00\x00\x00\x00" + png()[16:], "no chunk type"),
    ],
    ids=[
        "signature",
        "no-iend",
        "iend-body",
        "two-ihdr",
        "ihdr-not-first",
        "no-idat",
        "idat-split",
        "no-plte",
        "bad-depth",
        "zero-side",
        "nul-type",
    ],
)
def test_a_broken_chunk_structure_is_refused(data: bytes, named: str) -> None:
    with pytest.raises(PngCorrupt, match=named) as refused:
        verify_png(data)
    assert isinstance(refused.value, ImageUnreadable)


def test_a_stream_far_larger_than_its_header_stops_at_the_header_size() -> None:
    """A 10 x 10 header over 64 MiB of zeros (about 64 KB compressed): refused as soon as the
    inflated data passes the 310 bytes the header allows, never inflated whole."""
    packer = zlib.compressobj(9)
    zeros = bytes(1024 * 1024)
    stream = b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()
    with pytest.raises(PngCorrupt, match=r"more image data than the header's size \(310 bytes"):
        verify_png(png(10, 10, stream=stream))


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_orientation_is_read_from_an_exif_chunk_before_or_after_the_data(where: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    tag = chunk(b"eXIf", exif.tobytes())
    data = png(40, 30, **{where: [tag]})  # type: ignore[arg-type]
    facts = inspect_image(data, CAP)
    assert (facts.width_px, facts.height_px, facts.exif_orientation) == (30, 40, 6)
    assert verify_png(data).exif == exif.tobytes()


def test_inspect_refuses_a_png_with_a_broken_stream_under_valid_crcs() -> None:
    with pytest.raises(ImageUnreadable, match="corrupt: its image data stream is broken"):
        inspect_image(png(stream=b"\x78\x9c" + b"\xff" * 40), CAP)
