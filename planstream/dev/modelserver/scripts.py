"""Scenario scripts: what the server answers to the n-th extraction call for a sample's image.

Scenarios apply to a sample's source image only; renders always get the truth at their size.
"""

import json
from dataclasses import dataclass
from typing import Literal

from planstream.dev.samples import flaws
from planstream.dev.samples.scenarios import Scenario
from planstream.dev.samples.truth import Document

__all__ = ["Answer", "ErrorReply", "Hang", "Reply", "dump", "extraction_reply"]


@dataclass(frozen=True)
class Answer:
    """A completion: its content, why it ended, and whether it must pass the requested schema."""

    content: str
    finish_reason: Literal["stop", "length"] = "stop"
    schema_valid: bool = True


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error instead of a completion (throttling, a server failure)."""

    status: int
    message: str
    kind: str
    code: str | None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Hang:
    """No answer for a long while (``model_hang_s``), then ``then`` if anyone still listens."""

    then: Answer


Reply = Answer | ErrorReply | Hang

_RATE_LIMITED = ErrorReply(
    429,
    "Rate limit reached for requests per min (RPM): limit 1, used 1. Please try again in 1s.",
    "requests",
    "rate_limit_exceeded",
    retry_after_s=1,
)
_SERVER_ERROR = ErrorReply(
    500,
    "The server had an error while processing your request. Sorry about that!",
    "server_error",
    None,
)


def dump(document: object) -> str:
    """Compact JSON, the way a model writes a structured answer."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _prose(document: Document) -> str:
    """The document wrapped in prose and a Markdown fence: not JSON, so SCHEMA_INVALID."""
    fenced = json.dumps(document, ensure_ascii=False, indent=2)
    return f"Here are the spaces I found on the plan:\n\n```json\n{fenced}\n```\n"


def extraction_reply(scenario: Scenario, truth: Document, call: int, is_source: bool) -> Reply:
    """The reply to extraction call ``call`` (1-based) for an image whose truth is ``truth``."""
    correct = Answer(dump(truth))
    if not is_source:
        return correct
    first = call == 1
    match scenario:
        case "correct" | "not_a_floor_plan":
            return correct
        case "flawed_then_correct":
            return Answer(dump(flaws.duplicate_id(truth))) if first else correct
        case "hallucinated_room":
            return Answer(dump(flaws.hallucinated(truth))) if first else correct
        case "missing_room":
            return Answer(dump(flaws.without_bathrooms(truth)))
        case "low_confidence":
            return Answer(dump(flaws.low_confidence(truth)))
        case "invalid_json":
            return Answer(_prose(truth), schema_valid=False)
        case "length":
            cut = correct.content[: len(correct.content) // 2]
            return Answer(cut, "length", schema_valid=False) if first else correct
        case "rate_limited":
            return _RATE_LIMITED if first else correct
        case "server_error":
            return _SERVER_ERROR if first else correct
        case "hang":
            return Hang(correct) if first else correct
