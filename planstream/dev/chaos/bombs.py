"""Hostile files made byte by byte: image and gzip bombs, an animated PNG, a GIF named PNG.

Shared by the fault suite's abuse test (T28) and the unit, integration and system tests of the
image checks and the capped model bodies, so each attack is built in one place. Every builder
streams through zlib: none holds the inflated data in memory.
"""

import io
import struct
import zlib
from typing import Final

from PIL import Image

__all__ = ["animated_png", "gif_plan", "gzip_bomb", "png_bomb"]

_MIB: Final = 1024 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(
    width: int = 20_000, height: int = 20_000, rows: int | None = None, idat: bytes | None = None
) -> bytes:
    """A 1-bit grey PNG of ``width`` x ``height`` made with zlib directly (Pillow would need the
    whole image in memory): all of its rows (about 49 KB for 20000 x 20000), only the first
    ``rows`` (a few hundred bytes that still claim the full size), or ``idat`` as the image data
    (a broken stream, which decoding refuses)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height if rows is None else rows))
    data += packer.flush()
    data = data if idat is None else idat
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def animated_png(plan: bytes, frames: int = 2) -> bytes:
    """An APNG of ``frames`` frames: ``plan`` (any PNG), then grey frames of its size, so only
    the animation is wrong with it (the size stays the plan's tier)."""
    first = Image.open(io.BytesIO(plan))
    size = first.size
    more = [Image.new("RGB", size, (i * 40, i * 40, i * 40)) for i in range(1, frames)]
    buffer = io.BytesIO()
    first.save(buffer, "PNG", save_all=True, append_images=more)
    return buffer.getvalue()


def gif_plan(plan: bytes) -> bytes:
    """``plan`` saved as GIF: what a ``plan.gif`` renamed ``plan.png`` uploads as image/png."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(plan)).save(buffer, "GIF")
    return buffer.getvalue()


def gzip_bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros, gzip-compressed chunk by chunk (never held inflated): about 1 KB
    per MiB, so 604 MiB fit in about 600 KB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(_MIB)
    return b"".join(packer.compress(zeros) for _ in range(mib)) + packer.flush()
