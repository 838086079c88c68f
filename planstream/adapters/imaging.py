"""Image facts from bytes: real pixel size (EXIF orientation applied), format, digest.

Size, format and orientation come from the header; the pixels are still decoded once (so a
truncated or corrupt image is refused), a JPEG at 1/8 scale, which reads its whole entropy-coded
stream at a fraction of the cost. The upright size is computed from the orientation, never by
transposing the pixels. Pillow is CPU work, not I/O; the caller runs it off the event loop.
"""

import hashlib
import io
import warnings

from PIL import Image, UnidentifiedImageError

from planstream.ports import ImageFacts, ImageUnreadable

__all__ = ["PillowImaging", "as_png", "inspect_image", "resized", "upright_size"]

# EXIF orientations that turn the stored image a quarter turn (transpose, 90 cw, transverse,
# 90 ccw); 2-4 only mirror or flip it, any other value is ignored, as exif_transpose does.
_ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_JPEG_DRAFT_SCALE = 8
_EXIF_ORIENTATION = 0x0112
_ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size the image is shown at once its EXIF orientation is applied."""
    if orientation in _ROTATING_ORIENTATIONS:
        return height, width
    return width, height


def _decode(image: Image.Image) -> None:
    """Decode every pixel once, so a truncated or corrupt stream raises; nothing is kept."""
    if image.format == "JPEG":
        width, height = image.size
        size = (max(1, width // _JPEG_DRAFT_SCALE), max(1, height // _JPEG_DRAFT_SCALE))
        image.draft(image.mode, size)
    image.load()


def inspect_image(data: bytes, max_pixels: int) -> ImageFacts:
    """Measure ``data`` from its header and decode it once (so truncation is caught), refusing
    bombs before any pixel is decoded."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            # Our own cap, checked below before any pixel is decoded, replaces Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or "unknown"
                if fmt not in _ACCEPTED_FORMATS:
                    raise ImageUnreadable(f"format {fmt} is not one of PNG, JPEG, WEBP")
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageUnreadable(
                        f"{width}x{height} is over the {max_pixels}-pixel decompression cap"
                    )
                orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
                _decode(image)
    except ImageUnreadable:
        raise
    except Image.DecompressionBombError:
        raise ImageUnreadable(
            f"the image is over the {max_pixels}-pixel decompression cap"
        ) from None
    except UnidentifiedImageError:
        raise ImageUnreadable("the bytes are not a decodable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageUnreadable(f"the image is corrupt: {exc}") from None
    shown_width, shown_height = upright_size(width, height, orientation)
    return ImageFacts(
        width_px=shown_width,
        height_px=shown_height,
        stored_width_px=width,
        stored_height_px=height,
        exif_orientation=orientation,
        format=fmt,
        byte_size=len(data),
        sha256=digest,
    )


def as_png(data: bytes) -> bytes:
    """The image as PNG (the edit endpoint takes PNG): a PNG as it is, anything else converted
    to RGB (its EXIF orientation is not applied)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "PNG":
                return data
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "PNG")
            return buffer.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageUnreadable(f"cannot convert the image to PNG: {exc}") from None


def resized(png: bytes, size: tuple[int, int]) -> bytes:
    """The PNG scaled to ``size`` (when the model only makes fixed sizes); as it is if it fits."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.size == size:
                return png
            buffer = io.BytesIO()
            image.resize(size, Image.Resampling.LANCZOS).save(buffer, "PNG")
            return buffer.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageUnreadable(f"cannot resize the image: {exc}") from None


class PillowImaging:
    """The ``planstream.ports.Imaging`` seam on Pillow: the functions above, as one object."""

    def inspect(self, data: bytes, max_pixels: int) -> ImageFacts:
        return inspect_image(data, max_pixels)

    def as_png(self, data: bytes) -> bytes:
        return as_png(data)

    def resized(self, png: bytes, size: tuple[int, int]) -> bytes:
        return resized(png, size)
