"""The scripted audit: how far a document's rooms agree with the sample's true rooms.

``consistency_score`` is the size of the intersection over the size of the union of the two
multisets of room types, truth ``T`` and answer ``A``: ``sum(min(T[t], A[t])) /
sum(max(T[t], A[t]))`` over every type ``t``, and 1.0 when both are empty.
"""

from collections import Counter
from typing import Any, Final

from planstream.dev.samples.truth import Document
from planstream.domain.spaces import SpacesDocument

__all__ = ["MAX_CONTRADICTIONS", "audit"]

MAX_CONTRADICTIONS: Final = 10


def _contradictions(truth: Document, document: SpacesDocument | None) -> list[str]:
    """Each answered room that is not on the plan, then each room of the plan that is missing."""
    notes = [] if document is not None else ["no valid Spaces document to compare with the plan"]
    answered = [] if document is None else [(s.id, s.type) for s in document.spaces]
    real = [(s["label_text"] or s["type"], s["type"]) for s in truth["spaces"]]
    left = Counter(kind for _, kind in real)
    for space_id, kind in answered:
        if left[kind] > 0:
            left[kind] -= 1
        else:
            notes.append(f"{space_id} {kind} is not on the plan")
    unmatched = Counter(kind for _, kind in answered)
    for label, kind in real:
        if unmatched[kind] > 0:
            unmatched[kind] -= 1
        else:
            notes.append(f"the plan's {label} ({kind}) is missing from the document")
    return notes[:MAX_CONTRADICTIONS]


def audit(truth: Document, document: SpacesDocument | None) -> dict[str, Any]:
    """The ``decision_audit_v1`` answer for ``document`` (None: no valid document) vs ``truth``."""
    real = Counter(s["type"] for s in truth["spaces"])
    answered = Counter(s.type for s in document.spaces) if document is not None else Counter()
    union = sum((real | answered).values())
    score = sum((real & answered).values()) / union if union else 1.0
    return {
        "consistency_score": round(score, 4),
        "contradictions": [note[:300] for note in _contradictions(truth, document)],
    }
