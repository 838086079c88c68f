"""Furniture placement: each symbol against a wall with room for it, clear of label and doors."""

from dataclasses import dataclass
from typing import Final, Literal

from planstream.dev.samples.programs import FURNITURE_SIZES_M
from planstream.domain.spaces import BBox

__all__ = ["CHAR_WIDTH", "LINE_HEIGHT", "PlacedItem", "Wall", "furnish"]

Wall = Literal["top", "bottom", "left", "right"]
CHAR_WIDTH: Final = 0.62
"""Width of one character of the label font, in font sizes (a generous estimate)."""
LINE_HEIGHT: Final = 1.25
_MIN_SHRINK: Final = 0.4
_PAD_M: Final = 0.08


@dataclass(frozen=True)
class PlacedItem:
    """One furniture symbol: what it is, where it is drawn, and which wall its back is against."""

    kind: str
    box: BBox
    wall: Wall


def _box(wall: Wall, interior: BBox, offset: float, length: float, depth: float) -> BBox:
    """The box of an item ``offset`` along ``wall``, ``depth`` deep into the room."""
    x: float
    y: float
    match wall:
        case "top":
            x, y, width, height = interior.x_min + offset, interior.y_min, length, depth
        case "bottom":
            x, y, width, height = interior.x_min + offset, interior.y_max - depth, length, depth
        case "left":
            x, y, width, height = interior.x_min, interior.y_min + offset, depth, length
        case "right":
            x, y, width, height = interior.x_max - depth, interior.y_min + offset, depth, length
    return BBox(round(x), round(y), round(x + width), round(y + height))


def _overlaps(a: BBox, b: BBox) -> bool:
    return a.x_min < b.x_max and b.x_min < a.x_max and a.y_min < b.y_max and b.y_min < a.y_max


def _size(
    kind: str, wall: Wall, interior: BBox, px_per_m: float, text_px: tuple[float, float]
) -> tuple[float, float] | None:
    """The item's (length, depth) at ``wall``, shrunk to stay clear of the label; None if tiny."""
    width, height = interior.x_max - interior.x_min, interior.y_max - interior.y_min
    pad = _PAD_M * px_per_m
    along, across, text = (
        (width, height, text_px[1]) if wall in ("top", "bottom") else (height, width, text_px[0])
    )
    length_m, depth_m = FURNITURE_SIZES_M[kind]
    depth_free = (across - text) / 2 - pad
    shrink = min(1.0, depth_free / (depth_m * px_per_m), (along - 2 * pad) / (length_m * px_per_m))
    if shrink < _MIN_SHRINK:
        return None
    return length_m * px_per_m * shrink, depth_m * px_per_m * shrink


def _spot(
    interior: BBox, wall: Wall, size: tuple[float, float], taken: list[BBox], pad: float
) -> BBox | None:
    """The first free spot along ``wall`` for an item of ``size``, or None."""
    length, depth = size
    horizontal = wall in ("top", "bottom")
    along = interior.x_max - interior.x_min if horizontal else interior.y_max - interior.y_min
    offset = pad
    while offset + length <= along - pad:
        box = _box(wall, interior, offset, length, depth)
        blocker = next((t for t in taken if _overlaps(box, t)), None)
        if blocker is None:
            return box
        far = blocker.x_max - interior.x_min if horizontal else blocker.y_max - interior.y_min
        offset = far + pad
    return None


def furnish(
    interior: BBox,
    kinds: tuple[str, ...],
    px_per_m: float,
    text_px: tuple[float, float],
    keep_clear: tuple[BBox, ...] = (),
) -> tuple[PlacedItem, ...]:
    """``kinds`` in order, each against the first wall with room for it, long walls first.

    ``text_px`` is the label block's (width, height), kept free in the middle of the room;
    ``keep_clear`` are boxes no item may overlap (the doors' swings).
    """
    landscape = interior.x_max - interior.x_min >= interior.y_max - interior.y_min
    walls: tuple[Wall, ...] = ("top", "bottom", "left", "right")
    if not landscape:
        walls = ("left", "right", "top", "bottom")
    taken = list(keep_clear)
    placed: list[PlacedItem] = []
    for kind in kinds:
        for wall in walls:
            size = _size(kind, wall, interior, px_per_m, text_px)
            spot = size and _spot(interior, wall, size, taken, _PAD_M * px_per_m)
            if spot:
                placed.append(PlacedItem(kind, spot, wall))
                taken.append(spot)
                break
    return tuple(placed)
