"""Room programs: which rooms a studio, an apartment or an office has, and what each holds."""

import random
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "FURNITURE_SIZES_M",
    "PROGRAM_NAMES",
    "Program",
    "RoomKind",
    "pick_program",
]

PlanType = Literal["residential", "commercial"]

FURNITURE_SIZES_M: Final[dict[str, tuple[float, float]]] = {
    "bed_double": (1.6, 2.0),
    "bed_single": (0.9, 2.0),
    "nightstand": (0.45, 0.4),
    "wardrobe": (1.2, 0.6),
    "desk": (1.4, 0.7),
    "office_chair": (0.6, 0.6),
    "sofa": (2.0, 0.9),
    "armchair": (0.85, 0.85),
    "coffee_table": (1.1, 0.6),
    "tv_media_unit": (1.6, 0.45),
    "dining_table": (1.6, 0.9),
    "kitchen_counter": (1.8, 0.6),
    "kitchen_sink": (0.8, 0.6),
    "stove_cooktop": (0.6, 0.6),
    "refrigerator": (0.7, 0.7),
    "toilet": (0.45, 0.7),
    "washbasin": (0.6, 0.45),
    "bathtub": (1.7, 0.75),
    "shower": (0.9, 0.9),
    "washing_machine": (0.6, 0.6),
    "conference_table": (1.8, 1.0),
    "reception_desk": (2.0, 0.8),
    "shelving": (1.8, 0.45),
    "built_in_closet": (1.2, 0.6),
}
"""Each symbol's footprint in metres: length along the wall it stands at, then depth."""


@dataclass(frozen=True)
class RoomKind:
    """One room of a program: its spaces-v1 type, printed label, share of the area, furniture."""

    type: str
    label: str
    weight: float
    furniture: tuple[str, ...]


@dataclass(frozen=True)
class Program:
    """A plan's brief: its name, plan type, rooms and the user's words asking for it."""

    name: str
    plan_type: PlanType
    rooms: tuple[RoomKind, ...]
    request_text: str


_HALL: Final = RoomKind("hallway_corridor", "HALL", 1.3, ("built_in_closet",))
_BATH_TUB: Final = RoomKind("bathroom", "BATHROOM", 1.4, ("bathtub", "toilet", "washbasin"))
_BATH_SHOWER: Final = RoomKind("bathroom", "BATHROOM", 1.2, ("shower", "toilet", "washbasin"))
_WC: Final = RoomKind("toilet_wc", "WC", 0.9, ("toilet", "washbasin"))
_KITCHEN: Final = RoomKind(
    "kitchen", "KITCHEN", 1.8, ("kitchen_counter", "stove_cooktop", "refrigerator", "kitchen_sink")
)
_LIVING: Final = RoomKind(
    "living_room", "LIVING", 3.5, ("sofa", "coffee_table", "tv_media_unit", "armchair")
)
_OPEN_KITCHEN: Final = RoomKind(
    "kitchen_dining_living",
    "KITCHEN / LIVING",
    5.0,
    ("kitchen_counter", "stove_cooktop", "refrigerator", "sofa", "dining_table", "coffee_table"),
)
_NUMBERS: Final = ("no", "one", "two", "three", "four", "five")
"""Counts as a user writes them; the comparison reads digits and one..five."""
PROGRAM_NAMES: Final = ("studio", "1-bedroom", "2-bedroom", "3-bedroom", "office")


def _bedrooms(count: int) -> tuple[RoomKind, ...]:
    if count == 1:
        return (RoomKind("bedroom", "BEDROOM", 2.8, ("bed_double", "wardrobe", "nightstand")),)
    master = RoomKind("bedroom", "BEDROOM 1", 2.8, ("bed_double", "wardrobe", "nightstand"))
    others = tuple(
        RoomKind("bedroom", f"BEDROOM {n}", 2.2, ("bed_single", "wardrobe", "desk"))
        for n in range(2, count + 1)
    )
    return (master, *others)


def _plural(count: int, noun: str, *, digits: bool = False) -> str:
    """``two bedrooms``, or ``2 bedrooms`` with ``digits``."""
    number = str(count) if digits else _NUMBERS[count]
    return f"{number} {noun}{'' if count == 1 else 's'}"


def _studio(rng: random.Random) -> Program:
    studio = RoomKind(
        "studio_living_sleeping",
        "STUDIO",
        5.0,
        ("bed_double", "sofa", "kitchen_counter", "stove_cooktop", "refrigerator"),
    )
    rooms = (studio, rng.choice((_BATH_SHOWER, _BATH_TUB)), _HALL)
    text = rng.choice(
        (
            "A studio with one bathroom and a kitchenette.",
            "Studio flat: one bathroom, sleeping and cooking in the main room.",
        )
    )
    return Program("studio", "residential", rooms, text)


def _apartment(rng: random.Random, bedrooms: int) -> Program:
    open_kitchen = rng.random() < 0.5
    kitchen = (_OPEN_KITCHEN,) if open_kitchen else (_LIVING, _KITCHEN)
    baths: tuple[RoomKind, ...] = (rng.choice((_BATH_TUB, _BATH_SHOWER)),)
    if bedrooms == 3:
        baths = (_BATH_TUB, RoomKind("bathroom", "BATHROOM 2", 1.1, _BATH_SHOWER.furniture))
    extra = (_WC,) if bedrooms >= 2 and rng.random() < 0.6 else ()
    rooms = (*kitchen, *_bedrooms(bedrooms), *baths, *extra, _HALL)
    kitchen_words = "an open kitchen" if open_kitchen else "a separate kitchen"
    beds, bath_words = _plural(bedrooms, "bedroom"), _plural(len(baths), "bathroom")
    text = rng.choice(
        (
            f"{beds.capitalize()}, {bath_words}, {kitchen_words}.",
            f"I am looking for {beds} and {bath_words} with {kitchen_words}.",
            f"{_plural(bedrooms, 'bedroom', digits=True)}, "
            f"{_plural(len(baths), 'bathroom', digits=True)} and {kitchen_words}, please.",
        )
    )
    return Program(f"{bedrooms}-bedroom", "residential", rooms, text)


def _office(rng: random.Random) -> Program:
    meetings = rng.randint(1, 3)
    rooms = (
        RoomKind(
            "open_workspace", "OPEN WORKSPACE", 8.0, ("desk", "desk", "desk", "desk", "shelving")
        ),
        *(
            RoomKind("meeting_room", f"MEETING {n}", 2.0, ("conference_table",))
            for n in range(1, meetings + 1)
        ),
        RoomKind("reception_lobby", "RECEPTION", 2.2, ("reception_desk", "sofa")),
        RoomKind("toilet_wc", "WC", 0.9, ("toilet", "washbasin")),
        RoomKind("storage_pantry", "STORAGE", 0.9, ("shelving",)),
        _HALL,
    )
    text = f"An office with an open workspace, {_plural(meetings, 'meeting room')} and a reception."
    return Program("office", "commercial", rooms, text)


def pick_program(rng: random.Random, *, residential_only: bool = False) -> Program:
    """A program drawn from ``rng``: a studio, a 1-3 bedroom apartment or an office."""
    names = PROGRAM_NAMES[:-1] if residential_only else PROGRAM_NAMES
    name = rng.choice(names)
    if name == "studio":
        return _studio(rng)
    if name == "office":
        return _office(rng)
    return _apartment(rng, int(name[0]))
