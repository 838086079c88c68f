"""Why a step was decided so: what each document rule read and what it concluded.

``planstream replay start --trace`` prints this for one run (docs/replay.md). The verdicts come
from the rules' own checks (``rules.DOCUMENT_CHECKS``), so a trace can never disagree with the
failures the Comparison Worker reported; this module only adds what each check looked at.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from planstream.domain.events import Failure
from planstream.domain.rules import DOCUMENT_CHECKS, SCHEMA_INVALID, Policy
from planstream.domain.spaces import CRITICAL_GROUPS, ImageSize, SchemaViolation, SpacesDocument

__all__ = ["RuleTrace", "trace_document"]

Verdict = Literal["fired", "passed", "not applicable"]


@dataclass(frozen=True)
class RuleTrace:
    """One rule on one document: the values it read, and what it concluded."""

    rule: str
    verdict: Verdict
    read: dict[str, Any]
    failures: tuple[Failure, ...] = ()


Inputs = Callable[[SpacesDocument, ImageSize | None, Policy], dict[str, Any]]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _low_confidence(doc: SpacesDocument, image: ImageSize | None, policy: Policy) -> dict[str, Any]:
    low = sum(s.confidence < policy.low_confidence_below for s in doc.spaces)
    return {
        "spaces": len(doc.spaces),
        "below_confidence": low,
        "confidence_threshold": policy.low_confidence_below,
        "share": _share(low, len(doc.spaces)),
        "max_share": policy.max_low_confidence_share,
    }


def _ambiguous(doc: SpacesDocument, image: ImageSize | None, policy: Policy) -> dict[str, Any]:
    counted = sum(s.ambiguous and s.ambiguity_reason != "open_plan_boundary" for s in doc.spaces)
    return {
        "spaces": len(doc.spaces),
        "ambiguous_counted": counted,
        "share": _share(counted, len(doc.spaces)),
        "max_share": policy.max_ambiguous_share,
    }


def _sizes(doc: SpacesDocument, image: ImageSize | None, policy: Policy) -> dict[str, Any]:
    measured = None if image is None else f"{image.width_px}x{image.height_px}"
    return {"document_px": f"{doc.image.width_px}x{doc.image.height_px}", "image_px": measured}


_INPUTS: Final[dict[str, Inputs]] = {
    "NOT_A_FLOOR_PLAN": lambda doc, image, policy: {"document_type": doc.document_type},
    "TOO_FEW_SPACES": lambda doc, image, policy: {
        "spaces": len(doc.spaces),
        "min_spaces": policy.min_spaces,
    },
    "DUPLICATE_SPACE_IDS": lambda doc, image, policy: {
        "repeated_ids": sorted(i for i, n in Counter(s.id for s in doc.spaces).items() if n > 1)
    },
    "IMAGE_SIZE_MISMATCH": _sizes,
    "BBOX_OUT_OF_BOUNDS": lambda doc, image, policy: {
        "boxes": len(doc.spaces),
        "outside": [s.id for s in doc.spaces if not s.bbox.fits(doc.image)],
    },
    "LOW_CONFIDENCE_RATIO": _low_confidence,
    "AMBIGUOUS_RATIO": _ambiguous,
    "HABITABLE_WITHOUT_FURNISHINGS": lambda doc, image, policy: {
        "habitable": [s.id for s in doc.spaces if s.is_habitable],
        "unfurnished": [s.id for s in doc.spaces if s.is_habitable and not s.furnishings],
    },
    "MISSING_CRITICAL_SPACE": lambda doc, image, policy: {
        "plan_type": doc.plan_type,
        "groups_found": [g for g in CRITICAL_GROUPS if any(s.counts_for(g) for s in doc.spaces)],
        "groups_required": list(CRITICAL_GROUPS),
    },
}


def _applies(rule: str, doc: SpacesDocument, image: ImageSize | None) -> bool:
    """Whether the rule looks at this document at all (RULES.md's conditions)."""
    match rule:
        case "TOO_FEW_SPACES":
            return doc.is_floor_plan
        case "IMAGE_SIZE_MISMATCH":
            return image is not None
        case "MISSING_CRITICAL_SPACE":
            return doc.is_floor_plan and doc.plan_type == "residential"
        case _:
            return True


def trace_document(
    loaded: SpacesDocument | SchemaViolation, image: ImageSize | None, policy: Policy
) -> list[RuleTrace]:
    """Every document rule in catalogue order with what it read and concluded; a schema
    violation is the one verdict when the document breaks spaces-v1 (it stops the others)."""
    if isinstance(loaded, SchemaViolation):
        failure = SCHEMA_INVALID.failure(loaded.reason)
        return [RuleTrace(SCHEMA_INVALID.name, "fired", {"reason": loaded.reason}, (failure,))]
    traces = [RuleTrace(SCHEMA_INVALID.name, "passed", {"schema": "spaces-v1"})]
    for rule, check in DOCUMENT_CHECKS:
        failures = tuple(check(loaded, image, policy))
        read = _INPUTS[rule.name](loaded, image, policy)
        if failures:
            verdict: Verdict = "fired"
        elif _applies(rule.name, loaded, image):
            verdict = "passed"
        else:
            verdict = "not applicable"
        traces.append(RuleTrace(rule.name, verdict, read, failures))
    return traces
