"""Imaging without pixels: a fake image is a short header that states its size and format.

``fake_image(2400, 1800)`` makes such bytes; ``FakeImaging`` reads them back as
``adapters/imaging.py`` reads a real image (EXIF orientation applied to the shown size; another
format, more than one frame or a size over the limits refused by name, anything else refused as
``ImageUnreadable``), in microseconds.
"""

import hashlib
import json
from typing import Final

from planstream.ports import (
    ImageAnimated,
    ImageDimensionsRefused,
    ImageFacts,
    ImageFormatUnsupported,
    ImageLimits,
    ImageUnreadable,
)

__all__ = ["FakeImaging", "fake_image"]

_MAGIC: Final = b"FAKEIMG1"
_FORMATS: Final = frozenset({"PNG", "JPEG", "WEBP"})
_ROTATING: Final = frozenset({5, 6, 7, 8})


def fake_image(
    width: int, height: int, fmt: str = "PNG", orientation: int = 1, frames: int = 1
) -> bytes:
    """Bytes ``FakeImaging`` reads as a ``width`` x ``height`` image stored as ``fmt``, of
    ``frames`` frames."""
    fields = {"w": width, "h": height, "fmt": fmt, "o": orientation}
    if frames != 1:
        fields["frames"] = frames
    return _MAGIC + json.dumps(fields).encode()


def _fields(data: bytes) -> dict[str, int | str]:
    if not data.startswith(_MAGIC):
        raise ImageUnreadable("the bytes are not a decodable image")
    try:
        fields = json.loads(data[len(_MAGIC) :])
        return {
            "w": int(fields["w"]),
            "h": int(fields["h"]),
            "fmt": str(fields["fmt"]),
            "o": int(fields["o"]),
            "frames": int(fields.get("frames", 1)),
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ImageUnreadable("the image is corrupt: a broken fake header") from None


def _read(data: bytes) -> tuple[int, int, str, int]:
    fields = _fields(data)
    return int(fields["w"]), int(fields["h"]), str(fields["fmt"]), int(fields["o"])


class FakeImaging:
    """``PillowImaging`` for fake images."""

    def inspect(self, data: bytes, limits: ImageLimits) -> ImageFacts:
        width, height, fmt, orientation = _read(data)
        if fmt not in _FORMATS:
            raise ImageFormatUnsupported(f"format {fmt} is not one of PNG, JPEG, WEBP")
        frames = int(_fields(data)["frames"])
        if frames > 1:
            raise ImageAnimated(f"the {fmt} holds {frames} frames; a plan is one still image")
        shown = (height, width) if orientation in _ROTATING else (width, height)
        facts = ImageFacts(
            width_px=shown[0],
            height_px=shown[1],
            stored_width_px=width,
            stored_height_px=height,
            exif_orientation=orientation,
            format=fmt,
            byte_size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        problem = limits.problem(width, height)
        if problem is not None:
            raise ImageDimensionsRefused(problem, facts)
        return facts

    def as_png(self, data: bytes) -> bytes:
        """A PNG as it is; anything else as a PNG of its stored size (orientation dropped)."""
        width, height, fmt, _ = _read(data)
        return data if fmt == "PNG" else fake_image(width, height)

    def resized(self, png: bytes, size: tuple[int, int]) -> bytes:
        """The image at ``size``; as it is if it already fits."""
        width, height, _, _ = _read(png)
        return png if (width, height) == size else fake_image(*size)
