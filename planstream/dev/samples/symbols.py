"""Furniture symbols as line drawings, each a list of shapes in the item's own frame.

A shape's coordinates are ``u`` along the wall the item stands at and ``v`` away from it, both
0..1 over the item's box, so one definition serves an item against any of the four walls.
"""

from typing import Final, Literal

from PIL import ImageDraw

from planstream.dev.samples.placement import PlacedItem

__all__ = ["SHAPES", "draw_symbol"]

Shape = tuple[Literal["rect", "round", "ellipse", "line"], float, float, float, float]

_BOX: Final[Shape] = ("rect", 0, 0, 1, 1)
SHAPES: Final[dict[str, tuple[Shape, ...]]] = {
    "bed_double": (
        _BOX,
        ("round", 0.06, 0.04, 0.47, 0.2),
        ("round", 0.53, 0.04, 0.94, 0.2),
        ("line", 0, 0.3, 1, 0.3),
        ("line", 0, 0.62, 1, 0.5),
    ),
    "bed_single": (_BOX, ("round", 0.12, 0.04, 0.88, 0.2), ("line", 0, 0.3, 1, 0.3)),
    "nightstand": (_BOX, ("ellipse", 0.3, 0.3, 0.7, 0.7)),
    "wardrobe": (_BOX, ("line", 0, 0.5, 1, 0.5), ("line", 0.5, 0, 0.5, 1)),
    "built_in_closet": (_BOX, ("line", 0, 0, 1, 1), ("line", 0, 1, 1, 0)),
    "desk": (_BOX, ("rect", 0.3, 0.08, 0.7, 0.2), ("ellipse", 0.4, 0.55, 0.6, 0.9)),
    "office_chair": (("ellipse", 0, 0, 1, 1),),
    "sofa": (
        ("round", 0, 0, 1, 1),
        ("rect", 0, 0, 1, 0.3),
        ("rect", 0, 0, 0.12, 1),
        ("rect", 0.88, 0, 1, 1),
        ("line", 0.5, 0.3, 0.5, 1),
    ),
    "armchair": (("round", 0, 0, 1, 1), ("rect", 0, 0, 1, 0.3), ("rect", 0.15, 0.3, 0.85, 1)),
    "coffee_table": (("round", 0, 0, 1, 1), ("rect", 0.12, 0.18, 0.88, 0.82)),
    "tv_media_unit": (_BOX, ("rect", 0.2, 0.55, 0.8, 0.75)),
    "dining_table": (_BOX, ("ellipse", 0.4, 0.3, 0.6, 0.7)),
    "kitchen_counter": (_BOX, ("line", 0, 0.85, 1, 0.85), ("line", 0.5, 0, 0.5, 0.85)),
    "kitchen_sink": (_BOX, ("round", 0.15, 0.15, 0.85, 0.85), ("ellipse", 0.45, 0.45, 0.55, 0.55)),
    "stove_cooktop": (
        _BOX,
        ("ellipse", 0.1, 0.1, 0.45, 0.45),
        ("ellipse", 0.55, 0.1, 0.9, 0.45),
        ("ellipse", 0.1, 0.55, 0.45, 0.9),
        ("ellipse", 0.55, 0.55, 0.9, 0.9),
    ),
    "refrigerator": (_BOX, ("line", 0, 0.8, 1, 0.8), ("line", 0, 0, 1, 0.8)),
    "toilet": (("rect", 0.1, 0, 0.9, 0.28), ("ellipse", 0.15, 0.22, 0.85, 1)),
    "washbasin": (_BOX, ("ellipse", 0.15, 0.2, 0.85, 0.9)),
    "bathtub": (
        ("round", 0, 0, 1, 1),
        ("round", 0.06, 0.1, 0.94, 0.9),
        ("ellipse", 0.1, 0.42, 0.16, 0.58),
    ),
    "shower": (
        _BOX,
        ("line", 0, 0, 1, 1),
        ("line", 1, 0, 0, 1),
        ("ellipse", 0.42, 0.42, 0.58, 0.58),
    ),
    "washing_machine": (_BOX, ("ellipse", 0.2, 0.2, 0.8, 0.8)),
    "conference_table": (("round", 0.02, 0.1, 0.98, 0.9), ("line", 0.15, 0.5, 0.85, 0.5)),
    "reception_desk": (("rect", 0, 0.6, 1, 1), ("rect", 0, 0, 0.2, 0.6)),
    "shelving": (
        _BOX,
        ("line", 0.25, 0, 0.25, 1),
        ("line", 0.5, 0, 0.5, 1),
        ("line", 0.75, 0, 0.75, 1),
    ),
}


def _point(item: PlacedItem, u: float, v: float) -> tuple[float, float]:
    """A point of the item's frame in image pixels."""
    box = item.box
    width, height = box.x_max - box.x_min, box.y_max - box.y_min
    match item.wall:
        case "top":
            return box.x_min + u * width, box.y_min + v * height
        case "bottom":
            return box.x_min + u * width, box.y_max - v * height
        case "left":
            return box.x_min + v * width, box.y_min + u * height
        case "right":
            return box.x_max - v * width, box.y_min + u * height


def draw_symbol(draw: ImageDraw.ImageDraw, item: PlacedItem, line_px: int) -> None:
    """Draw ``item``'s symbol in its box with lines ``line_px`` wide."""
    for kind, u0, v0, u1, v1 in SHAPES[item.kind]:
        (ax, ay), (bx, by) = _point(item, u0, v0), _point(item, u1, v1)
        if kind == "line":
            draw.line(((ax, ay), (bx, by)), fill="black", width=line_px)
            continue
        corners = ((min(ax, bx), min(ay, by)), (max(ax, bx), max(ay, by)))
        if kind == "rect":
            draw.rectangle(corners, outline="black", width=line_px)
        elif kind == "round":
            radius = 0.15 * min(corners[1][0] - corners[0][0], corners[1][1] - corners[0][1])
            draw.rounded_rectangle(corners, radius=radius, outline="black", width=line_px)
        else:
            draw.ellipse(corners, outline="black", width=line_px)
