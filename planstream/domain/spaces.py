"""The Spaces contract: strict JSON, the spaces-v1 schema, the space taxonomy, and a typed view."""

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn, assert_never

import fastjsonschema

from planstream.domain.contracts import SPACES_SCHEMA, load_schema
from planstream.domain.errors import PermanentError

__all__ = [
    "CRITICAL_GROUPS",
    "FLOOR_PLAN_TYPES",
    "HABITABLE_TYPES",
    "KITCHEN_FIXTURES",
    "SPACES_VERSION",
    "BBox",
    "CriticalGroup",
    "Furnishing",
    "ImageSize",
    "JsonRejected",
    "SchemaViolation",
    "Space",
    "SpacesDocument",
    "load_spaces",
    "parse_json",
]


SPACES_VERSION: Final = "spaces-1.0"
FLOOR_PLAN_TYPES: Final = frozenset({"single_floor_plan", "multi_floor_plan_sheet"})
HABITABLE_TYPES: Final = frozenset(
    {
        "living_room",
        "dining_room",
        "kitchen",
        "kitchen_dining_living",
        "bedroom",
        "studio_living_sleeping",
        "study_office",
        "recreation_media_gym",
        "sunroom_conservatory",
        "loft_mezzanine",
    }
)
"""Spaces for living, sleeping, eating or cooking (the IRC's habitable space)."""
KITCHEN_FIXTURES: Final = frozenset(
    {
        "kitchen_counter",
        "kitchen_island",
        "kitchen_sink",
        "stove_cooktop",
        "refrigerator",
        "dishwasher",
    }
)
"""Furnishings that make a studio count as a kitchen, drawn or inferred."""
CriticalGroup = Literal["kitchen", "bedroom", "bathroom"]
CRITICAL_GROUPS: Final[tuple[CriticalGroup, ...]] = ("kitchen", "bedroom", "bathroom")


class JsonRejected(PermanentError):
    """The text is not strict JSON: one value, no NaN or Infinity, no repeated key."""


@dataclass(frozen=True)
class ImageSize:
    """An image's size in pixels, as the document states it or as Image I/O measured it."""

    width_px: int
    height_px: int


@dataclass(frozen=True)
class BBox:
    """A space's box in image pixels, origin top-left."""

    x_min: int
    y_min: int
    x_max: int
    y_max: int

    def fits(self, image: ImageSize) -> bool:
        """Whether the box is well formed and inside ``image``: ``x_min < x_max <= width_px``."""
        return (
            self.x_min < self.x_max <= image.width_px and self.y_min < self.y_max <= image.height_px
        )


@dataclass(frozen=True)
class Furnishing:
    """One kind of fixture or furniture in a space, drawn on the plan or inferred."""

    item: str
    count: int
    source: str


@dataclass(frozen=True)
class Space:
    """The facts about one space that the rules read."""

    id: str
    type: str
    alternative_types: tuple[str, ...]
    furnishings: tuple[Furnishing, ...]
    bbox: BBox
    ambiguous: bool
    ambiguity_reason: str | None
    confidence: float

    @property
    def is_habitable(self) -> bool:
        """Whether the space's type is habitable (living, sleeping, eating, cooking)."""
        return self.type in HABITABLE_TYPES

    def counts_for(self, group: CriticalGroup) -> bool:
        """Whether the space satisfies a critical group; ``alternative_types`` never do."""
        match group:
            case "kitchen":
                return self.type in {"kitchen", "kitchen_dining_living"} or (
                    self.type == "studio_living_sleeping"
                    and any(f.item in KITCHEN_FIXTURES for f in self.furnishings)
                )
            case "bedroom":
                return self.type in {"bedroom", "studio_living_sleeping"}
            case "bathroom":
                return self.type == "bathroom"
            case _:
                assert_never(group)


@dataclass(frozen=True)
class SpacesDocument:
    """A Spaces document that passed spaces-v1, reduced to what the rules read."""

    document_type: str
    plan_type: str
    image: ImageSize
    spaces: tuple[Space, ...]

    @property
    def is_floor_plan(self) -> bool:
        """Whether the image is a floor plan (one floor, or a sheet of several)."""
        return self.document_type in FLOOR_PLAN_TYPES


@dataclass(frozen=True)
class SchemaViolation:
    """Why the Info Worker's output is not a spaces-v1 document (becomes SCHEMA_INVALID)."""

    reason: str


def _refuse_constant(name: str) -> NoReturn:
    raise JsonRejected(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected(f"{text} is out of range for a JSON number")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonRejected(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def parse_json(text: str | bytes) -> object:
    """The one JSON value in ``text``; anything else (a fence, prose, NaN) raises JsonRejected."""
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, a 5,000-digit int
        raise JsonRejected(str(exc) or type(exc).__name__) from exc


@functools.cache
def _validator() -> Callable[[object], Any]:
    """spaces-v1 compiled once per process; the generated code is pure and returns its input."""
    compiled: Callable[[object], Any] = fastjsonschema.compile(
        load_schema(SPACES_SCHEMA), use_default=False
    )
    return compiled


def _foreign_value(value: object, path: str) -> str | None:
    """Where ``value`` holds something JSON cannot (NaN, a tuple, a set), or None."""
    match value:
        case None | bool() | int() | str():
            return None
        case float():
            return None if math.isfinite(value) else f"{path} is {value}, not a JSON number"
        case list():
            found = (_foreign_value(item, f"{path}[{i}]") for i, item in enumerate(value))
            return next((problem for problem in found if problem), None)
        case dict():
            found = (_foreign_value(item, f"{path}.{key}") for key, item in value.items())
            return next((problem for problem in found if problem), None)
        case _:
            return f"{path} is a {type(value).__name__}, not a JSON value"


def load_spaces(raw: object) -> SpacesDocument | SchemaViolation:
    """The document in ``raw`` (JSON text, or an already decoded JSON value), or why it is not one.

    Text is parsed strictly (``parse_json``), then the value is checked against spaces-v1.
    """
    value = raw
    if isinstance(raw, str | bytes):
        try:
            value = parse_json(raw)
        except JsonRejected as exc:
            return SchemaViolation(f"not JSON: {exc}")
    try:
        document: Mapping[str, Any] = _validator()(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        return SchemaViolation(f"fails spaces-v1: {exc.message}")
    foreign = _foreign_value(document, "data")
    if foreign is not None:
        return SchemaViolation(f"not JSON: {foreign}")
    return _document(document)


def _document(data: Mapping[str, Any]) -> SpacesDocument:
    """The typed view of a validated document: spaces-v1 guarantees every key and type read."""
    image = data["image"]
    return SpacesDocument(
        document_type=data["document_type"],
        plan_type=data["plan_type"],
        image=ImageSize(int(image["width_px"]), int(image["height_px"])),
        spaces=tuple(_space(space) for space in data["spaces"]),
    )


def _space(data: Mapping[str, Any]) -> Space:
    box = data["bbox"]
    return Space(
        id=data["id"],
        type=data["type"],
        alternative_types=tuple(data["alternative_types"]),
        furnishings=tuple(
            Furnishing(item["item"], int(item["count"]), item["source"])
            for item in data["furnishings"]
        ),
        # spaces-v1 integers may be written 1.0; the rules compare whole pixels.
        bbox=BBox(int(box["x_min"]), int(box["y_min"]), int(box["x_max"]), int(box["y_max"])),
        ambiguous=data["ambiguous"],
        ambiguity_reason=data["ambiguity_reason"],
        confidence=float(data["confidence"]),
    )
