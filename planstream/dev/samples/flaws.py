"""Flawed documents: the wrong answers the scenarios script, each failing one rule on purpose."""

import copy
from typing import Final

from planstream.dev.samples.truth import Document

__all__ = ["INVENTED_TYPES", "duplicate_id", "hallucinated", "low_confidence", "without_bathrooms"]

INVENTED_TYPES: Final = (
    "balcony",
    "walk_in_closet",
    "laundry_utility",
    "garage_carport",
    "sauna",
    "mechanical_technical",
    "terrace_patio_porch",
    "stair",
)
"""Rooms a hallucinating model adds: none habitable, none a bedroom, bathroom or kitchen."""


def duplicate_id(truth: Document) -> Document:
    """The truth with the last space numbered like the first (DUPLICATE_SPACE_IDS, high)."""
    flawed = copy.deepcopy(truth)
    flawed["spaces"][-1]["id"] = flawed["spaces"][0]["id"]
    return flawed


def low_confidence(truth: Document) -> Document:
    """The truth read with every confidence below 0.5 (LOW_CONFIDENCE_RATIO, high)."""
    flawed = copy.deepcopy(truth)
    for index, space in enumerate(flawed["spaces"]):
        space["confidence"] = round(0.25 + 0.03 * (index % 7), 2)
    flawed["overall_confidence"] = 0.35
    flawed["extraction_notes"] = ["Most labels are hard to read at this resolution."]
    return flawed


def without_bathrooms(truth: Document) -> Document:
    """The truth without its bathrooms (MISSING_CRITICAL_SPACE for the bathroom group, high)."""
    flawed = copy.deepcopy(truth)
    gone = {s["id"] for s in flawed["spaces"] if s["type"] == "bathroom"}
    flawed["spaces"] = [s for s in flawed["spaces"] if s["id"] not in gone]
    for space in flawed["spaces"]:
        space["adjacent_space_ids"] = [i for i in space["adjacent_space_ids"] if i not in gone]
    return flawed


def hallucinated(truth: Document) -> Document:
    """The truth plus one more invented room than it has real ones, in a strip along the bottom.

    The audit scores the shared room types over all room types (multisets), so ``n`` real rooms
    and ``n + 1`` invented ones score ``n / (2n + 1)``, below 0.5 (AUDIT_INCONSISTENT, high).
    """
    flawed = copy.deepcopy(truth)
    real = len(flawed["spaces"])
    width, height = flawed["image"]["width_px"], flawed["image"]["height_px"]
    slot = width // (real + 1)
    top = height - max(2, height // 25)
    for index in range(real + 1):
        flawed["spaces"].append(
            {
                "id": f"S{real + index + 1}",
                "label_text": None,
                "dimensions_text": None,
                "bbox": {
                    "x_min": index * slot,
                    "y_min": top,
                    "x_max": (index + 1) * slot,
                    "y_max": height,
                },
                "furnishings": [],
                "type": INVENTED_TYPES[index % len(INVENTED_TYPES)],
                "alternative_types": [],
                "ambiguous": False,
                "ambiguity_reason": None,
                "confidence": 0.9,
                "area": {"value": None, "unit": None, "source": "none"},
                "adjacent_space_ids": [],
            }
        )
    return flawed
