"""Plan layout: a program's rooms cut from a rectangular outline, with doors and furniture.

Pure and deterministic: the same ``random.Random`` state gives the same plan. Rooms are laid out
in metres by a binary split (each cut across the longer side, the rooms shared by weight), then
placed on the canvas in whole pixels; drawing and truth both read the resulting ``Plan``.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from planstream.dev.samples.doors import Door, doors
from planstream.dev.samples.geometry import Cell, Edge, Frame, Metres, cells, shared_edge, snap
from planstream.dev.samples.placement import CHAR_WIDTH, LINE_HEIGHT, PlacedItem, furnish
from planstream.dev.samples.programs import Program, RoomKind
from planstream.domain.spaces import HABITABLE_TYPES, BBox

__all__ = ["LONG_EDGES", "Plan", "Room", "canvas_size", "plan_layout"]

LONG_EDGES: Final = (2048, 2304, 2560, 2800, 3000)
_ASPECTS: Final = (4 / 3, 3 / 2, 16 / 10)
_M2_PER_WEIGHT: Final = 4.2
_MIN_SIDE_M: Final = 1.4
_OUTER_WALL_M: Final = 0.2
_INNER_WALL_M: Final = 0.12
_TRIES: Final = 40


@dataclass(frozen=True)
class Room:
    """One drawn room: its kind, id, wall-to-wall box in pixels, printed size and furniture."""

    kind: RoomKind
    id: str
    interior: BBox
    size_m: tuple[float, float]
    label_px: int
    furniture: tuple[PlacedItem, ...]
    neighbours: tuple[str, ...]

    @property
    def dimensions_text(self) -> str:
        """The dimensions as printed under the label, e.g. ``3.6 x 4.2 m``."""
        return f"{self.size_m[0]:.1f} x {self.size_m[1]:.1f} m"


@dataclass(frozen=True)
class Plan:
    """A whole drawing: canvas, outline, walls, rooms and doors, all in image pixels."""

    title: str
    program: Program
    width: int
    height: int
    px_per_m: float
    outline: BBox
    outer_wall_px: int
    inner_wall_px: int
    rooms: tuple[Room, ...]
    doors: tuple[Door, ...]
    walls: tuple[BBox, ...]


def canvas_size(rng: random.Random) -> tuple[int, int]:
    """A 2K canvas: long edge from LONG_EDGES, aspect 4:3, 3:2 or 16:10, mostly landscape."""
    long_edge = rng.choice(LONG_EDGES)
    short_edge = round(long_edge / rng.choice(_ASPECTS))
    return (long_edge, short_edge) if rng.random() < 0.75 else (short_edge, long_edge)


def _room(
    frame: Frame, cell: Cell, walls: tuple[int, int], label_px: int, doors: Sequence[Door]
) -> Room:
    """The room inside its walls (each side gives up half its wall), furnished clear of doors."""
    x0, y0, x1, y1 = cell.rect

    def inset(side: int) -> int:
        return ((walls[0] if cell.on_outline(side) else walls[1]) + 1) // 2 + 1

    interior = BBox(
        frame.x(x0) + inset(0),
        frame.y(y0) + inset(1),
        frame.x(x1) - inset(2),
        frame.y(y1) - inset(3),
    )
    size_m = (round(x1 - x0, 1), round(y1 - y0, 1))
    chars = max(len(cell.kind.label), len(f"{size_m[0]:.1f} x {size_m[1]:.1f} m"))
    width = interior.x_max - interior.x_min
    fitted = max(12, min(label_px, int(0.8 * width / (chars * CHAR_WIDTH))))
    text = (chars * CHAR_WIDTH * fitted, 2 * LINE_HEIGHT * fitted)
    keep_clear = tuple(door.clearance for door in doors)
    furniture = furnish(interior, cell.kind.furniture, frame.px_per_m, text, keep_clear)
    return Room(cell.kind, cell.id, interior, size_m, fitted, furniture, cell.neighbours)


def _rooms_fit(rooms: Sequence[Room]) -> bool:
    """Every room is wide enough to stand in, and every habitable one holds furniture."""
    return all(min(r.size_m) >= _MIN_SIDE_M for r in rooms) and all(
        r.furniture for r in rooms if r.kind.type in HABITABLE_TYPES
    )


def _wall_line(frame: Frame, edge: Edge) -> BBox:
    """An inner wall's centre line as a degenerate box (x_min == x_max or y_min == y_max)."""
    axis, at, start, end = edge
    if axis == "horizontal":
        return BBox(frame.x(start), frame.y(at), frame.x(end), frame.y(at))
    return BBox(frame.x(at), frame.y(start), frame.x(at), frame.y(end))


def plan_layout(rng: random.Random, program: Program, title: str) -> Plan:
    """The plan of ``program`` on a 2K canvas, its rooms in the first shuffled order that fits."""
    width, height = canvas_size(rng)
    margin, title_band = round(0.07 * min(width, height)), round(0.06 * height)
    free_w, free_h = width - 2 * margin, height - 2 * margin - title_band
    area = sum(r.weight for r in program.rooms) * _M2_PER_WEIGHT
    size_w = snap(math.sqrt(area * free_w / free_h))
    size_h = snap(area / size_w)
    px_per_m = min(free_w / size_w, free_h / size_h)
    frame = Frame(
        (width - size_w * px_per_m) / 2,
        title_band + margin + (free_h - size_h * px_per_m) / 2,
        px_per_m,
    )
    walls = (round(_OUTER_WALL_M * px_per_m), max(4, round(_INNER_WALL_M * px_per_m)))
    label_px = round(max(width, height) / 80)
    bounds: Metres = (0.0, 0.0, size_w, size_h)
    order = list(program.rooms)
    for _ in range(_TRIES):
        split = cells(bounds, order)
        placed_doors = doors(frame, split)
        rooms = [_room(frame, cell, walls, label_px, placed_doors) for cell in split]
        if _rooms_fit(rooms):
            break
        rng.shuffle(order)
    else:
        raise ValueError(f"no layout of {program.name} fits {size_w} x {size_h} m")
    return Plan(
        title=title,
        program=program,
        width=width,
        height=height,
        px_per_m=px_per_m,
        outline=BBox(frame.x(0), frame.y(0), frame.x(size_w), frame.y(size_h)),
        outer_wall_px=walls[0],
        inner_wall_px=walls[1],
        rooms=tuple(rooms),
        doors=placed_doors,
        walls=tuple(
            _wall_line(frame, edge)
            for i, a in enumerate(split)
            for b in split[i + 1 :]
            if (edge := shared_edge(a.rect, b.rect))
        ),
    )
