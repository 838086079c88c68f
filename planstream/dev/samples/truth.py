"""Truth documents: what a perfect extraction of a sample answers, at any image size."""

import copy
import random
from collections import Counter
from typing import Any, Final

from planstream.dev.samples.layout import Plan, Room

__all__ = ["SCHEMA_VERSION", "Document", "non_plan_truth", "plan_truth", "scaled"]

SCHEMA_VERSION: Final = "spaces-1.0"
Document = dict[str, Any]
"""A Spaces document as decoded JSON."""


def _document(
    document_type: str,
    plan_type: str,
    size: tuple[int, int],
    units: tuple[str, str],
    spaces: list[Document],
    confidence: float,
) -> Document:
    return {
        "schema_version": SCHEMA_VERSION,
        "document_type": document_type,
        "plan_type": plan_type,
        "image": {"width_px": size[0], "height_px": size[1]},
        "units": {"length_unit": units[0], "area_unit": units[1]},
        "overall_confidence": confidence,
        "spaces": spaces,
        "extraction_notes": [],
    }


def _space(room: Room, confidence: float) -> Document:
    """One room as spaces-v1 states it: the printed evidence first, then the judgement."""
    box = room.interior
    counts = Counter(item.kind for item in room.furniture)
    width_m, height_m = room.size_m
    return {
        "id": room.id,
        "label_text": room.kind.label,
        "dimensions_text": room.dimensions_text,
        "bbox": {"x_min": box.x_min, "y_min": box.y_min, "x_max": box.x_max, "y_max": box.y_max},
        "furnishings": [
            {"item": item, "count": count, "source": "drawn_on_plan"}
            for item, count in counts.items()
        ],
        "type": room.kind.type,
        "alternative_types": [],
        "ambiguous": False,
        "ambiguity_reason": None,
        "confidence": confidence,
        "area": {
            "value": round(width_m * height_m, 2),
            "unit": "m2",
            "source": "computed_from_printed_dimensions",
        },
        "adjacent_space_ids": list(room.neighbours),
    }


def plan_truth(plan: Plan, rng: random.Random) -> Document:
    """The plan's truth: every drawn room with its box, label, size and furniture."""
    confidences = [round(rng.uniform(0.85, 0.98), 2) for _ in plan.rooms]
    spaces = [_space(room, c) for room, c in zip(plan.rooms, confidences, strict=True)]
    overall = round(sum(confidences) / len(confidences), 2)
    size = (plan.width, plan.height)
    return _document(
        "single_floor_plan", plan.program.plan_type, size, ("m", "m2"), spaces, overall
    )


def non_plan_truth(document_type: str, size: tuple[int, int]) -> Document:
    """The truth of an image that is not a floor plan: its kind, and no spaces."""
    units = ("m", "m2") if document_type == "site_plan" else ("unknown", "unknown")
    return _document(document_type, "unknown", size, units, [], 0.95)


def _scale(low: int, high: int, factor: float, limit: int) -> tuple[int, int]:
    """An interval scaled by ``factor`` that stays well formed (low < high <= limit)."""
    scaled_low = min(round(low * factor), limit - 1)
    return scaled_low, min(max(round(high * factor), scaled_low + 1), limit)


def scaled(document: Document, width: int, height: int) -> Document:
    """``document`` for the same drawing resized to ``width`` x ``height`` px."""
    result = copy.deepcopy(document)
    factor_x = width / document["image"]["width_px"]
    factor_y = height / document["image"]["height_px"]
    result["image"] = {"width_px": width, "height_px": height}
    for space in result["spaces"]:
        box = space["bbox"]
        box["x_min"], box["x_max"] = _scale(box["x_min"], box["x_max"], factor_x, width)
        box["y_min"], box["y_max"] = _scale(box["y_min"], box["y_max"], factor_y, height)
    return result
