"""The project's draft-07 copy of spaces-v1 accepts exactly what the 2020-12 original accepts.

Three proofs: the copy is the original with draft-07 names (nothing else changed); the original
uses only keywords that mean the same in both drafts; and on a corpus of documents (the contract
examples and thousands of mutations: missing keys, extra properties, wrong enums, numbers at and
past their bounds, wrong types, arrays past maxItems) fastjsonschema on the copy and jsonschema on
the original give the same verdict every time. The original and the examples are the project's
own copies (``tests.contract.copies``).
"""

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest
from jsonschema import Draft7Validator, Draft202012Validator, ValidationError

from planstream.domain.contracts import SPACES_SCHEMA, load_schema
from tests.contract.copies import EXAMPLES, ORIGINAL_SCHEMA

# Keywords whose meaning is the same in draft-07 and 2020-12 (as used: `items` with one schema,
# `exclusiveMinimum` with a number, `$ref` without siblings). Anything else needs a new translation.
SHARED_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "$ref",
        "$defs",
        "title",
        "description",
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "pattern",
        "anyOf",
    }
)
SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})  # name -> schema
SCHEMA_LISTS = frozenset({"anyOf"})
SCHEMA_VALUES = frozenset({"items", "additionalProperties"})

Json = Any
JsonPath = tuple[str | int, ...]
Accepts = Callable[[Json], bool]


@pytest.fixture(scope="module")
def original() -> dict[str, Json]:
    schema: dict[str, Json] = json.loads(ORIGINAL_SCHEMA.read_text("utf-8"))
    return schema


@pytest.fixture(scope="module")
def project_copy() -> dict[str, Json]:
    return load_schema(SPACES_SCHEMA)


def _ecma_pattern(
    validator: Any, pattern: str, instance: Json, schema: dict[str, Json]
) -> Iterator[ValidationError]:
    """2020-12 `pattern` as ECMA-262 reads it: `$` ends the input (Python's `$` also matches
    before a final newline, jsonschema's one deviation that matters for `^S[0-9]{1,3}$`)."""
    ecma = re.sub(r"(?<!\\)\$", r"\\Z", pattern)
    if validator.is_type(instance, "string") and not re.search(ecma, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@pytest.fixture(scope="module")
def reference(original: dict[str, Json]) -> Accepts:
    """jsonschema's 2020-12 validator on the original, with ECMA-262 `$` in patterns."""
    cls = jsonschema.validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
    validator = cls(original)
    return lambda document: bool(validator.is_valid(document))


@pytest.fixture(scope="module")
def candidate(project_copy: dict[str, Json]) -> Accepts:
    """fastjsonschema on the project's copy, as planstream.domain.spaces compiles it."""
    validate = fastjsonschema.compile(project_copy, use_default=False)

    def accepts(document: Json) -> bool:
        try:
            validate(document)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return accepts


def _draft07(node: Json) -> Json:
    """The documented translation: draft-07 `$schema`, `$defs` renamed `definitions`."""
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    renamed = {"$defs": "definitions"}
    result = {renamed.get(key, key): _draft07(value) for key, value in node.items()}
    if "$schema" in result:
        result["$schema"] = "http://json-schema.org/draft-07/schema#"
    if "$ref" in result:
        result["$ref"] = result["$ref"].replace("#/$defs/", "#/definitions/")
    return result


def _schemas(schema: Json) -> Iterator[dict[str, Json]]:
    """Every schema object inside ``schema``, itself included."""
    if not isinstance(schema, dict):
        return
    yield schema
    for keyword, value in schema.items():
        if keyword in SCHEMA_MAPS:
            for sub in value.values():
                yield from _schemas(sub)
        elif keyword in SCHEMA_LISTS:
            for sub in value:
                yield from _schemas(sub)
        elif keyword in SCHEMA_VALUES:
            yield from _schemas(value)


def test_the_copy_is_the_original_with_draft07_names(
    original: dict[str, Json], project_copy: dict[str, Json]
) -> None:
    assert project_copy == _draft07(original)


def test_the_original_uses_only_keywords_both_drafts_read_alike(original: dict[str, Json]) -> None:
    schemas = list(_schemas(original))
    assert {keyword for s in schemas for keyword in s} <= SHARED_KEYWORDS
    assert all(isinstance(s["items"], dict) for s in schemas if "items" in s)
    assert all(set(s) == {"$ref"} for s in schemas if "$ref" in s)
    assert all(
        isinstance(s[k], int | float) for s in schemas for k in ("exclusiveMinimum",) if k in s
    )


def test_both_schemas_are_valid_in_their_drafts(
    original: dict[str, Json], project_copy: dict[str, Json]
) -> None:
    Draft202012Validator.check_schema(original)
    Draft7Validator.check_schema(project_copy)


def test_plain_jsonschema_reads_dollar_the_python_way(
    original: dict[str, Json], candidate: Accepts
) -> None:
    """Why the reference patches `pattern`: unpatched, jsonschema accepts the id "S1\\n"."""
    document = _seed()
    document["spaces"][0]["id"] = "S1\n"
    assert Draft202012Validator(original).is_valid(document)
    assert not candidate(document)


def _seed() -> dict[str, Json]:
    """A small document that takes every branch: null and non-null optionals, every list filled."""
    space = {
        "id": "S1",
        "label_text": "KITCHEN",
        "dimensions_text": None,
        "bbox": {"x_min": 0, "y_min": 10, "x_max": 400, "y_max": 300},
        "furnishings": [{"item": "kitchen_sink", "count": 1, "source": "drawn_on_plan"}],
        "type": "kitchen",
        "alternative_types": ["kitchen_dining_living"],
        "ambiguous": True,
        "ambiguity_reason": "open_plan_boundary",
        "confidence": 0.5,
        "area": {"value": 9.5, "unit": "m2", "source": "printed_area"},
        "adjacent_space_ids": ["S2"],
    }
    other = {
        **copy.deepcopy(space),
        "id": "S2",
        "label_text": None,
        "type": "unknown",
        "ambiguity_reason": None,
        "area": {"value": None, "unit": None, "source": "none"},
    }
    return {
        "schema_version": "spaces-1.0",
        "document_type": "single_floor_plan",
        "plan_type": "residential",
        "image": {"width_px": 1000, "height_px": 800},
        "units": {"length_unit": "m", "area_unit": "m2"},
        "overall_confidence": 1,
        "spaces": [space, other],
        "extraction_notes": ["note"],
    }


PROBES: tuple[Json, ...] = (
    None,
    True,
    False,
    0,
    -0.0,
    1,
    -1,
    1e-9,
    0.5,
    1.0,
    1.0000001,
    1.5,
    2,
    10**20,
    "",
    "x",
    "S1",
    "S0",
    "S999",
    "S1000",
    "s1",
    "S1\n",
    " S1",
    "S\u0661",  # ARABIC-INDIC DIGIT ONE: [0-9] is ASCII only
    [],
    ["S1"],
    {},
    {"x": 1},
)
LENGTHS = (0, 3, 4, 20, 21, 40, 41, 150, 151)  # both sides of every maxItems


def _enum_probes(original: dict[str, Json]) -> tuple[str, ...]:
    """The first and last value of every enum, to try each where another enum is expected."""
    enums = [s["enum"] for s in _schemas(original) if "enum" in s]
    return tuple(sorted({value for enum in enums for value in (enum[0], enum[-1])}))


def _nodes(node: Json, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Json]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, (*path, index))


