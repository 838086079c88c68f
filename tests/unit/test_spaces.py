"""Strict JSON, the spaces-v1 check and the typed view of a Spaces document."""

import copy
import json
from typing import Any

import pytest

from planstream.domain.spaces import (
    CRITICAL_GROUPS,
    HABITABLE_TYPES,
    BBox,
    CriticalGroup,
    Furnishing,
    ImageSize,
    JsonRejected,
    SchemaViolation,
    Space,
    SpacesDocument,
    load_spaces,
    parse_json,
)
from tests.factories import make_space, space_json, spaces_json

DOCUMENT: dict[str, Any] = spaces_json(
    space_json(
        label_text="Wohnen/Schlafen",
        dimensions_text="5,80 x 4,10",
        bbox={"x_min": 10, "y_min": 20, "x_max": 300.0, "y_max": 400},
        furnishings=[{"item": "sofa", "count": 2, "source": "drawn_on_plan"}],
        type="studio_living_sleeping",
        alternative_types=["kitchen_dining_living"],
        ambiguous=True,
        ambiguity_reason="open_plan_boundary",
        confidence=1,
        area={"value": 23.78, "unit": "m2", "source": "printed_area"},
    )
)
TEXT = json.dumps(DOCUMENT)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": [1, 2.5, true, null, "x"]}', {"a": [1, 2.5, True, None, "x"]}),
        ('  \n{"a": 1}\n  ', {"a": 1}),  # whitespace is part of JSON
        ("[]", []),
        ('"text"', "text"),
        ("1e308", 1e308),
        (b'{"a": "\xc3\xa9"}', {"a": "é"}),
    ],
)
def test_parse_json_reads_one_json_value(text: str | bytes, value: object) -> None:
    assert parse_json(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('```json\n{"a": 1}\n```', "Expecting value"),
        ('Here is the JSON: {"a": 1}', "Expecting value"),
        ('{"a": 1} Hope this helps!', "Extra data"),
        ('{"a": 1}{"a": 2}', "Extra data"),
        ('{"a": NaN}', "NaN is not a JSON value"),
        ('{"a": Infinity}', "Infinity is not a JSON value"),
        ('{"a": -Infinity}', "-Infinity is not a JSON value"),
        ('{"a": 1e400}', "1e400 is out of range"),
        ('{"a": 1, "a": 2}', "key 'a' appears twice"),
        ("{'a': 1}", "double quotes"),
        ('{"a": 1,}', "double quotes"),
        ("", "Expecting value"),
        ("\ufeff{}", "BOM"),
        ("[" * 100_000 + "]" * 100_000, "recursion"),
        ("1" * 5_000, "digits"),
        (b'{"a": "\xff"}', "utf-8"),
    ],
)
def test_parse_json_refuses_everything_else(text: str | bytes, reason: str) -> None:
    with pytest.raises(JsonRejected, match=f"(?i){reason}"):
        parse_json(text)


@pytest.mark.parametrize("raw", [DOCUMENT, TEXT, TEXT.encode(), f"\n{TEXT}\n"])
def test_load_spaces_reads_objects_text_and_bytes_alike(raw: object) -> None:
    assert load_spaces(raw) == SpacesDocument(
        document_type="single_floor_plan",
        plan_type="residential",
        image=ImageSize(1000, 800),
        spaces=(
            Space(
                id="S1",
                type="studio_living_sleeping",
                alternative_types=("kitchen_dining_living",),
                furnishings=(Furnishing("sofa", 2, "drawn_on_plan"),),
                bbox=BBox(10, 20, 300, 400),
                ambiguous=True,
                ambiguity_reason="open_plan_boundary",
                confidence=1.0,
            ),
        ),
    )


def test_integers_written_as_floats_become_ints() -> None:
    loaded = load_spaces(DOCUMENT)
    assert isinstance(loaded, SpacesDocument)
    assert type(loaded.spaces[0].bbox.x_max) is int
    assert type(loaded.spaces[0].confidence) is float


def test_load_spaces_leaves_its_input_alone() -> None:
    raw = copy.deepcopy(DOCUMENT)
    load_spaces(raw)
    assert raw == DOCUMENT


