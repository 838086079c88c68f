"""How the Info Worker judges a model's answer: a Spaces document, or the failure it is.

A cut-off, refused, oversized or invalid answer is a failure, never persisted as spaces. These
failures stand in for the document, so like SCHEMA_INVALID they stop the document rules.
"""

from dataclasses import dataclass

from planstream.domain.events import Failure
from planstream.domain.rules import MODEL_REFUSED, SCHEMA_INVALID, Rule
from planstream.domain.spaces import SchemaViolation, SpacesDocument, load_spaces

__all__ = ["Judgement", "judge_answer"]


@dataclass(frozen=True)
class Judgement:
    """A usable document (with its canonical JSON) or the failure that replaces it."""

    document: SpacesDocument | None
    failure: Failure | None


def judge_answer(
    content: str | None, refusal: str | None, finish_reason: str | None, max_bytes: int
) -> Judgement:
    """Whether the model's answer is a spaces-v1 document, and if not, why not."""
    if finish_reason == "oversize":
        return _fails(SCHEMA_INVALID, f"the answer is over the {max_bytes}-byte cap")
    if refusal:
        return _fails(MODEL_REFUSED, f"the model refused: {refusal[:300]}")
    if finish_reason == "length":
        return _fails(
            SCHEMA_INVALID, "the answer was cut at the token limit (finish_reason=length)"
        )
    if not content:
        return _fails(SCHEMA_INVALID, "the answer is empty")
    loaded = load_spaces(content)
    if isinstance(loaded, SchemaViolation):
        return _fails(SCHEMA_INVALID, loaded.reason)
    return Judgement(loaded, None)


def _fails(rule: Rule, detail: str) -> Judgement:
    return Judgement(None, rule.failure(detail))
