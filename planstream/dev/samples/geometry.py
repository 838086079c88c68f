"""Plan geometry in metres: the outline split among the rooms, shared walls, and pixel frames."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from planstream.dev.samples.programs import RoomKind

__all__ = ["HUBS", "Cell", "Edge", "Frame", "Metres", "cells", "shared_edge", "snap"]

GRID_M: Final = 0.1
HUBS: Final = (
    "hallway_corridor",
    "reception_lobby",
    "living_room",
    "kitchen_dining_living",
    "studio_living_sleeping",
    "open_workspace",
)
"""Room types doors lead to, the most public first."""

Metres = tuple[float, float, float, float]
"""A rectangle in metres: x0, y0, x1, y1, origin at the outline's top-left corner."""
Edge = tuple[str, float, float, float]
"""A wall segment: axis ("horizontal" or "vertical"), coordinate across it, start and end."""


def snap(value: float) -> float:
    """``value`` on the 10 cm grid the plans are drawn on."""
    return round(round(value / GRID_M) * GRID_M, 1)


def _split(area: Metres, rooms: Sequence[RoomKind]) -> list[tuple[RoomKind, Metres]]:
    """Cut ``area`` across its longer side into two groups of rooms of balanced weight."""
    if len(rooms) == 1:
        return [(rooms[0], area)]
    total = sum(r.weight for r in rooms)
    sums = [sum(r.weight for r in rooms[:k]) for k in range(1, len(rooms))]
    k = min(range(len(sums)), key=lambda i: abs(sums[i] - total / 2)) + 1
    share = sums[k - 1] / total
    x0, y0, x1, y1 = area
    if x1 - x0 >= y1 - y0:
        cut = snap(x0 + (x1 - x0) * share)
        first, second = (x0, y0, cut, y1), (cut, y0, x1, y1)
    else:
        cut = snap(y0 + (y1 - y0) * share)
        first, second = (x0, y0, x1, cut), (x0, cut, x1, y1)
    return _split(first, rooms[:k]) + _split(second, rooms[k:])


def shared_edge(a: Metres, b: Metres) -> Edge | None:
    """The wall ``a`` and ``b`` share, or None when they only touch at a corner or not at all."""
    for axis, (lo, hi, c0, c1) in (("vertical", (1, 3, 0, 2)), ("horizontal", (0, 2, 1, 3))):
        start, end = max(a[lo], b[lo]), min(a[hi], b[hi])
        if end - start > 1e-6 and (math.isclose(a[c1], b[c0]) or math.isclose(b[c1], a[c0])):
            at = a[c1] if math.isclose(a[c1], b[c0]) else a[c0]
            return axis, at, start, end
    return None


@dataclass(frozen=True)
class Frame:
    """Metres to pixels: where the outline's top-left corner is on the canvas, and the scale."""

    left: float
    top: float
    px_per_m: float

    def x(self, metres: float) -> int:
        """The pixel column of ``metres`` from the outline's left side."""
        return round(self.left + metres * self.px_per_m)

    def y(self, metres: float) -> int:
        """The pixel row of ``metres`` from the outline's top side."""
        return round(self.top + metres * self.px_per_m)


@dataclass(frozen=True)
class Cell:
    """A room of the split, in metres, before it is drawn."""

    id: str
    kind: RoomKind
    rect: Metres
    bounds: Metres
    neighbours: tuple[str, ...]

    @property
    def rank(self) -> int:
        """How public the room is: hubs first, in HUBS order."""
        return HUBS.index(self.kind.type) if self.kind.type in HUBS else len(HUBS)

    def on_outline(self, side: int) -> bool:
        """Whether side ``side`` of the rect (0 left, 1 top, 2 right, 3 bottom) is an outer wall."""
        return math.isclose(self.rect[side], self.bounds[side])


def cells(bounds: Metres, order: Sequence[RoomKind]) -> list[Cell]:
    """The split of ``bounds`` among the rooms in ``order``, numbered S1, S2, ..."""
    split = _split(bounds, order)
    ids = [f"S{i}" for i in range(1, len(split) + 1)]
    return [
        Cell(
            ids[i],
            kind,
            rect,
            bounds,
            tuple(
                ids[j] for j, (_, other) in enumerate(split) if j != i and shared_edge(rect, other)
            ),
        )
        for i, (kind, rect) in enumerate(split)
    ]