def _changed(path: str, value: object) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    *parents, last = path.split(".")
    node: Any = document
    for step in parents:
        node = node[int(step)] if step.isdigit() else node[step]
    node[last] = value
    return document


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (f"```json\n{TEXT}\n```", "not JSON: Expecting value: line 1 column 1"),
        (f"Sure! {TEXT}", "not JSON: Expecting value"),
        (TEXT.replace('"confidence": 1', '"confidence": NaN'), "not JSON: NaN is not a JSON value"),
        (TEXT[:200], "not JSON: "),
        ("", "not JSON: "),
        ("null", "fails spaces-v1: data must be object"),
        (json.dumps(TEXT), "fails spaces-v1: data must be object"),  # a string in a string
        (None, "fails spaces-v1: data must be object"),
        (42, "fails spaces-v1: data must be object"),
        ([DOCUMENT], "fails spaces-v1: data must be object"),
        (True, "fails spaces-v1: data must be object"),
        ({**DOCUMENT, "extra": 1}, "fails spaces-v1: data must not contain {'extra'} properties"),
        (_changed("spaces.0.id", "S1\n"), "fails spaces-v1: data.spaces[0].id must match pattern"),
        (_changed("spaces.0.id", "S1000"), "fails spaces-v1: data.spaces[0].id must match pattern"),
        (_changed("spaces.0.confidence", 1.01), "data.spaces[0].confidence must be smaller"),
        (_changed("spaces.0.type", "garden"), "data.spaces[0].type must be one of"),
        (_changed("image.width_px", 0), "data.image.width_px must be bigger than or equal to 1"),
        (_changed("image.width_px", 1.5), "data.image.width_px must be integer"),
        (_changed("spaces.0.ambiguous", 1), "data.spaces[0].ambiguous must be boolean"),
        # Values no JSON text can hold, handed over as Python objects:
        (
            _changed("spaces.0.confidence", float("nan")),
            "not JSON: data.spaces[0].confidence is nan",
        ),
        (
            _changed("spaces.0.area.value", float("inf")),
            "not JSON: data.spaces[0].area.value is inf",
        ),
        (_changed("extraction_notes", ()), "not JSON: data.extraction_notes is a tuple"),
    ],
)
def test_load_spaces_explains_what_is_not_a_document(raw: object, reason: str) -> None:
    loaded = load_spaces(raw)
    assert isinstance(loaded, SchemaViolation)
    assert reason in loaded.reason


@pytest.mark.parametrize(
    ("box", "fits"),
    [
        (BBox(0, 0, 1000, 800), True),
        (BBox(999, 799, 1000, 800), True),
        (BBox(0, 0, 1001, 800), False),
        (BBox(0, 0, 1000, 801), False),
        (BBox(5, 0, 5, 800), False),
        (BBox(0, 5, 1000, 5), False),
        (BBox(6, 0, 5, 800), False),
    ],
)
def test_bbox_fits(box: BBox, fits: bool) -> None:
    assert box.fits(ImageSize(1000, 800)) is fits


def _space(space_type: str, *items: str, alternatives: tuple[str, ...] = ()) -> Space:
    furnishings = tuple(Furnishing(item, 1, "inferred_from_room_type") for item in items)
    return make_space(1, space_type, alternative_types=alternatives, furnishings=furnishings)


@pytest.mark.parametrize(
    ("space", "groups"),
    [
        (_space("kitchen"), {"kitchen"}),
        (_space("kitchen_dining_living"), {"kitchen"}),
        (_space("bedroom"), {"bedroom"}),
        (_space("studio_living_sleeping"), {"bedroom"}),
        (_space("studio_living_sleeping", "sofa", "bed_double"), {"bedroom"}),
        (_space("studio_living_sleeping", "kitchen_counter"), {"kitchen", "bedroom"}),
        (_space("studio_living_sleeping", "kitchen_island"), {"kitchen", "bedroom"}),
        (_space("studio_living_sleeping", "kitchen_sink"), {"kitchen", "bedroom"}),
        (_space("studio_living_sleeping", "stove_cooktop"), {"kitchen", "bedroom"}),
        (_space("studio_living_sleeping", "refrigerator"), {"kitchen", "bedroom"}),
        (_space("studio_living_sleeping", "dishwasher"), {"kitchen", "bedroom"}),
        (_space("living_room", "kitchen_sink"), set()),
        (_space("bathroom"), {"bathroom"}),
        (_space("toilet_wc", "toilet", "shower"), set()),
        (_space("toilet_wc", alternatives=("bathroom",)), set()),
        (_space("other", alternatives=("kitchen", "bedroom", "bathroom")), set()),
    ],
)
def test_critical_groups_count_the_type_only(space: Space, groups: set[CriticalGroup]) -> None:
    assert {group for group in CRITICAL_GROUPS if space.counts_for(group)} == groups


def test_the_habitable_types_are_those_of_rules_md() -> None:
    assert sorted(HABITABLE_TYPES) == [
        "bedroom",
        "dining_room",
        "kitchen",
        "kitchen_dining_living",
        "living_room",
        "loft_mezzanine",
        "recreation_media_gym",
        "studio_living_sleeping",
        "study_office",
        "sunroom_conservatory",
    ]
    assert _space("bedroom").is_habitable
    assert not _space("toilet_wc").is_habitable
