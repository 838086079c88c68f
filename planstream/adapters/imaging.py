"""Image facts from bytes: real pixel size (EXIF orientation applied), format, digest.

Size, format, frame count and orientation come from the header (Pillow's ``Image.open`` is
lazy), and every limit is checked there: only PNG, JPEG and WebP decoders ever see the bytes,
and a bomb, an animation or an extreme size is refused before any pixel is decoded. The whole
stream is then checked once (so a truncated or corrupt image is refused): a PNG by its chunk
structure, CRCs and inflated image data (``planstream.adapters.png``, no pixel decoded), a JPEG
by a decode at 1/8 scale, which reads its whole entropy-coded stream at a fraction of the cost,
a WebP by a full decode. The upright size is computed
from the orientation, never by transposing the pixels. Pillow is CPU work, not I/O; the caller
runs it off the event loop.
"""

import hashlib
import io
import warnings
from dataclasses import replace

from PIL import Image, UnidentifiedImageError

from planstream.adapters.png import verify_png
from planstream.ports import (
    ImageAnimated,
    ImageDimensionsRefused,
    ImageFacts,
    ImageFormatUnsupported,
    ImageLimits,
    ImageUnreadable,
)

__all__ = ["PillowImaging", "as_png", "inspect_image", "resized", "upright_size"]

# EXIF orientations that turn the stored image a quarter turn (transpose, 90 cw, transverse,
# 90 ccw); 2-4 only mirror or flip it, any other value is ignored, as exif_transpose does.
_ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_JPEG_DRAFT_SCALE = 8
_EXIF_ORIENTATION = 0x0112
_ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size the image is shown at once its EXIF orientation is applied."""
    if orientation in _ROTATING_ORIENTATIONS:
        return height, width
    return width, height


def _checked_orientation(image: Image.Image, data: bytes) -> int:
    """Check the whole stream once, so a truncated or corrupt image raises (nothing is kept),
    and read the EXIF orientation. A PNG's structure, CRCs and inflated data are checked without
    decoding a pixel, and its ``eXIf`` chunk read from there (Pillow's ``getexif`` would decode
    the pixels to look for one after the data); a JPEG is decoded at 1/8 scale, a WebP in full."""
    if image.format == "PNG":
        exif = Image.Exif()
        found = verify_png(data).exif
        if found is not None:
            exif.load(found)
        return _orientation(exif)
    orientation = _orientation(image.getexif())
    if image.format == "JPEG":
        width, height = image.size
        size = (max(1, width // _JPEG_DRAFT_SCALE), max(1, height // _JPEG_DRAFT_SCALE))
        image.draft(image.mode, size)
    image.load()
    return orientation


def _orientation(exif: Image.Exif) -> int:
    return int(exif.get(_EXIF_ORIENTATION, 1))


def _format_name(data: bytes) -> str | None:
    """The format Pillow reads ``data`` as, when it is none of the accepted ones (the header
    only: nothing is decoded), or None when it is no image at all."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "unknown"
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError):
        return None  # UnidentifiedImageError is an OSError


def _header(image: Image.Image, data: bytes, digest: str) -> ImageFacts:
    """The facts the header gives; the stored size twice (the upright size comes later)."""
    width, height = image.size
    return ImageFacts(
        width_px=width,
        height_px=height,
        stored_width_px=width,
        stored_height_px=height,
        exif_orientation=1,
        format=image.format or "unknown",
        byte_size=len(data),
        sha256=digest,
    )


def _check_header(image: Image.Image, facts: ImageFacts, limits: ImageLimits) -> None:
    """Refuse an animation or a size over ``limits`` from the header, before any decoding."""
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames > 1 or bool(getattr(image, "is_animated", False)):
        raise ImageAnimated(f"the {facts.format} holds {frames} frames; a plan is one still image")
    problem = limits.problem(facts.stored_width_px, facts.stored_height_px)
    if problem is not None:
        raise ImageDimensionsRefused(problem, facts)


def inspect_image(data: bytes, limits: ImageLimits) -> ImageFacts:
    """Measure ``data`` from its header, refusing what ``limits`` and the accepted formats
    forbid before any pixel is decoded, then check the whole stream once (so truncation and
    corruption are caught)."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            # Our own limits, checked below before any pixel is decoded, replace Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_ACCEPTED_FORMATS) as image:
                facts = _header(image, data, digest)
                _check_header(image, facts, limits)
                orientation = _checked_orientation(image, data)
    except ImageUnreadable:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDimensionsRefused(
            f"the image is over the {limits.max_pixels}-pixel cap ({exc})", None
        ) from None
    except UnidentifiedImageError:
        fmt = _format_name(data)
        if fmt is not None:
            accepted = ", ".join(_ACCEPTED_FORMATS)
            raise ImageFormatUnsupported(f"format {fmt} is not one of {accepted}") from None
        raise ImageUnreadable("the bytes are not a decodable image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageUnreadable(f"the image is corrupt: {exc}") from None
    shown_width, shown_height = upright_size(facts.width_px, facts.height_px, orientation)
    return replace(
        facts, width_px=shown_width, height_px=shown_height, exif_orientation=orientation
    )


def as_png(data: bytes) -> bytes:
    """The image as PNG (the edit endpoint takes PNG): a PNG as it is, anything else converted
    to RGB (its EXIF orientation is not applied)."""
    try:
        with Image.open(io.BytesIO(data), formats=_ACCEPTED_FORMATS) as image:
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
        with Image.open(io.BytesIO(png), formats=("PNG",)) as image:
            if image.size == size:
                return png
            buffer = io.BytesIO()
            image.resize(size, Image.Resampling.LANCZOS).save(buffer, "PNG")
            return buffer.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageUnreadable(f"cannot resize the image: {exc}") from None


class PillowImaging:
    """The ``planstream.ports.Imaging`` seam on Pillow: the functions above, as one object."""

    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        return inspect_image(data, limits)

    def as_png(self, data: bytes) -> bytes:
        return as_png(data)

    def resized(self, png: bytes, size: tuple[int, int]) -> bytes:
        return resized(png, size)
