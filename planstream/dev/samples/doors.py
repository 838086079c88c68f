"""Doors: one from each room to its most public neighbour, and the entrance from outside."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from planstream.dev.samples.geometry import Cell, Edge, Frame, Metres, shared_edge
from planstream.domain.spaces import BBox

__all__ = ["DOOR_M", "Door", "doors"]

DOOR_M: Final = 0.8
_MIN_WALL_M: Final = DOOR_M + 0.3


@dataclass(frozen=True)
class Door:
    """A door: a gap in the wall at ``at`` from ``start`` to ``end`` px, swinging to ``swing``."""

    axis: Literal["horizontal", "vertical"]
    at: int
    start: int
    end: int
    swing: Literal[-1, 1]

    @property
    def clearance(self) -> BBox:
        """The square the leaf sweeps, on both sides of the wall: keep furniture out of it."""
        reach = self.end - self.start
        if self.axis == "horizontal":
            return BBox(self.start, self.at - reach, self.end, self.at + reach)
        return BBox(self.at - reach, self.start, self.at + reach, self.end)


def _door(frame: Frame, edge: Edge, into_higher: bool) -> Door:
    axis, at, start, end = edge
    middle = (start + end) / 2
    swing: Literal[-1, 1] = 1 if into_higher else -1
    if axis == "horizontal":
        lo, hi = frame.x(middle - DOOR_M / 2), frame.x(middle + DOOR_M / 2)
        return Door("horizontal", frame.y(at), lo, hi, swing)
    lo, hi = frame.y(middle - DOOR_M / 2), frame.y(middle + DOOR_M / 2)
    return Door("vertical", frame.x(at), lo, hi, swing)


def _starts_at(rect: Metres, edge: Edge) -> bool:
    """Whether ``rect`` lies on the higher-coordinate side of ``edge``."""
    axis, at, _, _ = edge
    return math.isclose(rect[1] if axis == "horizontal" else rect[0], at)


def _outside_edge(cell: Cell) -> Edge | None:
    """A side of the cell on the outline long enough for a door, or None for an inner room."""
    x0, y0, x1, y1 = cell.rect
    sides: tuple[Edge, ...] = (
        ("vertical", x0, y0, y1),
        ("horizontal", y0, x0, x1),
        ("vertical", x1, y0, y1),
        ("horizontal", y1, x0, x1),
    )
    for side, edge in enumerate(sides):
        if cell.on_outline(side) and edge[3] - edge[2] >= _MIN_WALL_M:
            return edge
    return None


def doors(frame: Frame, cells: Sequence[Cell]) -> tuple[Door, ...]:
    """A door from every room but the hall to its most public neighbour, then the entrance."""
    found: list[Door] = []
    joined: set[frozenset[str]] = set()
    for cell in cells:
        options = [
            (other.rank, other.id, edge)
            for other in cells
            if other is not cell
            and (edge := shared_edge(cell.rect, other.rect))
            and edge[3] - edge[2] >= _MIN_WALL_M
            and frozenset((cell.id, other.id)) not in joined
        ]
        if cell.kind.type != "hallway_corridor" and options:
            _, other_id, edge = min(options, key=lambda option: option[0])
            joined.add(frozenset((cell.id, other_id)))
            found.append(_door(frame, edge, into_higher=_starts_at(cell.rect, edge)))
    for cell in sorted(cells, key=lambda c: c.rank):
        entrance = _outside_edge(cell)
        if entrance is not None:
            found.append(_door(frame, entrance, into_higher=_starts_at(cell.rect, entrance)))
            break
    return tuple(found)
