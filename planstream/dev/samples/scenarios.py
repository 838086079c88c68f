"""Scenarios: how the scripted server answers a sample's extraction calls, and what follows.

Each scenario's ``expected`` outcome assumes the decision rules of RULES.md and that every
extraction call of a step, failed or not, counts as one attempt of the step's retry budget.
"""

from dataclasses import dataclass
from typing import Final, Literal, get_args

from planstream.domain.errors import PermanentError
from planstream.domain.rules import NOT_A_FLOOR_PLAN, RETRY_BUDGET_EXHAUSTED

__all__ = [
    "DEFAULT_EXTRA_CORRECT",
    "SCENARIOS",
    "Expectation",
    "SamplesRequestInvalid",
    "Scenario",
    "expectation",
    "parse_scenarios",
    "scenario_sequence",
]

Scenario = Literal[
    "correct",
    "flawed_then_correct",
    "hallucinated_room",
    "missing_room",
    "low_confidence",
    "not_a_floor_plan",
    "invalid_json",
    "length",
    "rate_limited",
    "server_error",
    "hang",
]
SCENARIOS: Final[tuple[Scenario, ...]] = get_args(Scenario)
_BY_NAME: Final[dict[str, Scenario]] = {scenario: scenario for scenario in SCENARIOS}
DEFAULT_EXTRA_CORRECT: Final = 5
"""How many more ``correct`` plans a default run adds after one sample of each scenario."""


class SamplesRequestInvalid(PermanentError):
    """Samples that cannot be made: an unknown scenario, or fewer samples than scenarios asked."""


@dataclass(frozen=True)
class Expectation:
    """How a run of the sample ends, and how many extraction calls step 0 takes."""

    outcome: Literal["completed", "blocked"]
    block_reason: str | None
    step0_attempts: int


def expectation(scenario: Scenario, max_attempts: int) -> Expectation:
    """The outcome the decision rules give ``scenario`` with a budget of ``max_attempts``."""
    match scenario:
        case "correct":
            return Expectation("completed", None, 1)
        case (
            "flawed_then_correct"
            | "hallucinated_room"
            | "length"
            | "rate_limited"
            | "server_error"
            | "hang"
        ):
            return Expectation("completed", None, 2)
        case "missing_room" | "low_confidence" | "invalid_json":
            return Expectation("blocked", RETRY_BUDGET_EXHAUSTED, max_attempts)
        case "not_a_floor_plan":
            return Expectation("blocked", NOT_A_FLOOR_PLAN.name, 1)


def parse_scenarios(text: str) -> tuple[Scenario, ...]:
    """Scenario names from a comma-separated list, e.g. ``correct,hang``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _BY_NAME]
    if unknown or not names:
        raise SamplesRequestInvalid(
            f"unknown scenario {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    return tuple(_BY_NAME[name] for name in names)


def scenario_sequence(
    count: int | None, picked: tuple[Scenario, ...] | None
) -> tuple[Scenario, ...]:
    """One sample per picked scenario (all by default), then more up to ``count``.

    The extra samples are ``correct`` when it is among the picked ones, else the picked ones
    again in turn. Without ``count``: every scenario plus DEFAULT_EXTRA_CORRECT, or each picked
    scenario once.
    """
    chosen = picked or SCENARIOS
    if count is None:
        count = len(chosen) + (0 if picked else DEFAULT_EXTRA_CORRECT)
    if count < len(chosen):
        raise SamplesRequestInvalid(
            f"--count {count} is fewer than the {len(chosen)} scenarios asked"
        )
    filler: tuple[Scenario, ...] = ("correct",) if "correct" in chosen else chosen
    extra = tuple(filler[i % len(filler)] for i in range(count - len(chosen)))
    return (*chosen, *extra)
