"""A PNG's integrity without decoding its pixels: chunk structure, CRCs and the image data
stream, inflated and discarded.

What a full decode would refuse, this refuses too: a file cut anywhere (every chunk, ``IEND``
included, must be whole), a changed byte (every chunk's CRC, then the zlib stream's own
Adler-32), a compressed stream that is no valid deflate stream even under valid CRCs, image
data shorter or longer than the header's size, bit depth, colour type and interlacing predict,
and a scanline whose filter type is not one of the five. The stream is inflated by zlib-ng (the
same format as zlib, about 17 times faster on the sample plans) in fixed-size pieces that are
never kept, so memory stays bounded whatever the stream claims, and the work stops as soon as
the data outgrows the header: the caller has already checked the header's size against the
pixel cap. Bytes after ``IEND`` are ignored, as decoders ignore them.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from zlib_ng import zlib_ng

from planstream.ports import ImageUnreadable

__all__ = ["PNG_SIGNATURE", "PngCorrupt", "PngFile", "PngHeader", "scanline_bytes", "verify_png"]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# Output of one inflate call: the most inflated data held at once (it is discarded at once).
_INFLATE_STEP: Final = 64 * 1024
_MAX_CHUNK_LENGTH: Final = 2**31 - 1
_HEADER: Final = struct.Struct(">IIBBBBB")
_CHUNK_HEAD: Final = struct.Struct(">I4s")
_CRC: Final = struct.Struct(">I")
# Samples per pixel, and the bit depths each colour type allows (PNG specification, 11.2.2).
_COLOUR_TYPES: Final = {
    0: (1, frozenset({1, 2, 4, 8, 16})),
    2: (3, frozenset({8, 16})),
    3: (1, frozenset({1, 2, 4, 8})),
    4: (2, frozenset({8, 16})),
    6: (4, frozenset({8, 16})),
}
_PALETTE = 3
# Adam7: each pass's first column and row, then its column and row steps.
_ADAM7: Final = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_FILTER_TYPES: Final = bytes(range(5))


class PngCorrupt(ImageUnreadable):
    """The image is corrupt: its PNG structure, a checksum or its image data is broken."""


@dataclass(frozen=True)
class PngHeader:
    """The ``IHDR`` fields that decide how many bytes the image data inflates to."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool

    @classmethod
    def parse(cls, body: bytes) -> "PngHeader":
        """The header of an ``IHDR`` chunk's body, refused unless the specification allows it."""
        if len(body) != _HEADER.size:
            raise PngCorrupt(f"the image is corrupt: IHDR holds {len(body)} bytes, not 13")
        width, height, depth, colour, compression, filtering, interlace = _HEADER.unpack(body)
        allowed = _COLOUR_TYPES.get(colour)
        if not (0 < width <= _MAX_CHUNK_LENGTH and 0 < height <= _MAX_CHUNK_LENGTH):
            raise PngCorrupt(f"the image is corrupt: its header's size {width} x {height}")
        if allowed is None or depth not in allowed[1]:
            raise PngCorrupt(f"the image is corrupt: colour type {colour} at bit depth {depth}")
        if (compression, filtering) != (0, 0) or interlace not in (0, 1):
            raise PngCorrupt(
                f"the image is corrupt: compression, filter or interlace method "
                f"{compression}, {filtering}, {interlace}"
            )
        return cls(width, height, depth, colour, interlace == 1)

    def passes(self) -> tuple[tuple[int, int], ...]:
        """(rows, bytes per row with its filter byte) of each non-empty pass, in stream order."""
        if not self.interlaced:
            return ((self.height, scanline_bytes(self, self.width)),)
        found = []
        for x0, y0, dx, dy in _ADAM7:
            columns = (self.width - x0 + dx - 1) // dx
            rows = (self.height - y0 + dy - 1) // dy
            if columns > 0 and rows > 0:
                found.append((rows, scanline_bytes(self, columns)))
        return tuple(found)


@dataclass(frozen=True)
class PngFile:
    """What a verified PNG tells beyond Pillow's lazy header: its header and its ``eXIf``
    chunk's body, wherever it stands (Pillow decodes every pixel to find one after the data)."""

    header: PngHeader
    exif: bytes | None


def scanline_bytes(header: PngHeader, columns: int) -> int:
    """Bytes of one filtered scanline of ``columns`` pixels: the filter byte, then the pixels."""
    samples = _COLOUR_TYPES[header.colour_type][0]
    return 1 + (columns * samples * header.bit_depth + 7) // 8