def _with(document: Json, path: JsonPath, change: Callable[[Json, Any], None]) -> Json:
    variant = copy.deepcopy(document)
    parent = variant
    for step in path[:-1]:
        parent = parent[step]
    change(parent, path[-1])
    return variant


def _variants(document: Json, strings: tuple[str, ...]) -> Iterator[tuple[str, Json]]:
    """The document, then one mutation at a time at every node."""
    yield "as is", document
    for probe in PROBES:
        yield f"document = {probe!r}", probe
    for path, node in _nodes(document):
        if path:
            leaf_probes = PROBES + strings if isinstance(node, str) else PROBES
            for probe in leaf_probes:
                yield f"{path} = {probe!r}", _with(document, path, _setter(probe))
        if isinstance(node, dict):
            for key in node:
                yield f"{path} without {key}", _with(document, (*path, key), _deleter)
            yield f"{path} + extra", _with(document, (*path, "extra"), _setter(None))
        if isinstance(node, list) and node and path:
            for length in LENGTHS:
                resized = [copy.deepcopy(node[0]) for _ in range(length)]
                yield f"{path} x {length}", _with(document, path, _setter(resized))


def _setter(value: Json) -> Callable[[Json, Any], None]:
    def change(parent: Json, key: Any) -> None:
        parent[key] = copy.deepcopy(value)

    return change


def _deleter(parent: Json, key: Any) -> None:
    del parent[key]


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def _example_document(path: Path) -> Json:
    data = json.loads(path.read_text("utf-8"))
    return data["spaces"] if path.name.startswith("decide-") else data


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.stem)
def test_copy_and_original_agree_on_the_contract_examples(
    path: Path, reference: Accepts, candidate: Accepts
) -> None:
    document = _example_document(path)
    assert candidate(document) is reference(document)


def test_copy_and_original_agree_on_every_mutation(
    original: dict[str, Json], reference: Accepts, candidate: Accepts
) -> None:
    verdicts = [
        (name, candidate(variant), reference(variant))
        for name, variant in _variants(_seed(), _enum_probes(original))
    ]
    disagreements = [(name, ours, theirs) for name, ours, theirs in verdicts if ours != theirs]
    assert disagreements == []
    accepted = sum(ours for _, ours, _ in verdicts)
    assert accepted >= 100, "the corpus must exercise acceptance, not only refusal"
    assert len(verdicts) - accepted >= 1000
