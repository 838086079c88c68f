"""Real image files for integration tests, and hostile ones made byte by byte."""

import io
import struct
import zlib

from PIL import Image, ImageDraw


def floor_plan_png(width: int = 2400, height: int = 1800) -> bytes:
    """A plain line drawing: outer walls and one partition."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((50, 50, width - 50, height - 50), outline="black", width=12)
    draw.line((width // 2, 50, width // 2, height - 50), fill="black", width=8)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def floor_plan_jpeg(width: int = 2000, height: int = 2600, orientation: int = 6) -> bytes:
    image = Image.new("RGB", (width, height), "white")
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=80)
    return buffer.getvalue()


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


def animated_png(width: int = 2400, height: int = 1800, frames: int = 2) -> bytes:
    """An APNG of ``frames`` frames, each a plan of the tier's size (only the frames differ)."""
    first = Image.open(io.BytesIO(floor_plan_png(width, height)))
    more = [Image.new("RGB", (width, height), (i * 40, i * 40, i * 40)) for i in range(1, frames)]
    buffer = io.BytesIO()
    first.save(buffer, "PNG", save_all=True, append_images=more)
    return buffer.getvalue()


def gif_plan(width: int = 2400, height: int = 1800) -> bytes:
    """A plan saved as GIF: what a ``plan.gif`` renamed ``plan.png`` uploads as image/png."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(floor_plan_png(width, height))).save(buffer, "GIF")
    return buffer.getvalue()
