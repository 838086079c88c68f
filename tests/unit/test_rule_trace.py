"""The rule trace: every document rule with what it read, and verdicts that agree with the rules."""

from dataclasses import replace
from pathlib import Path

import pytest

from planstream.cli.decide import read_case
from planstream.domain.rule_trace import trace_document
from planstream.domain.rules import DOCUMENT_CHECKS, Policy, document_failures
from planstream.domain.spaces import ImageSize, SchemaViolation, SpacesDocument
from tests.factories import make_space, make_spaces

EXAMPLES = sorted((Path(__file__).parents[1] / "contract" / "examples").glob("decide-*.json"))


def _documents() -> list[tuple[str, SpacesDocument, ImageSize | None]]:
    found = []
    for path in EXAMPLES:
        case = read_case(path)
        if isinstance(case.spaces, SpacesDocument):
            found.append((path.stem, case.spaces, case.image))
    return found


@pytest.mark.parametrize(("name", "document", "image"), _documents(), ids=lambda v: str(v)[:40])
def test_the_fired_rules_are_exactly_the_failures_the_rules_report(
    name: str, document: SpacesDocument, image: ImageSize | None
) -> None:
    traces = trace_document(document, image, Policy())
    fired = [f for t in traces for f in t.failures]
    assert fired == document_failures(document, image, Policy())
    assert [t.rule for t in traces[1:]] == [rule.name for rule, _ in DOCUMENT_CHECKS]


def test_there_are_examples_to_trace() -> None:
    assert len(_documents()) >= 5


def test_the_low_confidence_rule_shows_its_share_and_thresholds() -> None:
    document = make_spaces(
        make_space(1, "kitchen", confidence=0.2),
        make_space(2, "bedroom", confidence=0.3),
        make_space(3, "bathroom"),
    )
    [trace] = [
        t for t in trace_document(document, None, Policy()) if t.rule == "LOW_CONFIDENCE_RATIO"
    ]
    assert trace.verdict == "fired"
    assert trace.read == {
        "spaces": 3,
        "below_confidence": 2,
        "confidence_threshold": 0.5,
        "share": 0.6667,
        "max_share": 0.5,
    }
    looser = trace_document(document, None, Policy(max_low_confidence_share=0.7))
    assert [t.verdict for t in looser if t.rule == "LOW_CONFIDENCE_RATIO"] == ["passed"]


def test_a_rule_that_does_not_look_at_the_document_says_so() -> None:
    office = replace(
        make_spaces(make_space(1, "office"), make_space(2, "office")), plan_type="office"
    )
    verdicts = {t.rule: t.verdict for t in trace_document(office, None, Policy())}
    assert verdicts["MISSING_CRITICAL_SPACE"] == "not applicable"
    assert verdicts["IMAGE_SIZE_MISMATCH"] == "not applicable"  # no measured image


def test_a_schema_violation_is_the_only_verdict() -> None:
    [trace] = trace_document(SchemaViolation("spaces: required"), None, Policy())
    assert (trace.rule, trace.verdict, trace.read) == (
        "SCHEMA_INVALID",
        "fired",
        {"reason": "spaces: required"},
    )
