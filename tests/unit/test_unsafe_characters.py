"""No text field holds NUL, a control, a lone surrogate or a non-character: the API refuses it with
the field, and so does every event's decode (a raw producer is an attacker too), so PostgreSQL
never sees one. Tab, newline, carriage return and ordinary non-ASCII text pass."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from planstream.adapters.http.api import CreateRun, ReviewRun
from planstream.domain.errors import EventRejected
from planstream.domain.events import DecisionMade, RunReviewed, StepFailed
from planstream.domain.guards import find_smuggling, find_unsafe_character
from planstream.domain.ids import new_id
from planstream.domain.rules import clean_detail
from planstream.domain.wire import decode_event
from tests.factories import make_step_requested

LIMIT = 50_000

UNSAFE = [
    ("x\x00", "a control character (U+0000)"),
    ("\x01", "a control character (U+0001)"),
    ("bell\x07", "a control character (U+0007)"),
    ("\x0b", "a control character (U+000B)"),
    ("\x0c", "a control character (U+000C)"),
    ("esc \x1b[31m red", "a control character (U+001B)"),
    ("\x7f", "a control character (U+007F)"),
    ("next\x85line", "a control character (U+0085)"),
    ("\x9f", "a control character (U+009F)"),
    ("\ud800", "a lone surrogate (U+D800)"),
    ("lo\udfff", "a lone surrogate (U+DFFF)"),
    ("\ufdd0", "a non-character (U+FDD0)"),
    ("\ufffe", "a non-character (U+FFFE)"),
    ("\uffff", "a non-character (U+FFFF)"),
    ("\U0001fffe", "a non-character (U+1FFFE)"),
    ("\U0010ffff", "a non-character (U+10FFFF)"),
]

SAFE = [
    "tab\tnewline\ncarriage return\r",
    "Küche offen, Wohnzimmer 25 m², Bad mit Fenster",
    "日本語のテキスト",
    "emoji 🏠 and ¡ (U+00A1, just past the C1 controls)",
    "\ufdcf\ufdf0\ufffd",  # the neighbours of the non-characters
    "",
]


@pytest.mark.parametrize(("value", "named"), UNSAFE)
def test_unsafe_characters_are_refused_by_code_point(value: str, named: str) -> None:
    assert find_unsafe_character(value) == f"holds {named}"
    assert find_smuggling(value) == f"holds {named}"


@pytest.mark.parametrize("value", SAFE)
def test_ordinary_text_passes(value: str) -> None:
    assert find_unsafe_character(value) is None
    assert find_smuggling(value) is None


def test_a_failure_detail_with_a_control_is_withheld_not_raised() -> None:
    assert (
        clean_detail("model said \x00") == "(text withheld: it holds a control character (U+0000))"
    )


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (ReviewRun, {"action": "retry", "reason": "x\u0000"}, "reason"),
        (ReviewRun, {"action": "approve", "reason": "ok\u001b[2J"}, "reason"),
        (CreateRun, {"upload_id": new_id("upl"), "request_text": "a\u0085b"}, "request_text"),
    ],
)
def test_the_api_refuses_them_naming_the_field(
    model: type[ReviewRun | CreateRun], body: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate_json(json.dumps(body))
    [error] = raised.value.errors()
    assert error["loc"] == (field,)
    assert "control character" in error["msg"]


def _failure(detail: str) -> dict[str, str]:
    return {"rule": "RULES_FAILED", "severity": "high", "detail": detail}


def _raw(event: dict[str, object]) -> bytes:
    """The event as a raw producer would send it: JSON with ``\\u`` escapes."""
    return json.dumps(event, default=str).encode()


def test_a_raw_produced_review_with_a_nul_is_refused_at_decode_naming_the_field() -> None:
    review = {
        "event_id": new_id("evt"),
        "run_id": new_id("run"),
        "occurred_at": datetime.now(UTC).isoformat(),
        "action": "retry",
        "reason": "x\u0000",
        "reviewer": "op",
    }
    assert b"\\u0000" in _raw(review)
    with pytest.raises(EventRejected, match=r"^RunReviewed: reason: .*U\+0000"):
        decode_event(RunReviewed, _raw(review), LIMIT)


@pytest.mark.parametrize(
    ("field", "clean", "unsafe"),
    [
        ("audit_note", "fine", "fine\u0000"),
        ("contradictions", ["one", "two"], ["one", "two\u0001"]),
        ("failures", [_failure("d")], [_failure("d\u0000")]),
    ],
)
def test_a_raw_produced_decision_with_a_control_is_refused_at_decode(
    field: str, clean: object, unsafe: object
) -> None:
    request = make_step_requested()
    decision = {
        **request.same_step(new_id("evt"), datetime.now(UTC)),
        "decision": "proceed",
        "block_reason": None,
        "failure_count": 0,
        "schema_valid": True,
        "retry_budget_remaining": 2,
    }
    assert decode_event(DecisionMade, _raw({**decision, field: clean}), LIMIT)  # the control
    with pytest.raises(EventRejected, match=rf"^DecisionMade: {field}\b.*control character"):
        decode_event(DecisionMade, _raw({**decision, field: unsafe}), LIMIT)


def test_a_step_failure_with_a_nul_detail_is_refused_at_decode() -> None:
    request = make_step_requested()
    failed = {
        **request.same_step(new_id("evt"), datetime.now(UTC)),
        "service": "image_io",
        "failure": {"rule": "IMAGE_UNREADABLE", "severity": "critical", "detail": "\u0000"},
    }
    with pytest.raises(EventRejected, match=r"^StepFailed: failure\.detail: .*U\+0000"):
        decode_event(StepFailed, _raw(failed), LIMIT)
