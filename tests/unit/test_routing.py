"""The routing decision and the flags' parsing as tables: use_new_pipeline overrides every
route, the default is all new, and every operator input is checked before anything changes;
the old function's HTTP statuses as codes."""

import pytest

from planstream.domain.legacy import CODES, RETRYABLE, code_of
from planstream.domain.routing import (
    DEFAULT_FLAGS,
    FLAG_NAMES,
    FlagRefused,
    Flags,
    check_operator,
    check_reason,
    parse_assignment,
    parse_steps,
    route_flag,
    route_of,
    route_updates,
)

NEW, LEGACY = "new", "legacy"
STEPS_1_6_LEGACY = Flags(True, (NEW, LEGACY, LEGACY, LEGACY, LEGACY, LEGACY, LEGACY))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (DEFAULT_FLAGS, [NEW] * 7),
        (Flags(use_new_pipeline=False), [LEGACY] * 7),
        (STEPS_1_6_LEGACY, [NEW] + [LEGACY] * 6),
        (Flags(False, STEPS_1_6_LEGACY.routes), [LEGACY] * 7),
        (Flags(True, (LEGACY,) * 7), [LEGACY] * 7),
        (Flags(True, (LEGACY, NEW, NEW, NEW, NEW, NEW, NEW)), [LEGACY] + [NEW] * 6),
    ],
    ids=["default", "rollback", "phase-2", "rollback-wins", "phase-1", "step-0-only"],
)
def test_route_of(flags: Flags, expected: list[str]) -> None:
    assert [route_of(flags, step) for step in range(7)] == expected


def test_the_flags_round_trip_through_their_stored_values() -> None:
    stored = STEPS_1_6_LEGACY.values()
    assert list(stored) == list(FLAG_NAMES)
    assert stored["use_new_pipeline"] == "true" and stored["route.step3"] == "legacy"
    assert Flags.from_values(stored) == STEPS_1_6_LEGACY
    assert Flags.from_values({}) == DEFAULT_FLAGS


@pytest.mark.parametrize(
    "values",
    [{"use_new_pipeline": "yes"}, {"route.step2": "old"}, {"route.step7": "new"}, {"x": "1"}],
)
def test_stored_values_outside_the_flags_are_refused(values: dict[str, str]) -> None:
    with pytest.raises(FlagRefused):
        Flags.from_values(values)


def test_flags_need_one_route_per_step() -> None:
    with pytest.raises(FlagRefused):
        Flags(True, (NEW,) * 6)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("1-6", (1, 2, 3, 4, 5, 6)),
        ("0", (0,)),
        ("0-6", tuple(range(7))),
        ("0,2,4-6", (0, 2, 4, 5, 6)),
        (" 3 , 3 ", (3,)),
    ],
)
def test_parse_steps(text: str, steps: tuple[int, ...]) -> None:
    assert parse_steps(text) == steps


@pytest.mark.parametrize("text", ["", "7", "1-7", "6-1", "a", "1-", "-1", "1..6", "10"])
def test_parse_steps_refuses(text: str) -> None:
    with pytest.raises(FlagRefused):
        parse_steps(text)


@pytest.mark.parametrize(
    ("text", "update"),
    [
        ("use_new_pipeline=false", {"use_new_pipeline": "false"}),
        ("use_new_pipeline=TRUE", {"use_new_pipeline": "true"}),
        ("route.step3=legacy", {"route.step3": "legacy"}),
    ],
)
def test_parse_assignment(text: str, update: dict[str, str]) -> None:
    assert parse_assignment(text) == update


@pytest.mark.parametrize(
    "text", ["use_new_pipeline", "use_new_pipeline=0", "route.step9=new", "USE=false"]
)
def test_parse_assignment_refuses(text: str) -> None:
    with pytest.raises(FlagRefused):
        parse_assignment(text)


def test_route_updates_name_every_step() -> None:
    assert route_updates((1, 2), "legacy") == {"route.step1": "legacy", "route.step2": "legacy"}
    with pytest.raises(FlagRefused):
        route_updates((1,), "old")
    with pytest.raises(FlagRefused):
        route_flag(7)


@pytest.mark.parametrize("operator", ["ana", "ops.bot@example", "a-b_c"])
def test_operators(operator: str) -> None:
    assert check_operator(operator) == operator


@pytest.mark.parametrize("operator", ["", "two words", "x" * 65, "ana;drop"])
def test_operators_refused(operator: str) -> None:
    with pytest.raises(FlagRefused):
        check_operator(operator)


def test_reasons_are_required_short_and_clean() -> None:
    assert check_reason("  WORKER_LIMIT   on 4K runs ") == "WORKER_LIMIT on 4K runs"
    for reason in ("", "   ", "x" * 501, "see https://example.com/x", "a\u200bb"):
        with pytest.raises(FlagRefused):
            check_reason(reason)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, "OK"),
        (546, "WORKER_LIMIT"),
        (400, "BAD_REQUEST"),
        (413, "BAD_REQUEST"),
        (401, "UNAUTHORIZED"),
        (404, "NOT_FOUND"),
        (429, "RATE_LIMITED"),
        (500, "SERVER_ERROR"),
        (503, "SERVER_ERROR"),
        (504, "TIMEOUT"),
        (302, "BAD_RESPONSE"),
        (201, "BAD_RESPONSE"),
    ],
)
def test_code_of(status: int, code: str) -> None:
    assert code_of(status) == code


def test_worker_limit_is_not_worth_calling_again() -> None:
    assert "WORKER_LIMIT" not in RETRYABLE
    assert {"TIMEOUT", "UNREACHABLE", "RATE_LIMITED", "SERVER_ERROR"} == RETRYABLE
    assert set(RETRYABLE) < set(CODES)