def _chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Each chunk's type and body up to ``IEND``, every one whole and its CRC checked."""
    if not data.startswith(PNG_SIGNATURE):
        raise PngCorrupt("the image is corrupt: no PNG signature")
    view = memoryview(data)
    position = len(PNG_SIGNATURE)
    while True:
        if position + _CHUNK_HEAD.size > len(data):
            raise PngCorrupt("the image is corrupt: truncated before IEND")
        length, kind = _CHUNK_HEAD.unpack_from(data, position)
        start = position + _CHUNK_HEAD.size
        end = start + length
        if length > _MAX_CHUNK_LENGTH or end + _CRC.size > len(data):
            raise PngCorrupt(f"the image is corrupt: the {kind!r} chunk is truncated")
        if not kind.isalpha() or not kind.isascii():
            raise PngCorrupt(f"the image is corrupt: {kind!r} is no chunk type")
        (stored,) = _CRC.unpack_from(data, end)
        if zlib_ng.crc32(view[position + 4 : end]) != stored:
            raise PngCorrupt(f"the image is corrupt: the {kind.decode()} chunk's CRC is wrong")
        yield kind, view[start:end]
        if kind == b"IEND":
            return
        position = end + _CRC.size


class _Inflation:
    """The image data stream, inflated piece by piece and discarded, counted against what the
    header predicts, each scanline's filter type checked as it goes by."""

    def __init__(self, header: PngHeader) -> None:
        self._passes = header.passes()
        self._expected = sum(rows * width for rows, width in self._passes)
        self._stream = zlib_ng.decompressobj()
        self._produced = 0
        self._pass = 0
        self._in_pass = 0

    def feed(self, data: memoryview | bytes) -> None:
        """Inflate ``data`` (the next IDAT body, or nothing to drain what zlib holds back)."""
        pending: memoryview | bytes = data
        while not self._stream.eof:
            try:
                piece = self._stream.decompress(pending, _INFLATE_STEP)
            except zlib_ng.error as exc:  # type: ignore[misc]  # the stub types it as an instance
                raise PngCorrupt(
                    f"the image is corrupt: its image data stream is broken ({exc})"
                ) from None
            self._account(piece)
            pending = self._stream.unconsumed_tail
            if not pending and not piece:
                return

    def finish(self) -> None:
        """Refuse a stream that ended early, was cut short, or did not fill the image."""
        self.feed(b"")
        if not self._stream.eof:
            raise PngCorrupt("the image is corrupt: its image data stream is truncated")
        if self._produced != self._expected:
            raise PngCorrupt(
                f"the image is corrupt: {self._produced} bytes of image data, "
                f"the header's size needs {self._expected}"
            )

    def _account(self, piece: bytes) -> None:
        self._produced += len(piece)
        if self._produced > self._expected:
            raise PngCorrupt(
                f"the image is corrupt: more image data than the header's size "
                f"({self._expected} bytes)"
            )
        view = memoryview(piece)
        done = 0
        while done < len(piece):
            rows, width = self._passes[self._pass]
            take = min(rows * width - self._in_pass, len(piece) - done)
            first = -self._in_pass % width
            filters = view[done + first : done + take : width].tobytes()
            if filters.translate(None, _FILTER_TYPES):
                raise PngCorrupt("the image is corrupt: a scanline has an unknown filter type")
            done += take
            self._in_pass += take
            if self._in_pass == rows * width:
                self._pass, self._in_pass = self._pass + 1, 0


def verify_png(data: bytes) -> PngFile:
    """Check ``data`` is a whole, uncorrupted PNG whose image data fills its header's size
    (raising PngCorrupt, an ImageUnreadable, otherwise), without decoding a pixel."""
    header: PngHeader | None = None
    inflation: _Inflation | None = None
    exif: bytes | None = None
    palette = idat_seen = idat_done = False
    for kind, body in _chunks(data):
        if inflation is None:
            if kind != b"IHDR":
                raise PngCorrupt("the image is corrupt: the first chunk is not IHDR")
            header = PngHeader.parse(body.tobytes())
            inflation = _Inflation(header)
        elif kind == b"IDAT":
            if idat_done:
                raise PngCorrupt("the image is corrupt: its IDAT chunks are not consecutive")
            if header is not None and header.colour_type == _PALETTE and not palette:
                raise PngCorrupt("the image is corrupt: a palette image without PLTE")
            idat_seen = True
            inflation.feed(body)
        elif kind == b"IHDR" or (kind == b"IEND" and len(body) != 0):
            raise PngCorrupt("the image is corrupt: a second IHDR or a non-empty IEND")
        else:
            idat_done = idat_seen
            palette = palette or kind == b"PLTE"
            if kind == b"eXIf" and exif is None:
                exif = body.tobytes()
    if header is None or inflation is None or not idat_seen:
        raise PngCorrupt("the image is corrupt: it holds no image data")
    inflation.finish()
    return PngFile(header, exif)
