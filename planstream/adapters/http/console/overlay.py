"""The spaces the Info Worker found, as the run page shows them: a table, and their boxes drawn
over the plan as an inline SVG computed here (no script), in the image's own pixels.

The stored document is read as what it is, model output: parsed strictly and checked against
spaces-v1 (``planstream.domain.spaces.load_spaces``); one that fails is shown as its reason,
never drawn. A box is clipped to the image so a wild one cannot cover the page.
"""

from dataclasses import dataclass
from typing import Final

from planstream.domain.rules import Policy
from planstream.domain.spaces import (
    BBox,
    Furnishing,
    ImageSize,
    SchemaViolation,
    Space,
    load_spaces,
)

__all__ = ["Box", "Overlay", "SpaceRow", "SpacesView", "spaces_view"]

_LOW: Final = Policy().low_confidence_below


@dataclass(frozen=True)
class SpaceRow:
    """One space of the table."""

    id: str
    type: str
    alternatives: str
    confidence: float
    low_confidence: bool
    ambiguous: bool
    ambiguity_reason: str
    furnishings: str
    bbox: str
    fits: bool


@dataclass(frozen=True)
class Box:
    """One space's rectangle and label in image pixels."""

    x: int
    y: int
    width: int
    height: int
    label: str
    label_x: int
    label_y: int
    low_confidence: bool


@dataclass(frozen=True)
class Overlay:
    """The image (an artifact of the run) with the boxes over it."""

    image_artifact_id: str
    width: int
    height: int
    stroke: int
    font_size: int
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class SpacesView:
    """A step attempt's Spaces document: its spaces and overlay, or why it is not shown."""

    artifact_id: str
    problem: str | None
    document_type: str
    plan_type: str
    rows: tuple[SpaceRow, ...]
    overlay: Overlay | None


def _furnishing(furnishing: Furnishing) -> str:
    """``sofa x2``, with where it came from unless it is drawn on the plan."""
    shown = f"{furnishing.item} x{furnishing.count}"
    return shown if furnishing.source == "drawn_on_plan" else f"{shown} ({furnishing.source})"


def _row(space: Space, image: ImageSize) -> SpaceRow:
    box = space.bbox
    return SpaceRow(
        id=space.id,
        type=space.type,
        alternatives=", ".join(space.alternative_types),
        confidence=space.confidence,
        low_confidence=space.confidence < _LOW,
        ambiguous=space.ambiguous,
        ambiguity_reason=space.ambiguity_reason or "",
        furnishings=", ".join(_furnishing(f) for f in space.furnishings),
        bbox=f"{box.x_min},{box.y_min} - {box.x_max},{box.y_max}",
        fits=box.fits(image),
    )


def _box(space: Space, image: ImageSize, font_size: int) -> Box | None:
    """The space's rectangle clipped to the image; None when nothing of it is inside."""
    b: BBox = space.bbox
    x0, y0 = max(0, min(b.x_min, image.width_px)), max(0, min(b.y_min, image.height_px))
    x1, y1 = max(0, min(b.x_max, image.width_px)), max(0, min(b.y_max, image.height_px))
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(
        x=x0,
        y=y0,
        width=x1 - x0,
        height=y1 - y0,
        label=f"{space.id} {space.type} {space.confidence:.2f}",
        label_x=x0 + font_size // 3,
        label_y=min(y1, y0 + font_size + font_size // 3),
        low_confidence=space.confidence < _LOW,
    )


def spaces_view(
    artifact_id: str,
    raw: bytes | None,
    problem: str | None,
    image_artifact_id: str | None,
    measured: ImageSize | None,
) -> SpacesView:
    """The document stored as ``artifact_id`` (``raw``, or the ``problem`` reading it), drawn
    over ``image_artifact_id`` at its measured size (else the size the document states)."""
    if raw is None:
        return SpacesView(artifact_id, problem or "not read", "", "", (), None)
    document = load_spaces(raw)
    if isinstance(document, SchemaViolation):
        return SpacesView(artifact_id, document.reason, "", "", (), None)
    image = measured or document.image
    rows = tuple(_row(space, image) for space in document.spaces)
    overlay = None
    if image_artifact_id is not None and image.width_px > 0 and image.height_px > 0:
        longest = max(image.width_px, image.height_px)
        font_size = max(10, longest // 70)
        boxes = (_box(space, image, font_size) for space in document.spaces)
        overlay = Overlay(
            image_artifact_id,
            image.width_px,
            image.height_px,
            max(2, longest // 400),
            font_size,
            tuple(box for box in boxes if box is not None),
        )
    return SpacesView(artifact_id, None, document.document_type, document.plan_type, rows, overlay)
