"""Which path runs a step: planstream's services (``new``) or the old ``run-pipeline-step``
function (``legacy``), and the flags an operator sets to choose.

The flags are ``use_new_pipeline`` and one route per step 0-6. ``use_new_pipeline = false`` is
the rollback switch: it sends every step to the old function whatever its route. By default
every step is new. Pure: flags in, a route out; the flags' storage, history and cache are the
adapters' and the services' (``planstream.ports.Routes``, ``planstream.services.routing``).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

from planstream.domain.errors import PermanentError
from planstream.domain.guards import find_smuggling
from planstream.domain.steps import LAST_STEP

__all__ = [
    "DEFAULT_FLAGS",
    "FLAG_NAMES",
    "MAX_REASON_CHARS",
    "ROUTES",
    "STEPS",
    "USE_NEW_PIPELINE",
    "FlagChange",
    "FlagRefused",
    "Flags",
    "Route",
    "check_operator",
    "check_reason",
    "check_updates",
    "parse_assignment",
    "parse_steps",
    "route_flag",
    "route_of",
    "route_updates",
]

Route = Literal["new", "legacy"]
ROUTES: Final[tuple[Route, ...]] = get_args(Route)
STEPS: Final = tuple(range(LAST_STEP + 1))
USE_NEW_PIPELINE: Final = "use_new_pipeline"
MAX_REASON_CHARS: Final = 500
_OPERATOR: Final = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_STEP_RANGE: Final = re.compile(r"^(\d)(?:-(\d))?$")
_BOOLEAN: Final = {"true": True, "false": False}
_ALL_NEW: Final[tuple[Route, ...]] = tuple("new" for _ in STEPS)


class FlagRefused(PermanentError):
    """A flag change names no flag, a value the flag cannot take, or an unusable operator or
    reason; nothing was changed."""


def route_flag(step_id: int) -> str:
    """The name of step ``step_id``'s route flag (``route.step3``)."""
    if step_id not in STEPS:
        raise FlagRefused(f"step {step_id} is not a step: steps are 0-{LAST_STEP}")
    return f"route.step{step_id}"


FLAG_NAMES: Final = (USE_NEW_PIPELINE, *(route_flag(step) for step in STEPS))
"""Every flag, in the order ``planstream flags show`` lists them."""


@dataclass(frozen=True)
class Flags:
    """The flags as read at one moment."""

    use_new_pipeline: bool = True
    routes: tuple[Route, ...] = _ALL_NEW

    def __post_init__(self) -> None:
        if len(self.routes) != len(STEPS) or any(r not in ROUTES for r in self.routes):
            raise FlagRefused(f"flags need one route (new or legacy) per step, got {self.routes}")

    def values(self) -> dict[str, str]:
        """Every flag's value as stored: ``true``/``false``, ``new``/``legacy``."""
        values = {USE_NEW_PIPELINE: "true" if self.use_new_pipeline else "false"}
        values.update({route_flag(step): route for step, route in enumerate(self.routes)})
        return values

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> "Flags":
        """The flags stored as ``values``; a missing flag has its default, a bad one is refused."""
        defaults = DEFAULT_FLAGS.values()
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise FlagRefused(f"no such flag: {', '.join(unknown)}")
        merged = {**defaults, **values}
        for name, value in merged.items():
            _check_value(name, value)
        routes = tuple(_as_route(merged[route_flag(step)]) for step in STEPS)
        return cls(_BOOLEAN[merged[USE_NEW_PIPELINE]], routes)


DEFAULT_FLAGS: Final = Flags()
"""Every step on the new path."""


@dataclass(frozen=True)
class FlagChange:
    """One row of the flags' history: which flag went from what to what, who, when and why."""

    flag: str
    old: str
    new: str
    operator: str
    reason: str
    changed_at: datetime


def route_of(flags: Flags, step_id: int) -> Route:
    """The path step ``step_id`` is requested on: legacy for every step while
    ``use_new_pipeline`` is false (the rollback switch), else the step's own route."""
    if not flags.use_new_pipeline:
        return "legacy"
    return flags.routes[step_id]


def _as_route(value: str) -> Route:
    for route in ROUTES:
        if value == route:
            return route
    raise FlagRefused(f"{value!r} is no route: new or legacy")


def _check_value(name: str, value: str) -> None:
    if name == USE_NEW_PIPELINE:
        if value not in _BOOLEAN:
            raise FlagRefused(f"{USE_NEW_PIPELINE} is true or false, not {value!r}")
    elif name in FLAG_NAMES:
        _as_route(value)
    else:
        raise FlagRefused(f"no such flag: {name!r}")


def check_updates(updates: Mapping[str, str]) -> dict[str, str]:
    """``updates`` when every name is a flag and every value one it can take; else refused."""
    if not updates:
        raise FlagRefused("no flag to change")
    for name, value in updates.items():
        _check_value(name, value)
    return dict(updates)


def parse_assignment(text: str) -> dict[str, str]:
    """``use_new_pipeline=false`` (or ``route.step3=legacy``) as the update it asks for."""
    name, sign, value = text.partition("=")
    if not sign:
        raise FlagRefused(f"expected FLAG=VALUE, e.g. {USE_NEW_PIPELINE}=false; got {text!r}")
    return check_updates({name.strip(): value.strip().lower()})


def parse_steps(text: str) -> tuple[int, ...]:
    """``1-6``, ``0`` or ``0,2,4-6`` as the steps it names, in order, each once."""
    steps: set[int] = set()
    for part in text.split(","):
        match = _STEP_RANGE.fullmatch(part.strip())
        if match is None:
            raise FlagRefused(f"steps are N, N-M or a comma-separated list of them; got {text!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first or last > LAST_STEP:
            raise FlagRefused(f"{part.strip()!r} is not a range of steps 0-{LAST_STEP}")
        steps.update(range(first, last + 1))
    return tuple(sorted(steps))


def route_updates(steps: tuple[int, ...], route: str) -> dict[str, str]:
    """The update that routes ``steps`` to ``route``."""
    return check_updates({route_flag(step): _as_route(route) for step in steps})


def check_operator(operator: str) -> str:
    """Who changes a flag: a login name (letters, digits, ``._@-``, up to 64)."""
    if not _OPERATOR.fullmatch(operator):
        raise FlagRefused(f"operator must match {_OPERATOR.pattern}")
    return operator


def check_reason(reason: str) -> str:
    """Why a flag changes: required, at most 500 characters, no smuggled data (it is kept)."""
    text = " ".join(reason.split())
    if not text:
        raise FlagRefused("a reason is required: it goes to the flags' history")
    if len(text) > MAX_REASON_CHARS:
        raise FlagRefused(f"the reason is over {MAX_REASON_CHARS} characters")
    problem = find_smuggling(text)
    if problem is not None:
        raise FlagRefused(f"the reason {problem}")
    return text
