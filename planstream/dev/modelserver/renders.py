"""Scripted renders: the input image resized to the asked size, tinted, captioned with the prompt.

Pure and deterministic: the same PNG, size and prompt always give the same bytes.
"""

import io
import re
from typing import Final

from PIL import Image, ImageDraw, UnidentifiedImageError

from planstream.dev.samples.drawing import font, png_bytes
from planstream.domain.errors import PermanentError

__all__ = ["MAX_EDGE_PX", "MIN_EDGE_PX", "PNG_SIGNATURE", "RenderRefused", "parse_size", "render"]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
MIN_EDGE_PX: Final = 64
MAX_EDGE_PX: Final = 8192
_SIZE: Final = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_TINT: Final = (236, 214, 180)
_TINT_SHARE: Final = 0.18
_CAPTION_CHARS: Final = 80


class RenderRefused(PermanentError):
    """The edit cannot be made: a bad size, or an upload that is not a PNG."""


def parse_size(text: str, max_pixels: int) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` as integers, each edge 64..8192 px and the area at most ``max_pixels``."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise RenderRefused(
            f"size must be WIDTHxHEIGHT in pixels, e.g. 2048x1536; got {text[:40]!r}"
        )
    width, height = int(match.group(1)), int(match.group(2))
    if not (MIN_EDGE_PX <= width <= MAX_EDGE_PX and MIN_EDGE_PX <= height <= MAX_EDGE_PX):
        raise RenderRefused(
            f"size {width}x{height}: each edge must be {MIN_EDGE_PX}-{MAX_EDGE_PX} px"
        )
    if width * height > max_pixels:
        raise RenderRefused(f"size {width}x{height} is over the {max_pixels}-pixel cap")
    return width, height


def _open_png(data: bytes, max_pixels: int) -> Image.Image:
    """The uploaded PNG, checked before its pixels are decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except (UnidentifiedImageError, OSError) as exc:
        raise RenderRefused("image must be a PNG file") from exc
    if image.width * image.height > max_pixels:
        raise RenderRefused(
            f"image {image.width}x{image.height} is over the {max_pixels}-pixel cap"
        )
    return image


def render(data: bytes, size: tuple[int, int], prompt: str, max_pixels: int) -> bytes:
    """The scripted edit of the PNG ``data``: resized to ``size``, warm-tinted, captioned."""
    with _open_png(data, max_pixels) as source:
        resized = source.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    tinted = Image.blend(resized, Image.new("RGB", size, _TINT), _TINT_SHARE)
    draw = ImageDraw.Draw(tinted)
    caption_px = max(12, round(max(size) / 90))
    caption = " ".join(prompt.split())[:_CAPTION_CHARS]
    margin = caption_px // 2
    draw.rectangle((0, 0, size[0], caption_px * 2), fill=(40, 40, 40))
    draw.text((margin, margin), caption, font=font(caption_px), fill=(250, 250, 250))
    return png_bytes(tinted)
