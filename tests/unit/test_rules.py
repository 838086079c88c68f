"""The rule catalogue, rule by rule, at its boundaries (docs/contracts/RULES.md)."""

import re
from typing import Any, get_args

import pytest

from planstream.domain.events import Failure, OutcomeBlockReason
from planstream.domain.rules import (
    ALL_RULES,
    BLOCK_REASONS,
    CATALOGUE,
    PIPELINE_RULES,
    REQUEST_MISMATCH,
    SCHEMA_INVALID,
    Mismatch,
    Policy,
    clean_detail,
    document_failures,
    evaluate_document,
    request_failures,
)
from planstream.domain.spaces import ImageSize, SchemaViolation, SpacesDocument, load_spaces
from tests.factories import SOFA, space_json, spaces_json

DEFAULTS = Policy()


def complete(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Kitchen, bedroom and bathroom (no rule fires), then ``extra``, numbered in order."""
    kinds = [
        space_json(type="kitchen"),
        space_json(type="bedroom"),
        space_json(type="bathroom", furnishings=[]),
        *extra,
    ]
    return [space | {"id": f"S{i}"} for i, space in enumerate(kinds, start=1)]


def load(document: dict[str, Any]) -> SpacesDocument:
    loaded = load_spaces(document)
    assert isinstance(loaded, SpacesDocument), loaded
    return loaded


def rules_of(failures: list[Failure]) -> list[str]:
    return [failure.rule for failure in failures]


def fired(document: dict[str, Any], image: ImageSize | None = None, **policy: Any) -> list[str]:
    return rules_of(document_failures(load(document), image, Policy(**policy)))


def test_a_complete_plan_passes_every_rule() -> None:
    assert fired(spaces_json(*complete()), ImageSize(1000, 800)) == []


def test_the_catalogue_has_the_names_severities_and_order_of_rules_md() -> None:
    assert [(rule.name, rule.severity) for rule in CATALOGUE] == [
        ("ARTIFACT_MISSING", "critical"),
        ("IMAGE_UNREADABLE", "critical"),
        ("IMAGE_DIMENSIONS_INVALID", "critical"),
        ("SCHEMA_INVALID", "high"),
        ("NOT_A_FLOOR_PLAN", "critical"),
        ("TOO_FEW_SPACES", "high"),
        ("DUPLICATE_SPACE_IDS", "high"),
        ("IMAGE_SIZE_MISMATCH", "high"),
        ("BBOX_OUT_OF_BOUNDS", "medium"),
        ("LOW_CONFIDENCE_RATIO", "high"),
        ("AMBIGUOUS_RATIO", "medium"),
        ("HABITABLE_WITHOUT_FURNISHINGS", "medium"),
        ("MISSING_CRITICAL_SPACE", "high"),
        ("REQUEST_MISMATCH", None),
        ("AUDIT_INCONSISTENT", "high"),
    ]
    assert all(rule.fix and len(rule.fix) <= 100 for rule in CATALOGUE)


def test_the_pipeline_rules_follow_rules_md_and_every_name_is_unique() -> None:
    assert [(rule.name, rule.severity) for rule in PIPELINE_RULES] == [
        ("MODEL_UNAVAILABLE", "high"),
        ("MODEL_REFUSED", "high"),
        ("WORKER_LOST", "high"),
        ("LEGACY_FAILED", "high"),
        ("IMAGE_TOO_LARGE", "critical"),
        ("IMAGE_FORMAT_UNSUPPORTED", "critical"),
        ("IMAGE_ANIMATED", "critical"),
        ("REPLAY_COST_CAP", "critical"),
    ]
    assert ALL_RULES == CATALOGUE + PIPELINE_RULES
    names = [rule.name for rule in ALL_RULES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]{2,47}", name) for name in names)
    assert all(rule.fix and len(rule.fix) <= 100 for rule in PIPELINE_RULES)


def test_every_rule_makes_a_failure_the_wire_accepts() -> None:
    """A fix that reads as a URL (``file:``, ``http:``) would make every failure of its rule
    unsendable: each rule builds one."""
    for rule in ALL_RULES:
        failure = rule.failure("a detail", severity=rule.severity or "high")
        assert (failure.rule, failure.suggested_fix) == (rule.name, rule.fix)


def test_the_block_reasons_are_the_wire_s_and_the_catalogue_s() -> None:
    assert get_args(OutcomeBlockReason) == BLOCK_REASONS
    assert BLOCK_REASONS == ("retry_budget_exhausted", "too_many_failures", "rejected_by_reviewer")


def test_document_rules_come_in_catalogue_order_with_their_fix() -> None:
    document = spaces_json(
        space_json(1, confidence=0.1, ambiguous=True, ambiguity_reason="other", furnishings=[]),
        space_json(1, confidence=0.1, bbox={"x_min": 5, "y_min": 0, "x_max": 5, "y_max": 9}),
        image={"width_px": 1000, "height_px": 800},
    )
    failures = document_failures(load(document), ImageSize(800, 1000), DEFAULTS)
    assert rules_of(failures) == [
        "DUPLICATE_SPACE_IDS",
        "IMAGE_SIZE_MISMATCH",
        "BBOX_OUT_OF_BOUNDS",
        "LOW_CONFIDENCE_RATIO",
        "AMBIGUOUS_RATIO",
        "HABITABLE_WITHOUT_FURNISHINGS",
        "MISSING_CRITICAL_SPACE",
        "MISSING_CRITICAL_SPACE",
        "MISSING_CRITICAL_SPACE",
    ]
    by_name = {rule.name: rule for rule in CATALOGUE}
    assert all(f.suggested_fix == by_name[f.rule].fix for f in failures)
    assert all(f.severity == by_name[f.rule].severity for f in failures)


@pytest.mark.parametrize(
    ("document_type", "is_floor_plan"),
    [
        ("single_floor_plan", True),
        ("multi_floor_plan_sheet", True),
        ("site_plan", False),
        ("elevation_or_section", False),
        ("interior_render_or_photo", False),
        ("not_architectural", False),
        ("unknown", False),
    ],
)
def test_not_a_floor_plan(document_type: str, is_floor_plan: bool) -> None:
    rules = fired(spaces_json(*complete(), document_type=document_type))
    assert rules == ([] if is_floor_plan else ["NOT_A_FLOOR_PLAN"])


@pytest.mark.parametrize(
    ("document_type", "count", "fires"),
    [
        ("single_floor_plan", 0, True),
        ("single_floor_plan", 1, True),
        ("multi_floor_plan_sheet", 1, True),
        ("single_floor_plan", 2, False),
        ("site_plan", 0, False),
        ("site_plan", 1, False),
    ],
)
def test_too_few_spaces_on_floor_plans_only(document_type: str, count: int, fires: bool) -> None:
    spaces = [space_json(i) for i in range(1, count + 1)]
    document = spaces_json(*spaces, document_type=document_type, plan_type="commercial")
    assert ("TOO_FEW_SPACES" in fired(document)) is fires


def test_zero_spaces_fire_no_ratio_rule() -> None:
    assert fired(spaces_json(plan_type="commercial")) == ["TOO_FEW_SPACES"]


@pytest.mark.parametrize(
    ("ids", "detail"),
    [
        (["S1", "S2", "S3"], None),
        (["S1", "S2", "S1"], "ids used more than once: S1"),
        (["S2", "S2", "S1", "S1", "S1"], "ids used more than once: S2, S1"),
    ],
)
def test_duplicate_space_ids_give_one_failure(ids: list[str], detail: str | None) -> None:
    document = spaces_json(*(space_json(id=i) for i in ids), plan_type="commercial")
    failures = document_failures(load(document), None, DEFAULTS)
    duplicates = [f for f in failures if f.rule == "DUPLICATE_SPACE_IDS"]
    assert [f.detail for f in duplicates] == ([] if detail is None else [detail])


@pytest.mark.parametrize(
    ("actual", "fires"),
    [
        (None, False),
        (ImageSize(1000, 800), False),
        (ImageSize(800, 1000), True),  # rotated
        (ImageSize(1001, 800), True),
        (ImageSize(1000, 799), True),
        (ImageSize(2000, 1600), True),  # same ratio, other scale
    ],
)
def test_image_size_mismatch(actual: ImageSize | None, fires: bool) -> None:
    assert fired(spaces_json(*complete()), actual) == (["IMAGE_SIZE_MISMATCH"] if fires else [])


@pytest.mark.parametrize(
    ("box", "fires"),
    [
        ((0, 0, 1000, 800), False),  # x_max == width_px, y_max == height_px
        ((999, 799, 1000, 800), False),
        ((0, 0, 1001, 800), True),
        ((0, 0, 1000, 801), True),
        ((10, 0, 10, 800), True),  # x_min == x_max
        ((0, 10, 1000, 10), True),  # y_min == y_max
        ((20, 0, 10, 800), True),
        ((0, 20, 1000, 10), True),
        ((1000, 0, 1001, 800), True),
    ],
)
def test_bbox_out_of_bounds_against_the_document_image(
    box: tuple[int, int, int, int], fires: bool
) -> None:
    bbox = dict(zip(("x_min", "y_min", "x_max", "y_max"), box, strict=True))
    document = spaces_json(*complete(space_json(bbox=bbox)))
    failures = document_failures(load(document), ImageSize(5000, 5000), DEFAULTS)
    boxes = [f for f in failures if f.rule == "BBOX_OUT_OF_BOUNDS"]
    assert [(f.space_id, f.severity) for f in boxes] == ([("S4", "medium")] if fires else [])


def test_bbox_out_of_bounds_gives_one_failure_per_space() -> None:
    outside = {"x_min": 0, "y_min": 0, "x_max": 2000, "y_max": 10}
    spaces = complete(space_json(bbox=outside), space_json(), space_json(bbox=outside))
    failures = document_failures(load(spaces_json(*spaces)), None, DEFAULTS)
    assert [f.space_id for f in failures if f.rule == "BBOX_OUT_OF_BOUNDS"] == ["S4", "S6"]


@pytest.mark.parametrize(
    ("confidences", "fires"),
    [
        ([0.49, 0.49, 0.9, 0.9], False),  # exactly half: passes
        ([0.49, 0.49, 0.49, 0.9], True),
        ([0.5, 0.5, 0.5, 0.5], False),  # 0.5 is not below 0.5
        ([0.4999, 0.4999, 0.4999, 0.5], True),
        ([0.1], True),  # a one-space plan is checked too
        ([0.9], False),
        ([0.0] * 51 + [1.0] * 49, True),  # 51%
        ([0.0] * 50 + [1.0] * 50, False),  # 50%
    ],
)
def test_low_confidence_ratio(confidences: list[float], fires: bool) -> None:
    spaces = [space_json(i, confidence=c) for i, c in enumerate(confidences, start=1)]
    document = spaces_json(*spaces, plan_type="commercial")
    assert ("LOW_CONFIDENCE_RATIO" in fired(document)) is fires


@pytest.mark.parametrize(
    ("marks", "fires"),
    [
        ([(True, "label_missing")] * 3 + [(False, None)] * 7, False),  # 3/10 is not above 0.3
        ([(True, "label_missing")] * 4 + [(False, None)] * 6, True),
        ([(True, "symbol_unclear")] * 2 + [(False, None)] * 4, True),  # 2/6
        # open_plan_boundary leaves the numerator, not the denominator: 2/6, not 2/2.
        ([(True, "other")] * 2 + [(True, "open_plan_boundary")] * 4, True),
        ([(True, "other")] + [(True, "open_plan_boundary")] * 3, False),  # 1/4
        ([(True, "open_plan_boundary")] * 5, False),
        ([(False, "label_missing")] * 5, False),  # only `ambiguous` decides
        ([(True, None)], True),  # one-space plan
    ],
)
def test_ambiguous_ratio(marks: list[tuple[bool, str | None]], fires: bool) -> None:
    spaces = [
        space_json(i, ambiguous=ambiguous, ambiguity_reason=reason)
        for i, (ambiguous, reason) in enumerate(marks, start=1)
    ]
    document = spaces_json(*spaces, plan_type="commercial")
    assert ("AMBIGUOUS_RATIO" in fired(document)) is fires


@pytest.mark.parametrize(
    ("space_type", "habitable"),
    [
        ("living_room", True),
        ("dining_room", True),
        ("kitchen", True),
        ("kitchen_dining_living", True),
        ("bedroom", True),
        ("studio_living_sleeping", True),
        ("study_office", True),
        ("recreation_media_gym", True),
        ("sunroom_conservatory", True),
        ("loft_mezzanine", True),
        ("bathroom", False),
        ("toilet_wc", False),
        ("hallway_corridor", False),
        ("balcony", False),
        ("open_workspace", False),
        ("meeting_room", False),
        ("other", False),
        ("unknown", False),
    ],
)
def test_habitable_without_furnishings(space_type: str, habitable: bool) -> None:
    spaces = complete(space_json(type=space_type, furnishings=[]))
    failures = document_failures(load(spaces_json(*spaces)), None, DEFAULTS)
    unfurnished = [f.space_id for f in failures if f.rule == "HABITABLE_WITHOUT_FURNISHINGS"]
    assert unfurnished == (["S4"] if habitable else [])


KITCHEN_SINK = {"item": "kitchen_sink", "count": 1, "source": "drawn_on_plan"}
INFERRED_FRIDGE = {"item": "refrigerator", "count": 1, "source": "inferred_from_room_type"}
BED = {"item": "bed_double", "count": 1, "source": "drawn_on_plan"}


@pytest.mark.parametrize(
    ("spaces", "missing"),
    [
        ([("kitchen", [], []), ("bedroom", [], []), ("bathroom", [], [])], []),
        ([("kitchen_dining_living", [], []), ("bedroom", [], []), ("bathroom", [], [])], []),
        ([("studio_living_sleeping", [KITCHEN_SINK], []), ("bathroom", [], [])], []),
        ([("studio_living_sleeping", [INFERRED_FRIDGE], []), ("bathroom", [], [])], []),
        ([("studio_living_sleeping", [SOFA, BED], []), ("bathroom", [], [])], ["kitchen"]),
        ([("kitchen", [], []), ("bedroom", [], []), ("toilet_wc", [], [])], ["bathroom"]),
        (
            [("kitchen", [], []), ("bedroom", [], []), ("toilet_wc", [], ["bathroom"])],
            ["bathroom"],
        ),
        (
            [("living_room", [], ["kitchen", "bedroom"]), ("bathroom", [], [])],
            ["kitchen", "bedroom"],
        ),
        (
            [("hallway_corridor", [], []), ("storage_pantry", [], [])],
            ["kitchen", "bedroom", "bathroom"],
        ),
        (
            [("dining_room", [KITCHEN_SINK], []), ("bedroom", [], []), ("bathroom", [], [])],
            ["kitchen"],
        ),
    ],
)
def test_missing_critical_space_one_failure_per_group(
    spaces: list[tuple[str, list[dict[str, Any]], list[str]]], missing: list[str]
) -> None:
    document = spaces_json(
        *(
            space_json(i, type=kind, furnishings=items or [SOFA], alternative_types=alternatives)
            for i, (kind, items, alternatives) in enumerate(spaces, start=1)
        )
    )
    failures = document_failures(load(document), None, DEFAULTS)
    critical = [f for f in failures if f.rule == "MISSING_CRITICAL_SPACE"]
    assert [f.detail for f in critical] == [
        f"no {group} in this residential floor plan" for group in missing
    ]
    assert all(f.severity == "high" and f.space_id is None for f in critical)


@pytest.mark.parametrize(
    ("document_type", "plan_type", "checked"),
    [
        ("single_floor_plan", "residential", True),
        ("multi_floor_plan_sheet", "residential", True),
        ("single_floor_plan", "commercial", False),
        ("single_floor_plan", "mixed", False),
        ("single_floor_plan", "unknown", False),
        ("site_plan", "residential", False),
    ],
)
def test_critical_spaces_are_checked_on_residential_floor_plans_only(
    document_type: str, plan_type: str, checked: bool
) -> None:
    spaces = [space_json(1, type="hallway_corridor"), space_json(2, type="storage_pantry")]
    document = spaces_json(*spaces, document_type=document_type, plan_type=plan_type)
    assert fired(document).count("MISSING_CRITICAL_SPACE") == (3 if checked else 0)


def test_a_document_that_is_not_a_floor_plan_still_gets_the_per_space_rules() -> None:
    outside = {"x_min": 0, "y_min": 0, "x_max": 1001, "y_max": 10}
    document = spaces_json(
        space_json(1, furnishings=[], bbox=outside),
        space_json(1, confidence=0.1, ambiguous=True),
        document_type="interior_render_or_photo",
    )
    assert fired(document, ImageSize(10, 10)) == [
        "NOT_A_FLOOR_PLAN",
        "DUPLICATE_SPACE_IDS",
        "IMAGE_SIZE_MISMATCH",
        "BBOX_OUT_OF_BOUNDS",
        "AMBIGUOUS_RATIO",
        "HABITABLE_WITHOUT_FURNISHINGS",
    ]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, []),
        ({"low_confidence_below": 0.95}, ["LOW_CONFIDENCE_RATIO"]),
        ({"max_low_confidence_share": 0.2}, ["LOW_CONFIDENCE_RATIO"]),
        ({"max_ambiguous_share": 0.2}, ["AMBIGUOUS_RATIO"]),
        ({"min_spaces": 5}, ["TOO_FEW_SPACES"]),
    ],
)
def test_thresholds_come_from_the_policy(policy: dict[str, Any], expected: list[str]) -> None:
    spaces = complete(space_json(confidence=0.4, ambiguous=True))  # 1/4 low, 1/4 ambiguous
    assert fired(spaces_json(*spaces), **policy) == expected


@pytest.mark.parametrize(
    "reason",
    ["not JSON: Expecting value: line 1 column 1 (char 0)", "fails spaces-v1: data must be object"],
)
def test_a_schema_violation_is_one_high_failure(reason: str) -> None:
    failures = evaluate_document(SchemaViolation(reason), ImageSize(1, 1), DEFAULTS)
    assert [(f.rule, f.severity, f.space_id, f.detail) for f in failures] == [
        ("SCHEMA_INVALID", "high", None, reason)
    ]
    assert failures[0].suggested_fix == SCHEMA_INVALID.fix


def test_a_valid_document_gets_the_document_rules() -> None:
    loaded = load(spaces_json(space_json(), plan_type="commercial"))
    assert rules_of(evaluate_document(loaded, None, DEFAULTS)) == ["TOO_FEW_SPACES"]


def test_request_mismatches_keep_their_severity_and_order() -> None:
    mismatches = [
        Mismatch("no study", "medium"),
        Mismatch("two bathrooms asked, one drawn", "high"),
        Mismatch("window wished in the kitchen", "low"),
    ]
    failures = request_failures(mismatches)
    assert [(f.rule, f.severity, f.detail) for f in failures] == [
        ("REQUEST_MISMATCH", "medium", "no study"),
        ("REQUEST_MISMATCH", "high", "two bathrooms asked, one drawn"),
        ("REQUEST_MISMATCH", "low", "window wished in the kitchen"),
    ]
    assert all(f.suggested_fix == REQUEST_MISMATCH.fix for f in failures)


def test_request_mismatch_has_no_severity_of_its_own() -> None:
    with pytest.raises(ValueError, match="REQUEST_MISMATCH needs the severity"):
        REQUEST_MISMATCH.failure("no severity")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request asks for 3 bedrooms, plan has 2", "request asks for 3 bedrooms, plan has 2"),
        ("", ""),
        ("x" * 500, "x" * 500),
        ("x" * 501, "x" * 499 + "…"),
        ("see https://example.com/plan.png", "(text withheld: it holds a URL or data URI)"),
        ("s3://bucket/key is missing", "(text withheld: it holds a URL or data URI)"),
        ("iVBORw0KGgoAAAANSUhEUgAA", "(text withheld: it holds base64-encoded binary data)"),
    ],
)
def test_clean_detail(text: str, expected: str) -> None:
    assert clean_detail(text) == expected
    assert Failure(rule="REQUEST_MISMATCH", severity="low", detail=clean_detail(text))
