"""Image facts from bytes: real pixel size (EXIF orientation applied), format, digest.

Pillow is CPU work, not I/O; the caller runs it off the event loop for large images.
"""

import hashlib
import io
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from planstream.errors import PermanentError

__all__ = ["ImageFacts", "ImageUnreadable", "inspect_image"]

_ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112
_ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


class ImageUnreadable(PermanentError):
    """The bytes are not a decodable image of an accepted format."""


@dataclass(frozen=True)
class ImageFacts:
    """What Image I/O records about an image in ``pipeline_artifacts.metadata_json``."""

    width_px: int
    height_px: int
    stored_width_px: int
    stored_height_px: int
    exif_orientation: int
    format: str
    byte_size: int
    sha256: str

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


def inspect_image(data: bytes, max_pixels: int) -> ImageFacts:
    """Decode ``data`` fully (so truncation is caught) and measure it, refusing bombs."""
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
                image.load()
                upright = ImageOps.exif_transpose(image)
                shown_width, shown_height = upright.size
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
